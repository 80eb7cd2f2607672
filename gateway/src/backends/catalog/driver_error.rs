//! sqlx's errors in the catalog's terms, for both engines, classified where they
//! happen so that no driver type leaves the catalog.

use super::CatalogError;

/// SQLite's primary result codes (the low byte of an extended code) that mean "not
/// now" rather than "wrong": BUSY, LOCKED, READONLY, IOERR, CANTOPEN.
const UNAVAILABLE: [i64; 5] = [5, 6, 8, 10, 14];
/// SQLITE_FULL.
const FULL: i64 = 13;

impl From<sqlx::Error> for CatalogError {
    fn from(e: sqlx::Error) -> CatalogError {
        let text = e.to_string();
        match &e {
            sqlx::Error::Database(d) => {
                if let Some(pg) = d.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
                    return postgres_error(pg.code(), text);
                }
                let code = d
                    .code()
                    .and_then(|c| c.parse::<i64>().ok())
                    .map(|c| c & 0xff);
                match code {
                    Some(FULL) => CatalogError::DiskFull(text),
                    Some(c) if UNAVAILABLE.contains(&c) => CatalogError::Unavailable(text),
                    _ => CatalogError::Query(text),
                }
            }
            sqlx::Error::Io(io)
                if io.kind() == std::io::ErrorKind::StorageFull
                    || io.raw_os_error() == Some(libc::ENOSPC) =>
            {
                CatalogError::DiskFull(text)
            }
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                CatalogError::Unavailable(text)
            }
            _ => CatalogError::Query(text),
        }
    }
}

/// PostgreSQL's SQLSTATE classes that mean "not now": the connection (08), resources
/// (53: out of memory, too many connections), the server shutting down or starting
/// (57P0x), a lost serialization or deadlock race (40001, 40P01), a lock not granted
/// (55P03), a read-only standby (25006) and I/O (58). 53100 is a full disk.
fn postgres_error(code: &str, text: String) -> CatalogError {
    if code == "53100" {
        return CatalogError::DiskFull(text);
    }
    let unavailable = ["08", "53", "57P", "58"]
        .iter()
        .any(|c| code.starts_with(c))
        || ["40001", "40P01", "55P03", "25006"].contains(&code);
    if unavailable {
        CatalogError::Unavailable(text)
    } else {
        CatalogError::Query(text)
    }
}

impl From<sqlx::migrate::MigrateError> for CatalogError {
    fn from(e: sqlx::migrate::MigrateError) -> CatalogError {
        CatalogError::Migrate(e.to_string())
    }
}

/// An error opening the database (the gateway does not start without it).
pub(super) fn open(e: sqlx::Error) -> CatalogError {
    CatalogError::Open(e.to_string())
}

//! Small helpers with no better home.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The current UTC time as `YYYY-MM-DDThh:mm:ssZ`.
pub fn now_rfc3339() -> String {
    rfc3339(unix_now())
}

/// Formats Unix seconds as RFC 3339 UTC. Hand-written (Howard Hinnant's civil-from-days
/// algorithm) to avoid a date crate for one timestamp format.
pub fn rfc3339(secs: i64) -> String {
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// (year, month, day) of a day number (days since 1970-01-01), proleptic Gregorian
/// (Howard Hinnant's civil-from-days; hand-written: a date crate for two functions
/// would be the larger dependency).
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// The day number of a calendar date; `None` unless the date exists.
pub fn days_from_civil(y: i64, m: i64, d: i64) -> Option<i64> {
    if !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
        return None;
    }
    let yy = if m <= 2 { y - 1 } else { y };
    let era = yy.div_euclid(400);
    let yoe = yy.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

pub fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// The day `months` calendar months before day number `day`, on the same day of the
/// month or the month's last day when it is shorter (31 August − 6 months = 28/29
/// February).
pub fn months_before(day: i64, months: u32) -> i64 {
    let (y, m, d) = civil_from_days(day);
    let index = y * 12 + (m - 1) - i64::from(months);
    let (y, m) = (index.div_euclid(12), index.rem_euclid(12) + 1);
    let d = d.min(days_in_month(y, m));
    days_from_civil(y, m, d).unwrap_or(day)
}

/// Unix seconds from `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM:SSZ` (UTC) or plain seconds.
pub fn parse_instant(s: &str) -> Option<i64> {
    if let Ok(n) = s.parse::<i64>() {
        return Some(n);
    }
    let (date, time) = match s.split_once('T') {
        Some((d, t)) => (d, Some(t.strip_suffix('Z')?)),
        None => (s, None),
    };
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let days = days_from_civil(y, m, day)?;
    let secs = match time {
        None => 0,
        Some(t) => {
            let mut p = t.splitn(3, ':').map(|p| p.parse::<i64>().ok());
            let (h, mi, se) = (p.next()??, p.next()??, p.next()??);
            if h > 23 || mi > 59 || se > 60 {
                return None;
            }
            h * 3600 + mi * 60 + se
        }
    };
    Some(days * 86_400 + secs)
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_what_it_formats() {
        for t in [0, 951_782_400, 1_795_000_123, -86_400] {
            assert_eq!(super::parse_instant(&super::rfc3339(t)), Some(t));
        }
        assert_eq!(super::parse_instant("2000-02-29"), Some(951_782_400));
        assert_eq!(super::parse_instant("12345"), Some(12345));
        assert_eq!(super::parse_instant("2000-13-01"), None);
        assert_eq!(super::parse_instant("yesterday"), None);
        assert_eq!(super::parse_instant("2001-02-29"), None);
    }

    #[test]
    fn counts_calendar_months() {
        let day = |s: &str| super::parse_instant(s).unwrap() / 86_400;
        assert_eq!(
            super::months_before(day("2026-12-05"), 6),
            day("2026-06-05")
        );
        assert_eq!(
            super::months_before(day("2026-08-31"), 6),
            day("2026-02-28")
        );
        assert_eq!(
            super::months_before(day("2024-08-31"), 6),
            day("2024-02-29")
        );
        assert_eq!(
            super::months_before(day("2026-03-15"), 6),
            day("2025-09-15")
        );
        assert_eq!(
            super::months_before(day("2026-01-31"), 0),
            day("2026-01-31")
        );
    }

    #[test]
    fn formats_known_instants() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(super::rfc3339(1_795_305_600), "2026-11-22T00:00:00Z");
    }
}

//! One job of a run: a file or a DICOMDIR set, from one hospital over one protocol —
//! what it is (`Job::next`, drawn from the scenario) and how it is sent (`Job::run`).

use std::path::Path;

use anyhow::Result;
use gateway::push::TusClient;
use gateway::sealed::SealedSource;

use crate::report::Record;
use crate::retry::Patience;
use crate::run::Ctx;
use crate::scenario::{Class, Kind, Rng};
use crate::{content, dicomdir, sftp, stow, tus};

/// What one job sends.
pub struct Job {
    class: Class,
    protocol: String,
    hospital: u32,
    /// Plaintext bytes of a single file; instances of a set.
    bytes: u64,
    count: u64,
    rng: Rng,
    tag: String,
}

fn pick<'a, T>(items: &'a [(T, u32)], rng: &mut Rng) -> &'a T {
    let total: u64 = items.iter().map(|(_, w)| u64::from(*w)).sum();
    let mut at = rng.next() % total.max(1);
    for (item, w) in items {
        if at < u64::from(*w) {
            return item;
        }
        at -= u64::from(*w);
    }
    &items[0].0
}

impl Job {
    /// Draws the next job from `pool` (classes by weight), or `None` once the run's
    /// budget is spent.
    pub fn next(ctx: &Ctx, pool: &[(Class, u32)], rng: &mut Rng, tag: String) -> Option<Job> {
        let class = pick(pool, rng).clone();
        let protocols: Vec<(String, u32)> = ctx.s.protocols.clone().into_iter().collect();
        let protocol = pick(&protocols, rng).clone();
        let hospital = (rng.next() % u64::from(ctx.s.hospitals)) as u32;
        let (files, bytes, count) = match class.kind {
            Kind::DicomSet => {
                let count = rng.between(
                    u64::from(class.min_instances),
                    u64::from(class.max_instances),
                );
                (
                    count + 1,
                    count * (class.min_bytes + class.max_bytes) / 2,
                    count,
                )
            }
            _ => (1, rng.between(class.min_bytes, class.max_bytes), 1),
        };
        if !ctx.reserve(files, bytes) {
            return None;
        }
        Some(Job {
            class,
            protocol,
            hospital,
            bytes,
            count,
            rng: Rng::new(rng.next()),
            tag,
        })
    }

    pub async fn run(self, ctx: &Ctx) {
        let h = self.hospital as usize;
        let mut link = match (self.protocol.as_str(), ctx.sftp) {
            ("sftp", Some(addr)) => Link::Sftp {
                login: sftp::Login {
                    addr,
                    user: ctx.s.hospital(self.hospital),
                    key: ctx.keys[h].clone(),
                },
                conn: None,
            },
            ("stow", _) if self.class.kind == Kind::Dicom => Link::Stow {
                token: ctx.s.token(self.hospital),
            },
            _ => Link::Tus(&ctx.tus[h]),
        };
        let (class, tag, rng) = (&self.class, &self.tag, self.rng);
        if class.kind == Kind::DicomSet {
            send_set(ctx, &mut link, class, tag, self.count as u32, rng).await;
        } else {
            send_one(ctx, &mut link, class, tag, self.bytes, rng).await;
        }
    }
}

/// One hospital's way in for one job.
enum Link<'a> {
    Tus(&'a TusClient),
    Sftp {
        login: sftp::Login,
        conn: Option<Box<sftp::Conn>>,
    },
    Stow {
        token: String,
    },
}

impl Link<'_> {
    fn protocol(&self) -> &'static str {
        match self {
            Link::Tus(_) => "tus",
            Link::Sftp { .. } => "sftp",
            Link::Stow { .. } => "stow",
        }
    }

    /// Makes the set's folder (SFTP); with `retry_seconds`, again after a lost
    /// connection, when it is not there yet.
    async fn folder(&mut self, name: &str, retry_seconds: u64) -> Result<()> {
        let Link::Sftp { login, conn } = self else {
            return Ok(());
        };
        let path = format!("/inbox/{name}");
        let mut patience = Patience::new(retry_seconds);
        let mut again = false;
        loop {
            let tried = async {
                if conn.is_none() {
                    *conn = Some(Box::new(login.connect().await?));
                }
                match conn {
                    Some(c) if again && c.exists(&path).await => Ok(()),
                    Some(c) => c.mkdir(&path).await,
                    None => Ok(()),
                }
            }
            .await;
            match tried {
                Ok(()) => return Ok(()),
                Err(_) if patience.again().await => {
                    *conn = None;
                    again = true;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn send(
        &mut self,
        ctx: &Ctx,
        plain: &Path,
        cut: bool,
        link_mb_per_s: f64,
        rec: &mut Record,
    ) -> Result<()> {
        let mut seed = [0u8; 32];
        let salt = rec
            .name
            .bytes()
            .fold(rec.bytes, |h, b| h.rotate_left(5) ^ u64::from(b));
        Rng::new(rec.started_s.to_bits() ^ salt).fill(&mut seed);
        let recipients = std::slice::from_ref(&ctx.recipient);
        rec.sha256 = tokio::task::block_in_place(|| content::sha256_file(plain))?;
        let mut src = SealedSource::open(plain, recipients, &seed)?;
        let retry = ctx.s.retry_seconds;
        match self {
            Link::Tus(c) => {
                let name = rec.name.clone();
                tus::upload(c, &name, &mut src, cut, link_mb_per_s, rec, retry).await
            }
            Link::Sftp { login, conn } => {
                let path = format!("/inbox/{}", rec.name);
                sftp::upload(login, conn, &path, &mut src, cut, link_mb_per_s, rec, retry).await
            }
            Link::Stow { token } => {
                stow::store(&ctx.http, &ctx.url, token, &mut src, rec, retry).await
            }
        }
    }
}

async fn send_one(
    ctx: &Ctx,
    link: &mut Link<'_>,
    class: &Class,
    tag: &str,
    size: u64,
    mut rng: Rng,
) {
    let name = format!("{tag}.{}", class.kind.extension());
    let plain = ctx.dir.join(&name);
    let kind = class.kind;
    let n = rng.next() % 1_000_000;
    let written = tokio::task::spawn_blocking({
        let plain = plain.clone();
        let mut file_rng = Rng::new(rng.next());
        move || content::write(kind, size, &mut file_rng, n, &plain)
    })
    .await;
    let mut rec = Record {
        class: class.name.clone(),
        protocol: link.protocol().into(),
        name,
        bytes: match written {
            Ok(Ok(b)) => b,
            _ => 0,
        },
        started_s: ctx.now(),
        ..Record::default()
    };
    let cut = rng.chance(ctx.s.interrupt_probability);
    rec.outcome = match link
        .send(ctx, &plain, cut, class.link_mb_per_s, &mut rec)
        .await
    {
        Ok(()) => "accepted".into(),
        Err(e) => format!("error:{e}"),
    };
    rec.accepted_s = Some(ctx.now());
    let _ = std::fs::remove_file(&plain);
    ctx.push(rec);
}

/// A DICOMDIR set: a folder of instances sent one by one, the DICOMDIR last. Each file
/// is a record of the class; the DICOMDIR's record (class `<class>:set`) spans the whole
/// set, from its first byte to the set's check.
async fn send_set(
    ctx: &Ctx,
    link: &mut Link<'_>,
    class: &Class,
    tag: &str,
    count: u32,
    mut rng: Rng,
) {
    let started = ctx.now();
    let dir = ctx.dir.join(tag);
    let mut set_rng = Rng::new(rng.next());
    let n = rng.next() % 1_000_000;
    let sizes = (class.min_bytes, class.max_bytes);
    let written = tokio::task::spawn_blocking({
        let dir = dir.clone();
        move || dicomdir::write_set(&dir, count, sizes, &mut set_rng, n)
    })
    .await
    .map_err(anyhow::Error::from)
    .and_then(|r| r);
    let protocol = link.protocol();
    let failed = |code: String| Record {
        class: format!("{}:set", class.name),
        protocol: protocol.into(),
        name: format!("{tag}/DICOMDIR"),
        started_s: started,
        outcome: format!("error:{code}"),
        ..Record::default()
    };
    let files = match written {
        Ok(f) => f,
        Err(e) => return ctx.push(failed(format!("generate:{e}"))),
    };
    if let Err(e) = link.folder(tag, ctx.s.retry_seconds).await {
        let _ = std::fs::remove_dir_all(&dir);
        return ctx.push(failed(e.to_string()));
    }
    let total: u64 = files.iter().map(|f| f.bytes).sum();
    for f in files {
        let last = f.rel == "DICOMDIR";
        let mut rec = Record {
            class: if last {
                format!("{}:set", class.name)
            } else {
                class.name.clone()
            },
            protocol: link.protocol().into(),
            name: format!("{tag}/{}", f.rel),
            bytes: if last { total } else { f.bytes },
            started_s: if last { started } else { ctx.now() },
            ..Record::default()
        };
        let cut = rng.chance(ctx.s.interrupt_probability);
        rec.outcome = match link
            .send(ctx, &f.path, cut, class.link_mb_per_s, &mut rec)
            .await
        {
            Ok(()) => "accepted".into(),
            Err(e) => format!("error:{e}"),
        };
        rec.accepted_s = Some(ctx.now());
        ctx.push(rec);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

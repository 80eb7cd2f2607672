//! tus uploads as the gateway's own `push` client makes them; a cut ends a PATCH
//! mid-body, and the resume asks `HEAD` where the gateway is. With `retry_seconds`, a
//! failure of the connection (a gateway killed and restarting) is resumed the same way.

use std::time::{Duration, Instant};

use anyhow::Result;
use gateway::push::{PushError, Remote, TusClient};
use gateway::sealed::SealedSource;

use crate::report::Record;
use crate::retry::Patience;
use crate::run::{CHUNK, pace};

/// After a cut the gateway may still be finishing the cut request (busy: 423), or have
/// finished the upload with it (no longer receiving): the client asks again.
const SETTLING: [&str; 3] = ["tus.busy", "ingest.busy", "ingest.not_receiving"];

fn worth_retrying(e: &PushError) -> bool {
    e.transient() || SETTLING.contains(&e.code().as_str())
}

/// Where the gateway is with the upload at `url` (its durable offset).
async fn remote(client: &TusClient, url: &str, patience: &mut Patience) -> Result<u64> {
    loop {
        match client.remote(url).await {
            Ok(Remote::At { offset, .. }) => return Ok(offset),
            Ok(Remote::Gone) => anyhow::bail!("tus.gone"),
            Err(e) if worth_retrying(&e) && patience.again().await => {}
            Err(e) => anyhow::bail!(e.code()),
        }
    }
}

/// Sends `src` as `name`, cut once half-way and resumed when `cut`.
pub async fn upload(
    client: &TusClient,
    name: &str,
    src: &mut SealedSource,
    mut cut: bool,
    link_mb_per_s: f64,
    rec: &mut Record,
    retry_seconds: u64,
) -> Result<()> {
    let len = src.len();
    rec.sealed_bytes = len;
    // A cut is resumed within a couple of seconds even when restarts are not expected.
    let mut patience = Patience::new(retry_seconds.max(2));
    let mut restarts = Patience::new(retry_seconds);
    let url = loop {
        match client.create(name, len).await {
            Ok(url) => break url,
            // The answer to a lost create may have created it: that upload is
            // abandoned (and expires), a new one is made.
            Err(e) if e.transient() && restarts.again().await => {}
            Err(e) => anyhow::bail!(e.code()),
        }
    };
    rec.upload_id = url.rsplit('/').next().unwrap_or_default().to_string();
    let started = Instant::now();
    let mut offset = 0u64;
    while offset < len {
        let piece = tokio::task::block_in_place(|| src.read_at(offset, CHUNK))?;
        let n = piece.len() as u64;
        if cut && offset + n >= len / 2 {
            cut = false;
            // Cut the connection mid-body, then ask where the gateway is.
            let _ =
                tokio::time::timeout(Duration::from_millis(3), client.append(&url, offset, piece))
                    .await;
            rec.resumed = true;
            let at = remote(client, &url, &mut patience).await?;
            rec.resent(n.saturating_sub(at.saturating_sub(offset)));
            offset = at;
            continue;
        }
        match client.append(&url, offset, piece).await {
            Ok(o) => {
                offset = o;
                patience.progress();
                restarts.progress();
            }
            Err(PushError::OffsetMoved(o)) => offset = o,
            Err(e) if rec.resumed && SETTLING.contains(&e.code().as_str()) => {
                if !patience.again().await {
                    anyhow::bail!(e.code());
                }
                offset = remote(client, &url, &mut patience).await?;
            }
            // The gateway went away mid-request: what it holds is what it made durable
            // (an upload whose last byte arrived is completed by this HEAD).
            Err(e) if e.transient() && restarts.again().await => {
                rec.resumed = true;
                let at = remote(client, &url, &mut restarts).await?;
                // Every offset a 204 reported was durable: holding less loses bytes.
                anyhow::ensure!(at >= offset, "lost.acknowledged_bytes:{offset}>{at}");
                rec.resent(n.saturating_sub(at - offset));
                offset = at;
            }
            Err(e) => anyhow::bail!(e.code()),
        }
        pace(started, offset, link_mb_per_s).await;
    }
    Ok(())
}

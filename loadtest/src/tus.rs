//! tus uploads as the gateway's own `push` client makes them; a cut ends a PATCH
//! mid-body, and the resume asks `HEAD` where the gateway is.

use std::time::{Duration, Instant};

use anyhow::Result;
use gateway::push::{Remote, TusClient};
use gateway::sealed::SealedSource;

use crate::report::Record;
use crate::run::{CHUNK, pace};

async fn remote(client: &TusClient, url: &str) -> Result<u64> {
    match client
        .remote(url)
        .await
        .map_err(|e| anyhow::anyhow!(e.code()))?
    {
        Remote::At { offset, .. } => Ok(offset),
        Remote::Gone => anyhow::bail!("tus.gone"),
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
) -> Result<()> {
    let len = src.len();
    rec.sealed_bytes = len;
    let url = client
        .create(name, len)
        .await
        .map_err(|e| anyhow::anyhow!(e.code()))?;
    rec.upload_id = url.rsplit('/').next().unwrap_or_default().to_string();
    let started = Instant::now();
    let mut offset = 0u64;
    let mut retries = 0;
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
            let at = remote(client, &url).await?;
            rec.retransmitted += n.saturating_sub(at.saturating_sub(offset));
            offset = at;
            continue;
        }
        offset = match client.append(&url, offset, piece).await {
            Ok(o) => o,
            Err(gateway::push::PushError::OffsetMoved(o)) => o,
            // After a cut the gateway may still be finishing the cut request (busy: 423), or
            // have finished the upload with it (no longer receiving): ask where it is,
            // as a tus client does, a bounded number of times.
            Err(e)
                if rec.resumed
                    && ["tus.busy", "ingest.busy", "ingest.not_receiving"]
                        .contains(&e.code().as_str())
                    && retries < 40 =>
            {
                retries += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
                remote(client, &url).await?
            }
            Err(e) => anyhow::bail!(e.code()),
        };
        pace(started, offset, link_mb_per_s).await;
    }
    Ok(())
}

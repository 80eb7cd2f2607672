//! STOW-RS as a modality or PACS sends: one sealed instance per
//! `POST /dicomweb/studies` (`multipart/related; type="application/dicom"`). The answer
//! comes once the instance is checked, so the outcome is known from it; with
//! `retry_seconds` a request lost with its connection is sent again whole (STOW has no
//! resume), which may store the instance twice — the gateway reports the second as a
//! duplicate, never as a failure.

use anyhow::Result;
use gateway::sealed::SealedSource;

use crate::report::Record;
use crate::retry::Patience;

const BOUNDARY: &str = "loadtest-stow-7d3f9a";

/// The request body: one part holding the sealed instance. STOW bodies are a single
/// instance of at most a few MiB here, so the part is built in memory (the gateway
/// streams it; the load generator need not).
fn body(src: &mut SealedSource) -> Result<Vec<u8>> {
    let len = usize::try_from(src.len())?;
    let mut out = Vec::with_capacity(len + 200);
    out.extend_from_slice(
        format!("--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n").as_bytes(),
    );
    let mut at = 0u64;
    while at < src.len() {
        let piece = src.read_at(at, 1 << 20)?;
        anyhow::ensure!(!piece.is_empty(), "sealed source ended early");
        at += piece.len() as u64;
        out.extend_from_slice(&piece);
    }
    out.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    Ok(out)
}

/// What the gateway answered: stored (the instance is in ReferencedSOPSequence), or
/// the code of its failure.
fn outcome(status: u16, doc: &serde_json::Value) -> Result<()> {
    let stored = doc["00081199"]["Value"]
        .as_array()
        .is_some_and(|v| !v.is_empty());
    if status == 200 && stored {
        return Ok(());
    }
    let reason = doc["00081198"]["Value"][0]["00081197"]["Value"][0]
        .as_u64()
        .map(|r| format!("stow.failure_{r:04x}"))
        .or_else(|| doc["code"].as_str().map(str::to_string))
        .unwrap_or_else(|| format!("stow.http_{status}"));
    anyhow::bail!(reason)
}

/// Sends the instance in `src` for the hospital holding `token`.
pub async fn store(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    src: &mut SealedSource,
    rec: &mut Record,
    retry_seconds: u64,
) -> Result<()> {
    rec.sealed_bytes = src.len();
    let body = tokio::task::block_in_place(|| body(src))?;
    let mut patience = Patience::new(retry_seconds);
    loop {
        let sent = http
            .post(format!("{url}/dicomweb/studies"))
            .bearer_auth(token)
            .header(
                "Content-Type",
                format!("multipart/related; type=\"application/dicom\"; boundary={BOUNDARY}"),
            )
            .header("Accept", "application/dicom+json")
            .body(body.clone())
            .send()
            .await;
        let resp = match sent {
            Ok(r) if !matches!(r.status().as_u16(), 423 | 429 | 502..=504) => r,
            // Lost with its connection, or refused while the gateway starts.
            _ if patience.again().await => {
                rec.resumed = true;
                rec.resent(body.len() as u64);
                continue;
            }
            Ok(r) => anyhow::bail!("stow.http_{}", r.status().as_u16()),
            Err(e) => anyhow::bail!("stow.transport: {e}"),
        };
        let status = resp.status().as_u16();
        match resp.json::<serde_json::Value>().await {
            Ok(doc) => return outcome(status, &doc),
            // The answer was cut off with the connection: the instance may be stored;
            // sending it again is what a STOW client can do.
            Err(_) if patience.again().await => {
                rec.resumed = true;
                rec.resent(body.len() as u64);
            }
            Err(e) => anyhow::bail!("stow.transport: {e}"),
        }
    }
}

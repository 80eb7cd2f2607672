//! The state of an upload while bytes arrive: the spool file, the verifier that
//! authenticates and decrypts each write, the running hash, and ASCII armor.

use super::*;

/// The state of an upload while bytes arrive.
pub(super) struct Receiving {
    pub(super) spool: SpoolFile,
    /// Authenticates and decrypts; its sink holds the plaintext of the latest write,
    /// which is hashed during the next one (on the other core).
    pub(super) opener: StreamOpener<Vec<u8>>,
    pub(super) sha: ring::digest::Context,
    /// The previous plaintext buffer, kept for reuse.
    pub(super) spare: Vec<u8>,
    /// When the spool was last made durable (a slow line syncs on time, not bytes).
    pub(super) last_sync: std::time::Instant,
    /// ASCII armor (`age -a`), known from the first byte: the verifier is fed the
    /// decoded bytes; the spool keeps what the client sent (its offsets are the
    /// client's), and the check turns it binary before anything else reads it.
    pub(super) armor: Armor,
}

pub(super) enum Armor {
    Unknown,
    Binary,
    Armored(Box<crate::sealed::armor::Dearmor>, Vec<u8>),
}

impl Armor {
    /// Feeds `data` (as the client sent it) to `opener`.
    pub(super) fn verify(&mut self, opener: &mut StreamOpener<Vec<u8>>, data: &[u8]) -> Result<()> {
        if let (Armor::Unknown, Some(&first)) = (&*self, data.first()) {
            *self = if crate::sealed::armor::looks_armored(first) {
                Armor::Armored(Box::default(), Vec::new())
            } else {
                Armor::Binary
            };
        }
        match self {
            Armor::Armored(d, buf) => {
                buf.clear();
                d.push(data, buf)?;
                opener.push(buf)?;
            }
            _ => opener.push(data)?,
        }
        Ok(())
    }

    /// Whether the armor, if any, is complete too.
    pub(super) fn complete(&mut self) -> bool {
        match self {
            Armor::Armored(d, _) => d.complete(),
            _ => true,
        }
    }
}

impl Receiving {
    pub(super) fn new(spool: SpoolFile, opener: StreamOpener<Vec<u8>>) -> Box<Receiving> {
        Box::new(Receiving {
            spool,
            opener,
            sha: ring::digest::Context::new(&ring::digest::SHA256),
            spare: Vec::new(),
            last_sync: std::time::Instant::now(),
            armor: Armor::Unknown,
        })
    }

    /// Appends `data` to the spool and verifies it, side by side: one core writes the
    /// spool (and fsyncs every `every.0` bytes, or once `every.1` has passed since the
    /// last sync — on a 64 kbit/s line 8 MiB take 17 minutes, rule 24) and hashes
    /// the plaintext of the previous write while the other authenticates and decrypts
    /// this one. Returns the new durable length when it synced.
    pub(super) fn push(
        &mut self,
        data: &[u8],
        every: (u64, std::time::Duration),
    ) -> Result<Option<u64>> {
        const SPARE_KEPT: usize = 256 << 10;
        let Receiving {
            spool,
            opener,
            sha,
            spare,
            last_sync,
            armor,
        } = self;
        let (interval, period) = every;
        std::mem::swap(opener.sink_mut(), spare);
        opener.sink_mut().clear();
        let previous = &*spare;
        let (written, verified) = rayon::join(
            || -> Result<Option<u64>> {
                sha.update(previous);
                spool.append(data)?;
                let due = spool.unsynced() >= interval
                    || (spool.unsynced() > 0 && last_sync.elapsed() >= period);
                Ok(if due {
                    *last_sync = std::time::Instant::now();
                    Some(spool.sync()?)
                } else {
                    None
                })
            },
            || armor.verify(opener, data),
        );
        verified?;
        // The previous plaintext is hashed: its buffer is not kept between writes, so an
        // upload waiting for its next bytes holds one write's plaintext, not two
        // (measured: 100 uploads at once held ~4 MiB each in these spares).
        if spare.capacity() > SPARE_KEPT {
            *spare = Vec::new();
        }
        written
    }

    /// Whether the file is complete: the final chunk authenticated. Then returns the
    /// plaintext length and SHA-256.
    pub(super) fn complete(&mut self) -> Option<(u64, [u8; 32])> {
        if !self.opener.probe_final() || !self.armor.complete() {
            return None;
        }
        // `spare` was hashed during the last push; the sink holds the rest.
        self.sha.update(self.opener.sink_mut());
        self.opener.sink_mut().clear();
        let mut d = [0u8; 32];
        d.copy_from_slice(self.sha.clone().finish().as_ref());
        Some((self.opener.verified_plaintext(), d))
    }
}

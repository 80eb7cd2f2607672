//! A CAB's directory (MS-CAB: CFHEADER, CFFOLDER and CFFILE entries), read here because
//! the `cab` crate keeps each file's place in its folder to itself, and the view that
//! lets the crate decompress each folder once (see [`super::cab`]). Hand-written and
//! small: fixed-size little-endian records and NUL-terminated names of at most 256
//! bytes; every count is bounded by its 16-bit field and every read by the archive.

use std::io::{self, Read, Seek, SeekFrom};

use super::Plaintext;

const SIGNATURE: &[u8; 4] = b"MSCF";
const FLAG_PREV: u16 = 0x1;
const FLAG_NEXT: u16 = 0x2;
const FLAG_RESERVE: u16 = 0x4;
/// CFFILE.iFolder values for files continued from or into another cabinet.
const CONTINUED: u16 = 0xFFFD;
const NAME_IS_UTF: u16 = 0x80;
const HEADER_LEN: usize = 36;

#[derive(Debug)]
pub enum DirError {
    Io(io::Error),
    /// A stable code and why.
    Refused(&'static str, String),
}

impl From<io::Error> for DirError {
    fn from(e: io::Error) -> DirError {
        let sealed = e.kind() == io::ErrorKind::InvalidData
            && e.get_ref()
                .is_some_and(|x| x.is::<crate::sealed::SealedError>());
        if sealed {
            DirError::Io(e)
        } else {
            DirError::Refused("cab.invalid", format!("not a readable CAB archive: {e}"))
        }
    }
}

fn invalid(why: impl Into<String>) -> DirError {
    DirError::Refused("cab.invalid", why.into())
}

#[derive(Debug, Clone)]
pub struct Folder {
    data_offset: u32,
    blocks: u16,
    compression: u16,
    reserve: Vec<u8>,
}

#[derive(Debug, Clone)]
pub struct CabFile {
    /// `/`-separated (CAB names use `\`).
    pub name: String,
    pub size: u64,
    /// Where the file starts in its folder's expanded bytes.
    pub offset: u64,
    pub folder: u16,
}

#[derive(Debug)]
pub struct Directory {
    pub files: Vec<CabFile>,
    folders: Vec<Folder>,
    reserve: Option<(u8, u8)>,
}

impl Directory {
    /// Each folder with its files in the order they lie in it.
    pub fn by_folder(&self) -> Vec<(u16, Vec<&CabFile>)> {
        (0..self.folders.len())
            .filter_map(|i| {
                let i = u16::try_from(i).ok()?;
                let mut files: Vec<&CabFile> =
                    self.files.iter().filter(|f| f.folder == i).collect();
                files.sort_by_key(|f| f.offset);
                (!files.is_empty()).then_some((i, files))
            })
            .collect()
    }
}

fn u8_(r: &mut dyn Read) -> io::Result<u8> {
    let mut b = [0u8; 1];
    r.read_exact(&mut b)?;
    Ok(b[0])
}

fn u16_(r: &mut dyn Read) -> io::Result<u16> {
    let mut b = [0u8; 2];
    r.read_exact(&mut b)?;
    Ok(u16::from_le_bytes(b))
}

fn u32_(r: &mut dyn Read) -> io::Result<u32> {
    let mut b = [0u8; 4];
    r.read_exact(&mut b)?;
    Ok(u32::from_le_bytes(b))
}

/// A NUL-terminated string of at most 256 bytes (the format's limit).
fn cstr(r: &mut dyn Read) -> Result<Vec<u8>, DirError> {
    let mut out = Vec::new();
    loop {
        let b = u8_(r)?;
        if b == 0 {
            return Ok(out);
        }
        if out.len() >= 256 {
            return Err(invalid("a name longer than 256 bytes"));
        }
        out.push(b);
    }
}

/// Reads the directory of the cabinet in `src` (`len` bytes).
pub fn read(src: &mut dyn Plaintext, len: u64) -> Result<Directory, DirError> {
    src.seek(SeekFrom::Start(0))?;
    let mut sig = [0u8; 4];
    src.read_exact(&mut sig)?;
    if &sig != SIGNATURE {
        return Err(invalid("no MSCF signature"));
    }
    let _reserved1 = u32_(src)?;
    let _size = u32_(src)?;
    let _reserved2 = u32_(src)?;
    let files_at = u32_(src)?;
    let _reserved3 = u32_(src)?;
    let (_minor, major) = (u8_(src)?, u8_(src)?);
    if major != 1 {
        return Err(invalid(format!("CAB format version {major} is not 1")));
    }
    let folders_n = u16_(src)?;
    let files_n = u16_(src)?;
    let flags = u16_(src)?;
    let (_set_id, _index) = (u16_(src)?, u16_(src)?);
    if flags & (FLAG_PREV | FLAG_NEXT) != 0 {
        return Err(DirError::Refused(
            "cab.spanned",
            "the cabinet is one of a spanned set; send the set as one cabinet".into(),
        ));
    }
    let reserve = if flags & FLAG_RESERVE != 0 {
        let header = u16_(src)?;
        let (folder, data) = (u8_(src)?, u8_(src)?);
        src.seek(SeekFrom::Current(i64::from(header)))?;
        Some((folder, data))
    } else {
        None
    };
    let mut folders = Vec::with_capacity(usize::from(folders_n));
    for _ in 0..folders_n {
        let data_offset = u32_(src)?;
        let blocks = u16_(src)?;
        let compression = u16_(src)?;
        let mut reserve_bytes = vec![0u8; usize::from(reserve.map_or(0, |r| r.0))];
        src.read_exact(&mut reserve_bytes)?;
        match compression & 0x000f {
            0 | 1 | 3 => {}
            2 => {
                return Err(DirError::Refused(
                    "cab.unsupported_compression",
                    "Quantum compression cannot be read; use MSZIP or LZX".into(),
                ));
            }
            other => return Err(invalid(format!("unknown compression type {other}"))),
        }
        if u64::from(data_offset) >= len {
            return Err(invalid("a folder's data lies beyond the archive"));
        }
        folders.push(Folder {
            data_offset,
            blocks,
            compression,
            reserve: reserve_bytes,
        });
    }
    src.seek(SeekFrom::Start(u64::from(files_at)))?;
    let mut files = Vec::with_capacity(usize::from(files_n));
    for _ in 0..files_n {
        let size = u64::from(u32_(src)?);
        let offset = u64::from(u32_(src)?);
        let folder = u16_(src)?;
        let (_date, _time) = (u16_(src)?, u16_(src)?);
        let attributes = u16_(src)?;
        let raw = cstr(src)?;
        if folder >= CONTINUED {
            return Err(DirError::Refused(
                "cab.spanned",
                "a file continues into another cabinet; send the set as one cabinet".into(),
            ));
        }
        if usize::from(folder) >= folders.len() {
            return Err(invalid("a file names a folder the cabinet lacks"));
        }
        let name = if attributes & NAME_IS_UTF != 0 {
            String::from_utf8(raw).map_err(|_| invalid("a name that is not UTF-8"))?
        } else {
            raw.iter().map(|&b| char::from(b)).collect()
        };
        files.push(CabFile {
            name: name.replace('\\', "/"),
            size,
            offset,
            folder,
        });
    }
    let dir = Directory {
        files,
        folders,
        reserve,
    };
    contiguous(&dir)?;
    Ok(dir)
}

/// A folder's files must tile its expanded bytes from 0 without gaps or overlaps: the
/// folder is read once and cut at these offsets, so a directory that lied about them
/// could show one file's bytes under another's name.
fn contiguous(dir: &Directory) -> Result<(), DirError> {
    for (folder, files) in dir.by_folder() {
        let mut end = 0u64;
        for f in files {
            if f.offset != end {
                return Err(invalid(format!(
                    "the files of folder {folder} do not follow each other (`{}` at {}, expected {end})",
                    f.name, f.offset
                )));
            }
            end = end.saturating_add(f.size);
        }
    }
    Ok(())
}

/// The archive as the `cab` crate is given it: a directory of our own making (one file
/// per folder, named by [`View::folder_name`], as long as the folder's files together)
/// in front of the original bytes, whose data blocks it points at.
pub struct View<'a> {
    header: Vec<u8>,
    src: &'a mut dyn Plaintext,
    len: u64,
    at: u64,
    /// Where `src` stands, so that reading on needs no seek (each one restarts the
    /// decryption of a chunk).
    src_at: Option<u64>,
}

impl<'a> View<'a> {
    pub fn folder_name(folder: u16) -> String {
        format!("f{folder}")
    }

    pub fn new(src: &'a mut dyn Plaintext, dir: &Directory) -> io::Result<View<'a>> {
        let len = src.seek(SeekFrom::End(0))?;
        let folders = dir.by_folder();
        let folder_entry = 8 + dir.reserve.map_or(0, |r| usize::from(r.0));
        let reserve_fields = if dir.reserve.is_some() { 4 } else { 0 };
        let files_at = HEADER_LEN + reserve_fields + folder_entry * dir.folders.len();
        let files_len: usize = folders
            .iter()
            .map(|(i, _)| 16 + Self::folder_name(*i).len() + 1)
            .sum();
        let shift = u32::try_from(files_at + files_len)
            .map_err(|_| io::Error::other("directory too large"))?;
        let total = u32::try_from(len + u64::from(shift))
            .map_err(|_| io::Error::other("archive too large for CAB"))?;
        let mut h = Vec::with_capacity(files_at + files_len);
        h.extend_from_slice(SIGNATURE);
        h.extend_from_slice(&0u32.to_le_bytes());
        h.extend_from_slice(&total.to_le_bytes());
        h.extend_from_slice(&0u32.to_le_bytes());
        h.extend_from_slice(&(files_at as u32).to_le_bytes());
        h.extend_from_slice(&0u32.to_le_bytes());
        h.extend_from_slice(&[3, 1]);
        h.extend_from_slice(&(dir.folders.len() as u16).to_le_bytes());
        h.extend_from_slice(&(folders.len() as u16).to_le_bytes());
        let flags = if dir.reserve.is_some() {
            FLAG_RESERVE
        } else {
            0
        };
        h.extend_from_slice(&flags.to_le_bytes());
        h.extend_from_slice(&[0, 0, 0, 0]);
        if let Some((folder, data)) = dir.reserve {
            h.extend_from_slice(&0u16.to_le_bytes());
            h.extend_from_slice(&[folder, data]);
        }
        for f in &dir.folders {
            let at = f
                .data_offset
                .checked_add(shift)
                .ok_or_else(|| io::Error::other("archive too large for CAB"))?;
            h.extend_from_slice(&at.to_le_bytes());
            h.extend_from_slice(&f.blocks.to_le_bytes());
            h.extend_from_slice(&f.compression.to_le_bytes());
            h.extend_from_slice(&f.reserve);
        }
        for (i, files) in &folders {
            let size: u64 = files.iter().map(|f| f.size).sum();
            let size = u32::try_from(size).map_err(|_| io::Error::other("folder too large"))?;
            h.extend_from_slice(&size.to_le_bytes());
            h.extend_from_slice(&0u32.to_le_bytes());
            h.extend_from_slice(&i.to_le_bytes());
            h.extend_from_slice(&[0x21, 0, 0, 0, 0, 0]);
            h.extend_from_slice(Self::folder_name(*i).as_bytes());
            h.push(0);
        }
        Ok(View {
            header: h,
            src,
            len,
            at: 0,
            src_at: None,
        })
    }
}

impl Read for View<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let head = self.header.len() as u64;
        if self.at < head {
            let from = self.at as usize;
            let n = buf.len().min(self.header.len() - from);
            buf[..n].copy_from_slice(&self.header[from..from + n]);
            self.at += n as u64;
            return Ok(n);
        }
        let want = self.at - head;
        if self.src_at != Some(want) {
            self.src.seek(SeekFrom::Start(want))?;
        }
        let n = self.src.read(buf)?;
        self.at += n as u64;
        self.src_at = Some(want + n as u64);
        Ok(n)
    }
}

impl Seek for View<'_> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let end = self.header.len() as u64 + self.len;
        let to = match pos {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::Current(d) => self.at.checked_add_signed(d),
            SeekFrom::End(d) => end.checked_add_signed(d),
        };
        self.at = to.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before 0"))?;
        Ok(self.at)
    }
}

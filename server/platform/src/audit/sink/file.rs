//! The file destination: one JSON object per line, hash-chained, rotated at `max_size` keeping
//! `max_files` older files (`audit.log.1` is the newest), gzip-compressed when `compress` is on.
//!
//! Writers in several processes (a server and an admin command) take an exclusive lock on
//! `<file>.lock` per batch and re-read the last hash when the file changed under them, so the file
//! stays one chain. The first line after a rotation links to the last line of the rotated file.

use std::{
    fs::{self, File, OpenOptions},
    io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write},
    path::{Path, PathBuf},
    sync::Mutex,
};

use flate2::{Compression, read::GzDecoder, write::GzEncoder};

use crate::{
    audit::{RecordedEvent, line},
    config::audit::Rotation,
};

#[derive(Debug)]
struct State {
    /// The file's length after our last write; another writer changed it if it differs.
    known_len: Option<u64>,
    last_hash: String,
}

#[derive(Debug)]
pub struct FileSink {
    path: PathBuf,
    rotation: Rotation,
    key: line::ChainKey,
    state: Mutex<State>,
}

/// `audit.log.3.gz` or `audit.log.3`.
pub fn rotated(path: &Path, n: u32, compressed: bool) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}{}", if compressed { ".gz" } else { "" }));
    PathBuf::from(name)
}

/// The rotated file `n`, compressed or not, if it exists.
pub fn existing_rotated(path: &Path, n: u32) -> Option<PathBuf> {
    [rotated(path, n, true), rotated(path, n, false)]
        .into_iter()
        .find(|p| p.exists())
}

/// Opens a file for reading, decompressing `.gz`.
pub fn open_lines(path: &Path) -> io::Result<Box<dyn BufRead>> {
    let file = File::open(path)?;
    if path.extension().is_some_and(|e| e == "gz") {
        Ok(Box::new(BufReader::new(GzDecoder::new(file))))
    } else {
        Ok(Box::new(BufReader::new(file)))
    }
}

impl FileSink {
    pub fn new(path: PathBuf, rotation: Rotation, key: line::ChainKey) -> Self {
        Self {
            path,
            rotation,
            key,
            state: Mutex::new(State {
                known_len: None,
                last_hash: line::GENESIS.to_string(),
            }),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock_path(&self) -> PathBuf {
        let mut name = self.path.as_os_str().to_owned();
        name.push(".lock");
        PathBuf::from(name)
    }

    /// Appends the batch, rotating as needed.
    pub fn write(&self, events: &[RecordedEvent]) -> io::Result<()> {
        if let Some(parent) = self.path.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::create_dir_all(parent)?;
        }
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.lock_path())?;
        lock.lock()?;
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        let mut len = file.metadata()?.len();
        if state.known_len != Some(len) {
            let (hash, torn) = last_hash(&self.path, len)?;
            state.last_hash = hash;
            if torn {
                file.write_all(b"\n")?;
                len += 1;
            }
        }
        let max = self.rotation.max_size.bytes();
        let mut buf = String::with_capacity(events.len() * 400);
        let mut prev = state.last_hash.clone();
        for event in events {
            let (text, hash) = line::render(&self.key, &prev, event);
            if len + (buf.len() + text.len()) as u64 > max && len + buf.len() as u64 > 0 {
                file.write_all(buf.as_bytes())?;
                buf.clear();
                drop(file);
                self.rotate()?;
                file = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&self.path)?;
                len = 0;
            }
            buf.push_str(&text);
            prev = hash;
        }
        file.write_all(buf.as_bytes())?;
        len += buf.len() as u64;
        state.known_len = Some(len);
        state.last_hash = prev;
        Ok(())
    }

    /// audit.log → audit.log.1(.gz), shifting the older ones and deleting past `max_files`.
    fn rotate(&self) -> io::Result<()> {
        let keep = self.rotation.max_files.max(1);
        for compressed in [true, false] {
            let _ = fs::remove_file(rotated(&self.path, keep, compressed));
        }
        for n in (1..keep).rev() {
            if let Some(from) = existing_rotated(&self.path, n) {
                let compressed = from.extension().is_some_and(|e| e == "gz");
                fs::rename(&from, rotated(&self.path, n + 1, compressed))?;
            }
        }
        let first = rotated(&self.path, 1, false);
        fs::rename(&self.path, &first)?;
        if self.rotation.compress {
            let gz = rotated(&self.path, 1, true);
            let tmp = gz.with_extension("gz.tmp");
            let mut encoder = GzEncoder::new(File::create(&tmp)?, Compression::default());
            io::copy(&mut File::open(&first)?, &mut encoder)?;
            encoder.finish()?.sync_all()?;
            fs::rename(&tmp, &gz)?;
            fs::remove_file(&first)?;
        }
        Ok(())
    }
}

/// The hash of the last whole line of the chain that `path` continues, and whether `path` ends in
/// a torn line (a writer died mid-line).
fn last_hash(path: &Path, len: u64) -> io::Result<(String, bool)> {
    if len == 0 {
        // A fresh file continues the newest rotated one.
        return match existing_rotated(path, 1) {
            Some(previous) => {
                let mut last = None;
                for l in open_lines(&previous)?.lines() {
                    last = Some(l?);
                }
                Ok((
                    last.as_deref()
                        .and_then(hash_of)
                        .unwrap_or_else(|| line::GENESIS.to_string()),
                    false,
                ))
            }
            None => Ok((line::GENESIS.to_string(), false)),
        };
    }
    let mut file = File::open(path)?;
    let start = len.saturating_sub(256 * 1024);
    file.seek(SeekFrom::Start(start))?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail)?;
    let torn = tail.last() != Some(&b'\n');
    let text = String::from_utf8_lossy(&tail);
    let hash = text
        .lines()
        .rev()
        .find_map(hash_of)
        .unwrap_or_else(|| line::GENESIS.to_string());
    Ok((hash, torn))
}

fn hash_of(text: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    v.get("hash")?.as_str().map(str::to_string)
}

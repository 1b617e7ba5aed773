//! The write-ahead journal: where an event is durable before `record` returns.
//!
//! Each process appends to its own journal directory under `<data dir>/audit-journal/<writer id>/`
//! (segments `seg-00000001.jsonl`, … of about 16 MiB, one event per line) and holds an exclusive
//! lock on its `lock` file while it runs. One consumer per destination reads the journal behind the
//! writer and remembers its position in `cursor-<destination>`; segments every consumer has passed
//! are deleted, and the directory is removed once everything was delivered at shutdown.
//!
//! A directory whose lock nobody holds belongs to a process that died (kill -9, power loss of
//! the process, OOM): the next process adopts it and delivers what is left, so an acknowledged
//! event is delivered even if the process that accepted it was killed.

use std::{
    fs::{self, File, OpenOptions},
    io::{self, Read, Seek, SeekFrom, Write},
    path::{Path, PathBuf},
    sync::Mutex,
};

use tokio::sync::watch;

use super::RecordedEvent;

/// A segment is closed once it passes this size.
pub const SEGMENT_BYTES: u64 = 16 << 20;
const LOCK: &str = "lock";

/// A place in a journal: segment number and byte offset in it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    pub segment: u64,
    pub offset: u64,
}

impl Position {
    const START: Self = Self {
        segment: 1,
        offset: 0,
    };

    /// Approximate bytes from `self` to `end`.
    pub fn bytes_to(self, end: Self) -> u64 {
        if end <= self {
            0
        } else if end.segment == self.segment {
            end.offset - self.offset
        } else {
            (end.segment - self.segment) * SEGMENT_BYTES + end.offset
                - self.offset.min(SEGMENT_BYTES)
        }
    }
}

fn segment_path(dir: &Path, segment: u64) -> PathBuf {
    dir.join(format!("seg-{segment:08}.jsonl"))
}

struct Appender {
    file: File,
    at: Position,
}

/// This process's journal.
pub struct Journal {
    dir: PathBuf,
    _lock: File,
    appender: Mutex<Appender>,
    end: watch::Sender<Position>,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// The journal of a process that died, adopted with its lock held.
#[derive(Debug)]
pub struct Orphan {
    pub dir: PathBuf,
    pub _lock: File,
}

fn lock_file(dir: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(LOCK))
}

impl Journal {
    /// Creates this process's journal under `root` and adopts the journals of dead processes.
    pub fn open(root: &Path) -> io::Result<(Self, Vec<Orphan>)> {
        fs::create_dir_all(root)?;
        let mut orphans = Vec::new();
        let mut entries: Vec<PathBuf> = fs::read_dir(root)?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect();
        entries.sort();
        for dir in entries {
            let lock = lock_file(&dir)?;
            match lock.try_lock() {
                Ok(()) => orphans.push(Orphan { dir, _lock: lock }),
                Err(fs::TryLockError::WouldBlock) => {}
                Err(fs::TryLockError::Error(e)) => return Err(e),
            }
        }
        // uuid v7 names sort by creation time, so adopted journals are replayed oldest first.
        let dir = root.join(uuid::Uuid::now_v7().simple().to_string());
        fs::create_dir_all(&dir)?;
        let lock = lock_file(&dir)?;
        lock.lock()?;
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(segment_path(&dir, 1))?;
        let (end, _) = watch::channel(Position::START);
        let appender = Mutex::new(Appender {
            file,
            at: Position::START,
        });
        Ok((
            Self {
                dir,
                _lock: lock,
                appender,
                end,
            },
            orphans,
        ))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends one line (ending in `\n`) with a single write; returns the end position after it.
    /// Once this returns the line is in the operating system and survives the process.
    pub fn append(&self, line: &[u8]) -> io::Result<Position> {
        let mut a = self
            .appender
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        a.file.write_all(line)?;
        a.at.offset += line.len() as u64;
        let mut end = a.at;
        if a.at.offset >= SEGMENT_BYTES {
            end = self.next_segment(&mut a)?;
        }
        drop(a);
        self.end.send_if_modified(|e| {
            let newer = end > *e;
            if newer {
                *e = end;
            }
            newer
        });
        Ok(end)
    }

    /// Starts a new segment, so the current one is deleted once every destination has passed it
    /// (an erasure leaves no plaintext behind in the journal).
    pub fn roll(&self) -> io::Result<()> {
        let mut a = self
            .appender
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if a.at.offset > 0 {
            self.next_segment(&mut a)?;
        }
        Ok(())
    }

    /// Closes the current segment and appends to the next one from now on.
    fn next_segment(&self, a: &mut Appender) -> io::Result<Position> {
        let next = Position {
            segment: a.at.segment + 1,
            offset: 0,
        };
        a.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(segment_path(&self.dir, next.segment))?;
        a.at = next;
        Ok(next)
    }

    /// The position after the last appended line.
    pub fn end(&self) -> Position {
        *self.end.borrow()
    }

    pub fn subscribe(&self) -> watch::Receiver<Position> {
        self.end.subscribe()
    }
}

/// What a reader found.
pub enum Fetched {
    /// Events up to `next` (which may also skip unreadable lines).
    Batch {
        events: Vec<RecordedEvent>,
        next: Position,
        unreadable: usize,
    },
    /// Nothing more for now (or ever, when the journal is closed).
    Empty,
}

/// One destination's cursor in one journal directory.
#[derive(Debug)]
pub struct Reader {
    dir: PathBuf,
    cursor_file: PathBuf,
    /// The cursor file, open for rewriting in place.
    cursor: Option<File>,
    pub at: Position,
}

/// The cursor is written as one fixed-width record (`<segment> <offset>`, space-padded), in place:
/// one `pwrite` per batch instead of a new file and a rename, which made ext4 flush on every batch.
/// A process killed mid-write cannot tear it (the write is done or not); should power loss tear it,
/// the cursor reads as unknown and the journal is delivered again from its start, which the database
/// destination skips as already stored.
const CURSOR_WIDTH: usize = 48;

impl Reader {
    pub fn new(dir: &Path, destination: &str) -> Self {
        let cursor_file = dir.join(format!("cursor-{destination}"));
        let at = fs::read_to_string(&cursor_file)
            .ok()
            .and_then(|s| {
                let (seg, off) = s.trim().split_once(' ')?;
                Some(Position {
                    segment: seg.parse().ok()?,
                    offset: off.parse().ok()?,
                })
            })
            .unwrap_or(Position::START);
        Self {
            dir: dir.to_path_buf(),
            cursor_file,
            cursor: None,
            at,
        }
    }

    /// Reads up to `max_bytes` of whole lines after the cursor, without moving it.
    pub fn read(&mut self, max_bytes: usize) -> io::Result<Fetched> {
        loop {
            // A later segment exists only once this one is final: check before reading.
            let has_next = segment_path(&self.dir, self.at.segment + 1).exists();
            let mut buf = Vec::new();
            match File::open(segment_path(&self.dir, self.at.segment)) {
                Ok(mut f) => {
                    f.seek(SeekFrom::Start(self.at.offset))?;
                    f.take(max_bytes as u64).read_to_end(&mut buf)?;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
            let Some(last_newline) = buf.iter().rposition(|b| *b == b'\n') else {
                if buf.len() >= max_bytes {
                    return Err(io::Error::other(format!(
                        "a journal line longer than {max_bytes} bytes in {}",
                        self.dir.display()
                    )));
                }
                if has_next {
                    // A torn last line of a closed segment (the process died mid-write) is skipped.
                    self.at = Position {
                        segment: self.at.segment + 1,
                        offset: 0,
                    };
                    continue;
                }
                return Ok(Fetched::Empty);
            };
            let whole = &buf[..=last_newline];
            let mut events = Vec::new();
            let mut unreadable = 0;
            for line in whole.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                match serde_json::from_slice::<RecordedEvent>(line) {
                    Ok(e) => events.push(e),
                    Err(_) => unreadable += 1,
                }
            }
            let next = Position {
                segment: self.at.segment,
                offset: self.at.offset + whole.len() as u64,
            };
            return Ok(Fetched::Batch {
                events,
                next,
                unreadable,
            });
        }
    }

    /// Moves the cursor to `next` and remembers it.
    pub fn commit(&mut self, next: Position) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        self.at = next;
        let file = match &mut self.cursor {
            Some(file) => file,
            None => self.cursor.insert(
                OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .open(&self.cursor_file)?,
            ),
        };
        let record = format!(
            "{:<width$}\n",
            format!("{} {}", next.segment, next.offset),
            width = CURSOR_WIDTH - 1
        );
        file.write_all_at(record.as_bytes(), 0)
    }
}

/// Deletes the segments before `segment` in `dir`.
pub fn delete_segments_before(dir: &Path, segment: u64) {
    for s in (1..segment).rev() {
        match fs::remove_file(segment_path(dir, s)) {
            Ok(()) => {}
            Err(_) => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{Actor, AuditEvent, EventKind, Outcome};

    fn line(n: u32) -> Vec<u8> {
        let e = RecordedEvent {
            id: uuid::Uuid::now_v7(),
            timestamp: chrono::Utc::now(),
            event: AuditEvent::new(
                EventKind::LoginFailure,
                Actor::user(n.to_string(), "a"),
                Outcome::Failure,
            ),
            pii: None,
        };
        let mut l = serde_json::to_vec(&e).unwrap();
        l.push(b'\n');
        l
    }

    #[test]
    fn a_journal_left_by_a_dead_process_is_adopted_and_read_from_its_cursor() {
        let root = tempfile::tempdir().unwrap();
        let (first, orphans) = Journal::open(root.path()).unwrap();
        assert!(orphans.is_empty());
        let lines: Vec<Vec<u8>> = (0..3).map(line).collect();
        for l in &lines {
            first.append(l).unwrap();
        }
        let dir = first.dir().to_path_buf();
        let mut r = Reader::new(&dir, "file-0");
        let Fetched::Batch { events, .. } = r.read(1 << 20).unwrap() else {
            panic!("events expected")
        };
        assert_eq!(events.len(), 3);
        r.read(1 << 20).unwrap();
        // Past the first line (lines differ in length: the timestamp's fraction varies).
        r.commit(Position {
            segment: 1,
            offset: lines[0].len() as u64,
        })
        .unwrap();

        let (_second, orphans) = Journal::open(root.path()).unwrap();
        assert_eq!(orphans.len(), 0, "a live process's journal is not adopted");
        drop(first);
        let (_third, orphans) = Journal::open(root.path()).unwrap();
        let dirs: Vec<_> = orphans.iter().map(|o| o.dir.clone()).collect();
        assert!(dirs.contains(&dir), "{dirs:?}");
        let mut r = Reader::new(&dir, "file-0");
        let Fetched::Batch { events, .. } = r.read(1 << 20).unwrap() else {
            panic!("events expected")
        };
        assert_eq!(events.len(), 2, "read on from the remembered cursor");
    }
}

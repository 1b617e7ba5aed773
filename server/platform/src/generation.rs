//! When access decisions may be reused: a counter that every change to accounts, roles, modules or
//! their shares moves forward, seen by every process using the same database.
//!
//! Every authenticated request needs the caller's account, roles and permissions, and every execute
//! needs the module's owner, status, capability group and shares. Reading them from the database
//! each time is most of the cost of a request, yet they change rarely. [`Fresh`] keeps them in
//! memory, tagged with the [`AccessGeneration`] read *before* loading them, and trusts an entry
//! only while the generation still reads the same. Every writer writes through [`AccessWrites`]:
//! the transaction it opens moves the generation *after* the change is committed, so a reader
//! either sees the new generation (and reloads) or read the generation before the commit (and its
//! entry is dropped at the next request). The services hold no generation to move by hand; see
//! [`writes`] for the rule and the columns outside it.
//!
//! A time-to-live would not do: disabling a user, from the dashboard or from the CLI in another
//! process, must make their tokens fail at once, not a minute later.
//!
//! Where the counter lives depends on the database:
//! - **SQLite**: a 16-byte file beside the database file (`wasm-as-os.db-generation`): the value
//!   and a check word. Readers `pread` it (one system call, no lock); writers take an exclusive
//!   file lock and rewrite it. A read torn by a concurrent write fails the check and is treated as
//!   "unknown" (nothing cached is trusted).
//! - **PostgreSQL**: a `LISTEN` connection on the channel [`CHANNEL`]; every write sends
//!   `pg_notify` after committing, and each notification moves this replica's counter. While the
//!   listening connection is down, nothing cached is trusted; on reconnecting, everything cached
//!   before is dropped. Another replica sees a change once the notification arrives (normally well
//!   under a millisecond on a local network); the writing replica sees it at once.
//! - **In-memory SQLite** (tests): one process, so a counter in memory.
//!
//! Each process also counts its own writes, so its own changes are seen at once even if the shared
//! counter could not be moved (that failure is logged).
//!
//! The backstop: a notice can be lost (a `pg_notify` that failed after the change committed, a
//! counter file whose lock could not be taken). So that another process does not trust what it
//! cached forever then, [`Fresh`] reloads any entry older than [`MAX_TRUST`] whatever the
//! generation says: a lost notice delays a change by at most that long, never indefinitely.

use std::{
    collections::HashMap,
    fs::File,
    hash::Hash,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex, RwLock,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

pub mod writes;

use sea_orm::{ConnectionTrait, DatabaseConnection};

pub use self::writes::{AccessTx, AccessWrites};
use crate::clock::{Clock, SystemClock};

/// The longest a cached entry is trusted without reloading it, even while the generation stands
/// (the backstop for a lost notice; see the module documentation).
pub const MAX_TRUST: Duration = Duration::from_secs(30);

/// The PostgreSQL notification channel writers signal on.
pub const CHANNEL: &str = "wasm_as_os_access";

/// The suffix of the counter file beside an SQLite database file.
pub const FILE_SUFFIX: &str = "-generation";

/// A reading of the generation: entries loaded under one reading are valid while it stays the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tag {
    shared: u64,
    local: u64,
}

/// The access generation of one database; cheap to clone.
#[derive(Debug, Clone)]
pub struct AccessGeneration(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    /// This process's own writes.
    local: AtomicU64,
    shared: Shared,
    /// The age of cached entries is measured on it (injected in tests).
    clock: Arc<dyn Clock>,
}

/// A PostgreSQL listener whose last notification (its own heartbeat at least) is older than this
/// is presumed cut off: nothing cached is trusted until it hears again.
const SILENCE: Duration = Duration::from_secs(6);
/// How often each process sends itself a heartbeat notification.
const HEARTBEAT: Duration = Duration::from_secs(2);
const HEARTBEAT_PAYLOAD: &str = "heartbeat";
/// How long an advance waits for another process holding the counter file's lock.
const LOCK_PATIENCE: Duration = Duration::from_secs(1);

#[derive(Debug)]
enum Shared {
    /// One process only.
    Memory,
    /// The counter file of an SQLite database; reopened when it was deleted or replaced.
    File {
        path: PathBuf,
        file: RwLock<File>,
        writing: Mutex<()>,
    },
    /// Notifications received on [`CHANNEL`], whether the listener is connected, and when it
    /// last heard anything (milliseconds since `since`).
    Postgres {
        db: DatabaseConnection,
        received: AtomicU64,
        listening: AtomicBool,
        since: Instant,
        heard_ms: AtomicU64,
    },
}

/// The check word stored after the value.
fn check(value: u64) -> u64 {
    value.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5741_534D_4153_4F53
}

fn encode(value: u64) -> [u8; 16] {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&value.to_le_bytes());
    bytes[8..].copy_from_slice(&check(value).to_le_bytes());
    bytes
}

fn decode(bytes: &[u8; 16]) -> Option<u64> {
    let (v, c) = bytes.split_at(8);
    let value = u64::from_le_bytes(v.try_into().ok()?);
    let stored = u64::from_le_bytes(c.try_into().ok()?);
    (stored == check(value)).then_some(value)
}

fn read_file(file: &File) -> Option<u64> {
    use std::os::unix::fs::FileExt;
    let mut bytes = [0u8; 16];
    file.read_exact_at(&mut bytes, 0).ok()?;
    decode(&bytes)
}

/// A starting value taken from the clock, so a counter file made afresh (deleted, damaged) does
/// not count through values an older reader may have cached under.
fn fresh_start() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// Takes the counter file's lock, waiting at most [`LOCK_PATIENCE`] for another process.
fn lock(file: &File) -> std::io::Result<()> {
    let deadline = Instant::now() + LOCK_PATIENCE;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(()),
            Err(std::fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(1))
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(std::io::Error::other(
                    "another process holds the counter file's lock",
                ));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(e),
        }
    }
}

/// Runs `f` on the counter file under its lock.
fn locked<T>(file: &File, f: impl FnOnce() -> std::io::Result<T>) -> std::io::Result<T> {
    lock(file)?;
    let result = f();
    file.unlock()?;
    result
}

/// Opens (or creates) the counter file, starting a new or damaged one at [`fresh_start`].
fn open_file(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::FileExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    locked(&file, || {
        if read_file(&file).is_none() {
            file.write_all_at(&encode(fresh_start()), 0)
        } else {
            Ok(())
        }
    })?;
    Ok(file)
}

/// Moves the counter file one forward.
fn advance_file(file: &File) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    locked(file, || {
        // Under the lock no write is under way, so the value is whole unless the file was damaged.
        let value = read_file(file).map_or_else(fresh_start, |v| v.wrapping_add(1));
        file.write_all_at(&encode(value), 0)
    })
}

impl AccessGeneration {
    /// A counter for one process only (in-memory databases, tests).
    pub fn in_memory() -> Self {
        Self::in_memory_with_clock(Arc::new(SystemClock))
    }

    /// [`Self::in_memory`] measuring the age of cached entries on `clock`.
    pub fn in_memory_with_clock(clock: Arc<dyn Clock>) -> Self {
        Self(Arc::new(Inner {
            local: AtomicU64::new(0),
            shared: Shared::Memory,
            clock,
        }))
    }

    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.0.clock.now()
    }

    /// The counter file beside the SQLite database at `db_path` (through symbolic links, so every
    /// process finds the same file).
    pub fn sqlite_file(db_path: &Path) -> std::io::Result<Self> {
        let db_path = std::fs::canonicalize(db_path).unwrap_or_else(|_| db_path.to_path_buf());
        let mut name = db_path.into_os_string();
        name.push(FILE_SUFFIX);
        let path = PathBuf::from(name);
        let file = RwLock::new(open_file(&path)?);
        Ok(Self(Arc::new(Inner {
            local: AtomicU64::new(0),
            shared: Shared::File {
                path,
                file,
                writing: Mutex::new(()),
            },
            clock: Arc::new(SystemClock),
        })))
    }

    /// Listens for PostgreSQL notifications on [`CHANNEL`] on a connection of its own; must be
    /// called inside a tokio runtime. The listener stops when `db`'s pool is closed.
    pub fn postgres(db: DatabaseConnection) -> Self {
        let generation = Self(Arc::new(Inner {
            local: AtomicU64::new(0),
            shared: Shared::Postgres {
                db,
                received: AtomicU64::new(0),
                listening: AtomicBool::new(false),
                since: Instant::now(),
                heard_ms: AtomicU64::new(0),
            },
            clock: Arc::new(SystemClock),
        }));
        let listener = generation.clone();
        tokio::spawn(async move { listener.listen().await });
        let heart = generation.clone();
        tokio::spawn(async move { heart.heartbeat().await });
        generation
    }

    /// The current reading, or `None` when it cannot be known (nothing cached may be trusted).
    pub fn current(&self) -> Option<Tag> {
        let local = self.0.local.load(Ordering::Acquire);
        let shared = match &self.0.shared {
            Shared::Memory => 0,
            Shared::File { path, file, .. } => {
                let (unlinked, value) = {
                    let file = file.read().ok()?;
                    (file.metadata().ok()?.nlink() == 0, read_file(&file))
                };
                if unlinked {
                    // A deleted or replaced file no longer counts: open the one at the path.
                    if let (Ok(fresh), Ok(mut held)) = (open_file(path), file.write()) {
                        *held = fresh;
                    }
                    return None;
                }
                // A torn read (a write under way) or a damaged file: unknown until the next advance.
                value?
            }
            Shared::Postgres {
                received,
                listening,
                since,
                heard_ms,
                ..
            } => {
                let now_ms = u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX);
                let silent =
                    Duration::from_millis(now_ms.saturating_sub(heard_ms.load(Ordering::Acquire)));
                if !listening.load(Ordering::Acquire) || silent > SILENCE {
                    return None;
                }
                received.load(Ordering::Acquire)
            }
        };
        Some(Tag { shared, local })
    }

    /// Marks every cached access decision stale, here at once and in every other process (on
    /// PostgreSQL, once the notification is delivered). Services never call it: an [`AccessTx`]
    /// does, after its commit. A failure to tell other processes is logged, not returned: the
    /// change itself has been made.
    pub(crate) fn advance(&self) {
        self.0.local.fetch_add(1, Ordering::AcqRel);
        match &self.0.shared {
            Shared::Memory => {}
            Shared::File {
                path,
                file,
                writing,
            } => {
                // `flock` does not exclude threads of one process: they take turns here first.
                let result = match (writing.lock(), file.read()) {
                    (Ok(_turn), Ok(file)) => advance_file(&file),
                    _ => Err(std::io::Error::other("a lock was poisoned")),
                };
                if let Err(e) = result {
                    tracing::error!(path = %path.display(), error = %e, "cannot move the access generation; other processes may use stale access decisions");
                }
            }
            Shared::Postgres { db, .. } => {
                let db = db.clone();
                let notify = async move {
                    if let Err(e) = db
                        .execute_unprepared(&format!("SELECT pg_notify('{CHANNEL}', '')"))
                        .await
                    {
                        tracing::error!(error = %e, "cannot notify other replicas of an access change; they may use stale access decisions");
                    }
                };
                // Its own task, so the notification is sent even if the caller is cancelled.
                match tokio::runtime::Handle::try_current() {
                    Ok(handle) => drop(handle.spawn(notify)),
                    Err(_) => tracing::error!(
                        "no runtime to notify other replicas of an access change on"
                    ),
                }
            }
        }
    }

    async fn listen(&self) {
        use sea_orm::sqlx::postgres::{PgListener, PgPoolOptions};
        let Shared::Postgres {
            db,
            received,
            listening,
            since,
            heard_ms,
        } = &self.0.shared
        else {
            return;
        };
        let heard = || {
            heard_ms.store(
                u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX),
                Ordering::Release,
            )
        };
        let main = db.get_postgres_connection_pool().clone();
        // A pool of one of its own, so listening never takes a connection from the services.
        let own = PgPoolOptions::new()
            .max_connections(1)
            .connect_lazy_with((*main.connect_options()).clone());
        let mut closed = main.close_event();
        let mut backoff = Duration::from_millis(100);
        loop {
            let session = async {
                let mut listener = PgListener::connect_with(&own).await?;
                listener.listen(CHANNEL).await?;
                // Whatever changed while nobody listened: drop it all.
                received.fetch_add(1, Ordering::AcqRel);
                heard();
                listening.store(true, Ordering::Release);
                // `try_recv` returns `None` when the connection was lost; start afresh then.
                while let Some(n) = listener.try_recv().await? {
                    heard();
                    if n.payload() != HEARTBEAT_PAYLOAD {
                        received.fetch_add(1, Ordering::AcqRel);
                    }
                }
                Ok::<_, sea_orm::sqlx::Error>(())
            };
            let ended = closed.do_until(session).await;
            listening.store(false, Ordering::Release);
            received.fetch_add(1, Ordering::AcqRel);
            match ended {
                Err(_) => {
                    // The services' pool was closed: shut down.
                    own.close().await;
                    return;
                }
                Ok(Ok(())) => tracing::warn!(
                    "lost the access-change listener; cached access decisions are not used until it reconnects"
                ),
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "cannot listen for access changes; retrying")
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
            if main.is_closed() {
                own.close().await;
                return;
            }
        }
    }

    /// Sends a heartbeat on [`CHANNEL`] every [`HEARTBEAT`], so a listener cut off without
    /// noticing stops being trusted after [`SILENCE`].
    async fn heartbeat(&self) {
        let Shared::Postgres { db, listening, .. } = &self.0.shared else {
            return;
        };
        let beat = format!("SELECT pg_notify('{CHANNEL}', '{HEARTBEAT_PAYLOAD}')");
        loop {
            tokio::time::sleep(HEARTBEAT).await;
            if db.get_postgres_connection_pool().is_closed() {
                return;
            }
            if listening.load(Ordering::Acquire)
                && let Err(e) = db.execute_unprepared(&beat).await
            {
                tracing::debug!(error = %e, "cannot send the access listener's heartbeat");
            }
        }
    }
}

/// Values loaded from the database and reused while the [`AccessGeneration`] stays the same.
#[derive(Debug)]
pub struct Fresh<K, V> {
    generation: AccessGeneration,
    entries: Mutex<HashMap<K, Entry<V>>>,
    capacity: usize,
}

/// A cached value, the generation it was loaded under and when.
#[derive(Debug)]
struct Entry<V> {
    tag: Tag,
    loaded: chrono::DateTime<chrono::Utc>,
    value: Arc<V>,
}

impl<K: Eq + Hash + Clone, V> Fresh<K, V> {
    pub fn new(generation: AccessGeneration, capacity: usize) -> Self {
        Self {
            generation,
            entries: Mutex::new(HashMap::new()),
            capacity,
        }
    }

    /// The value for `key`: the cached one if it was loaded under the current generation, else
    /// what `load` reads (kept for later when the generation is known).
    pub async fn get_or_load<E, F>(&self, key: &K, load: F) -> Result<Arc<V>, E>
    where
        F: std::future::Future<Output = Result<V, E>>,
    {
        // Read before loading: a change committed during the load moves it past this tag.
        let tag = self.generation.current();
        let now = self.generation.now();
        let young = |loaded: chrono::DateTime<chrono::Utc>| {
            (now - loaded).to_std().is_ok_and(|age| age < MAX_TRUST)
        };
        if let Some(tag) = tag
            && let Ok(entries) = self.entries.lock()
            && let Some(entry) = entries.get(key)
            && entry.tag == tag
            && young(entry.loaded)
        {
            return Ok(entry.value.clone());
        }
        let value = Arc::new(load.await?);
        if let Some(tag) = tag
            && let Ok(mut entries) = self.entries.lock()
        {
            if entries.len() >= self.capacity {
                entries.retain(|_, e| e.tag == tag && young(e.loaded));
                if entries.len() >= self.capacity {
                    entries.clear();
                }
            }
            let entry = Entry {
                tag,
                loaded: now,
                value: value.clone(),
            };
            entries.insert(key.clone(), entry);
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_torn_or_damaged_counter_reads_as_unknown() {
        let whole = encode(41);
        assert_eq!(decode(&whole), Some(41));
        let next = encode(42);
        let mut torn = whole;
        torn[..8].copy_from_slice(&next[..8]);
        assert_eq!(decode(&torn), None);
        let mut half = whole;
        half[3] = next[3] ^ 0xff;
        assert_eq!(decode(&half), None);
    }

    #[tokio::test]
    async fn a_write_in_one_process_is_seen_by_another_opening_the_same_file() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("wasm-as-os.db");
        // Two handles on one file stand for two processes: they share nothing but the file.
        let server = AccessGeneration::sqlite_file(&db).unwrap();
        let cli = AccessGeneration::sqlite_file(&db).unwrap();
        let before = server.current().unwrap();
        assert_eq!(cli.current().unwrap().shared, before.shared);
        cli.advance();
        let after = server.current().unwrap();
        assert_ne!(after, before);
        assert_eq!(after.shared, before.shared + 1);
        assert!(dir.path().join("wasm-as-os.db-generation").exists());
    }

    #[test]
    fn a_replaced_counter_file_is_reopened_rather_than_read_forever() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("wasm-as-os.db");
        let server = AccessGeneration::sqlite_file(&db).unwrap();
        assert!(server.current().is_some());
        std::fs::remove_file(dir.path().join("wasm-as-os.db-generation")).unwrap();
        assert_eq!(
            server.current(),
            None,
            "the old file is gone: nothing cached is trusted"
        );
        let cli = AccessGeneration::sqlite_file(&db).unwrap();
        let seen = server.current().unwrap();
        cli.advance();
        assert_ne!(
            server.current().unwrap(),
            seen,
            "the server reads the file the CLI writes"
        );
    }

    #[tokio::test]
    async fn a_cached_value_is_reused_until_the_generation_moves() {
        let generation = AccessGeneration::in_memory();
        let cache: Fresh<u32, &str> = Fresh::new(generation.clone(), 8);
        let load = |v: &'static str| async move { Ok::<_, ()>(v) };
        assert_eq!(*cache.get_or_load(&1, load("a")).await.unwrap(), "a");
        assert_eq!(*cache.get_or_load(&1, load("b")).await.unwrap(), "a");
        assert_eq!(*cache.get_or_load(&2, load("x")).await.unwrap(), "x");
        generation.advance();
        assert_eq!(*cache.get_or_load(&1, load("c")).await.unwrap(), "c");
    }

    #[tokio::test]
    async fn a_full_cache_keeps_only_current_entries() {
        let generation = AccessGeneration::in_memory();
        let cache: Fresh<u32, u32> = Fresh::new(generation.clone(), 2);
        for k in 0..2 {
            cache
                .get_or_load(&k, async move { Ok::<_, ()>(k) })
                .await
                .unwrap();
        }
        cache
            .get_or_load(&9, async { Ok::<_, ()>(9) })
            .await
            .unwrap();
        assert!(cache.entries.lock().unwrap().len() <= 2);
        assert_eq!(
            *cache
                .get_or_load(&9, async { Ok::<_, ()>(0) })
                .await
                .unwrap(),
            9
        );
    }

    #[tokio::test]
    async fn a_change_committed_while_loading_is_not_cached_as_current() {
        let generation = AccessGeneration::in_memory();
        let cache: Fresh<u32, &str> = Fresh::new(generation.clone(), 8);
        // The load reads the old value, and the writer commits and advances before it returns.
        let g = generation.clone();
        let stale = cache.get_or_load(&1, async move {
            g.advance();
            Ok::<_, ()>("old")
        });
        assert_eq!(*stale.await.unwrap(), "old");
        assert_eq!(
            *cache
                .get_or_load(&1, async { Ok::<_, ()>("new") })
                .await
                .unwrap(),
            "new"
        );
    }

    #[tokio::test]
    async fn a_change_whose_notice_was_lost_is_seen_once_the_entry_is_older_than_max_trust() {
        let start = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .to_utc();
        let clock = crate::clock::ManualClock::new(start);
        // Two processes sharing only the database; the writer's notice never reaches the reader.
        let database = Arc::new(Mutex::new("enabled"));
        let writer = AccessGeneration::in_memory();
        let reader = AccessGeneration::in_memory_with_clock(Arc::new(clock.clone()));
        let cache: Fresh<u32, &str> = Fresh::new(reader.clone(), 8);
        let read = || {
            let db = database.clone();
            async move { Ok::<_, ()>(*db.lock().unwrap()) }
        };
        assert_eq!(*cache.get_or_load(&1, read()).await.unwrap(), "enabled");
        *database.lock().unwrap() = "disabled";
        writer.advance();
        assert_eq!(
            *cache.get_or_load(&1, read()).await.unwrap(),
            "enabled",
            "without the notice the reader still trusts what it cached"
        );
        clock.advance(
            chrono::Duration::from_std(MAX_TRUST).unwrap() - chrono::Duration::milliseconds(1),
        );
        assert_eq!(*cache.get_or_load(&1, read()).await.unwrap(), "enabled");
        clock.advance(chrono::Duration::milliseconds(1));
        assert_eq!(
            *cache.get_or_load(&1, read()).await.unwrap(),
            "disabled",
            "at MAX_TRUST the entry is reloaded: a lost notice delays a change, never forever"
        );
    }

    #[tokio::test]
    async fn errors_are_not_cached() {
        let cache: Fresh<u32, u32> = Fresh::new(AccessGeneration::in_memory(), 8);
        assert_eq!(
            cache
                .get_or_load(&1, async { Err::<u32, _>("down") })
                .await
                .unwrap_err(),
            "down"
        );
        assert_eq!(
            *cache
                .get_or_load(&1, async { Ok::<_, &str>(7) })
                .await
                .unwrap(),
            7
        );
    }
}

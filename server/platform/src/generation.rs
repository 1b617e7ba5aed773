//! When access decisions may be reused: a counter that every change to accounts, roles, modules or
//! their shares moves forward, seen by every process using the same database.
//!
//! Every authenticated request needs the caller's account, roles and permissions, and every execute
//! needs the module's owner, status, capability group and shares. Reading them from the database
//! each time is most of the cost of a request, yet they change rarely. [`Fresh`] keeps them in
//! memory, tagged with the [`AccessGeneration`] read *before* loading them, and trusts an entry
//! only while the generation still reads the same. Each writer calls [`AccessGeneration::advance`]
//! *after* its change is committed, so a reader either sees the new generation (and reloads) or
//! read the generation before the commit (and its entry is dropped at the next request).
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

use std::{
    collections::HashMap,
    fs::File,
    hash::Hash,
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use sea_orm::{ConnectionTrait, DatabaseConnection};

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
}

#[derive(Debug)]
enum Shared {
    /// One process only.
    Memory,
    /// The counter file of an SQLite database.
    File { path: PathBuf, file: File },
    /// Notifications received on [`CHANNEL`], and whether the listener is connected.
    Postgres { db: DatabaseConnection, received: AtomicU64, listening: AtomicBool },
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

/// Opens (or creates) the counter file. A new file starts at a value taken from the clock, so a
/// file deleted and created again does not count through values an older reader may have cached.
fn open_file(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::FileExt;
    let file = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path)?;
    file.lock()?;
    let result = (|| -> std::io::Result<()> {
        if read_file(&file).is_none() {
            let start = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64);
            file.write_all_at(&encode(start), 0)?;
        }
        Ok(())
    })();
    file.unlock()?;
    result.map(|()| file)
}

impl AccessGeneration {
    /// A counter for one process only (in-memory databases, tests).
    pub fn in_memory() -> Self {
        Self(Arc::new(Inner { local: AtomicU64::new(0), shared: Shared::Memory }))
    }

    /// The counter file beside the SQLite database at `db_path`.
    pub fn sqlite_file(db_path: &Path) -> std::io::Result<Self> {
        let mut name = db_path.as_os_str().to_owned();
        name.push(FILE_SUFFIX);
        let path = PathBuf::from(name);
        let file = open_file(&path)?;
        Ok(Self(Arc::new(Inner { local: AtomicU64::new(0), shared: Shared::File { path, file } })))
    }

    /// Listens for PostgreSQL notifications on [`CHANNEL`]; must be called inside a tokio runtime.
    /// The listener stops when the pool is closed.
    pub fn postgres(db: DatabaseConnection) -> Self {
        let generation = Self(Arc::new(Inner {
            local: AtomicU64::new(0),
            shared: Shared::Postgres { db: db.clone(), received: AtomicU64::new(0), listening: AtomicBool::new(false) },
        }));
        let listener = generation.clone();
        tokio::spawn(async move { listener.listen(db).await });
        generation
    }

    /// The current reading, or `None` when it cannot be known (nothing cached may be trusted).
    pub fn current(&self) -> Option<Tag> {
        let local = self.0.local.load(Ordering::Acquire);
        let shared = match &self.0.shared {
            Shared::Memory => 0,
            Shared::File { file, .. } => read_file(file)?,
            Shared::Postgres { received, listening, .. } => {
                if !listening.load(Ordering::Acquire) {
                    return None;
                }
                received.load(Ordering::Acquire)
            }
        };
        Some(Tag { shared, local })
    }

    /// Marks every cached access decision stale, here and in every other process. Call it after
    /// the change is committed. A failure to tell other processes is logged, not returned: the
    /// change itself has been made.
    pub async fn advance(&self) {
        self.0.local.fetch_add(1, Ordering::AcqRel);
        match &self.0.shared {
            Shared::Memory => {}
            Shared::File { path, file } => {
                if let Err(e) = advance_file(file) {
                    tracing::error!(path = %path.display(), error = %e, "cannot move the access generation; other processes may use stale access decisions");
                }
            }
            Shared::Postgres { db, .. } => {
                let notify = format!("SELECT pg_notify('{CHANNEL}', '')");
                if let Err(e) = db.execute_unprepared(&notify).await {
                    tracing::error!(error = %e, "cannot notify other replicas of an access change; they may use stale access decisions");
                }
            }
        }
    }

    async fn listen(&self, db: DatabaseConnection) {
        use sea_orm::sqlx::postgres::PgListener;
        let Shared::Postgres { received, listening, .. } = &self.0.shared else { return };
        let mut backoff = Duration::from_millis(100);
        loop {
            let pool = db.get_postgres_connection_pool();
            if pool.is_closed() {
                return;
            }
            let connected = async {
                let mut listener = PgListener::connect_with(pool).await?;
                listener.listen(CHANNEL).await?;
                Ok::<_, sea_orm::sqlx::Error>(listener)
            }
            .await;
            match connected {
                Ok(mut listener) => {
                    // Whatever changed while nobody listened: drop it all.
                    received.fetch_add(1, Ordering::AcqRel);
                    listening.store(true, Ordering::Release);
                    backoff = Duration::from_millis(100);
                    // `try_recv` returns `None` when the connection was lost; start afresh then.
                    while let Ok(Some(_)) = listener.try_recv().await {
                        received.fetch_add(1, Ordering::AcqRel);
                    }
                    listening.store(false, Ordering::Release);
                    received.fetch_add(1, Ordering::AcqRel);
                    if pool.is_closed() {
                        return;
                    }
                    tracing::warn!("lost the access-change listener; cached access decisions are not used until it reconnects");
                }
                Err(e) => {
                    if pool.is_closed() {
                        return;
                    }
                    tracing::warn!(error = %e, "cannot listen for access changes; retrying");
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }
}

fn advance_file(file: &File) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    file.lock()?;
    let result = (|| -> std::io::Result<()> {
        let mut bytes = [0u8; 16];
        file.read_exact_at(&mut bytes, 0)?;
        // Under the lock no write is under way, so the value is whole unless the file was damaged.
        let value = decode(&bytes).unwrap_or(0);
        file.write_all_at(&encode(value.wrapping_add(1)), 0)
    })();
    file.unlock()?;
    result
}

/// Values loaded from the database and reused while the [`AccessGeneration`] stays the same.
#[derive(Debug)]
pub struct Fresh<K, V> {
    generation: AccessGeneration,
    entries: Mutex<HashMap<K, (Tag, Arc<V>)>>,
    capacity: usize,
}

impl<K: Eq + Hash + Clone, V> Fresh<K, V> {
    pub fn new(generation: AccessGeneration, capacity: usize) -> Self {
        Self { generation, entries: Mutex::new(HashMap::new()), capacity }
    }

    /// The value for `key`: the cached one if it was loaded under the current generation, else
    /// what `load` reads (kept for later when the generation is known).
    pub async fn get_or_load<E, F>(&self, key: &K, load: F) -> Result<Arc<V>, E>
    where
        F: std::future::Future<Output = Result<V, E>>,
    {
        // Read before loading: a change committed during the load moves it past this tag.
        let tag = self.generation.current();
        if let Some(tag) = tag
            && let Ok(entries) = self.entries.lock()
            && let Some((at, value)) = entries.get(key)
            && *at == tag
        {
            return Ok(value.clone());
        }
        let value = Arc::new(load.await?);
        if let Some(tag) = tag
            && let Ok(mut entries) = self.entries.lock()
        {
            if entries.len() >= self.capacity {
                entries.retain(|_, (at, _)| *at == tag);
                if entries.len() >= self.capacity {
                    entries.clear();
                }
            }
            entries.insert(key.clone(), (tag, value.clone()));
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
        cli.advance().await;
        let after = server.current().unwrap();
        assert_ne!(after, before);
        assert_eq!(after.shared, before.shared + 1);
        assert!(dir.path().join("wasm-as-os.db-generation").exists());
    }

    #[tokio::test]
    async fn a_cached_value_is_reused_until_the_generation_moves() {
        let generation = AccessGeneration::in_memory();
        let cache: Fresh<u32, &str> = Fresh::new(generation.clone(), 8);
        let load = |v: &'static str| async move { Ok::<_, ()>(v) };
        assert_eq!(*cache.get_or_load(&1, load("a")).await.unwrap(), "a");
        assert_eq!(*cache.get_or_load(&1, load("b")).await.unwrap(), "a");
        assert_eq!(*cache.get_or_load(&2, load("x")).await.unwrap(), "x");
        generation.advance().await;
        assert_eq!(*cache.get_or_load(&1, load("c")).await.unwrap(), "c");
    }

    #[tokio::test]
    async fn a_full_cache_keeps_only_current_entries() {
        let generation = AccessGeneration::in_memory();
        let cache: Fresh<u32, u32> = Fresh::new(generation.clone(), 2);
        for k in 0..2 {
            cache.get_or_load(&k, async move { Ok::<_, ()>(k) }).await.unwrap();
        }
        cache.get_or_load(&9, async { Ok::<_, ()>(9) }).await.unwrap();
        assert!(cache.entries.lock().unwrap().len() <= 2);
        assert_eq!(*cache.get_or_load(&9, async { Ok::<_, ()>(0) }).await.unwrap(), 9);
    }

    #[tokio::test]
    async fn a_change_committed_while_loading_is_not_cached_as_current() {
        let generation = AccessGeneration::in_memory();
        let cache: Fresh<u32, &str> = Fresh::new(generation.clone(), 8);
        // The load reads the old value, and the writer commits and advances before it returns.
        let g = generation.clone();
        let stale = cache.get_or_load(&1, async move {
            g.advance().await;
            Ok::<_, ()>("old")
        });
        assert_eq!(*stale.await.unwrap(), "old");
        assert_eq!(*cache.get_or_load(&1, async { Ok::<_, ()>("new") }).await.unwrap(), "new");
    }

    #[tokio::test]
    async fn errors_are_not_cached() {
        let cache: Fresh<u32, u32> = Fresh::new(AccessGeneration::in_memory(), 8);
        assert_eq!(cache.get_or_load(&1, async { Err::<u32, _>("down") }).await.unwrap_err(), "down");
        assert_eq!(*cache.get_or_load(&1, async { Ok::<_, &str>(7) }).await.unwrap(), 7);
    }
}

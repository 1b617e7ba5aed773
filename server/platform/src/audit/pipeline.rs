//! The background writers: one consumer per destination reads the journal behind `record` and
//! delivers batches, retrying with backoff; a slow or failing destination delays only itself.

use std::{
    collections::HashMap,
    path::Path,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use tokio::{sync::watch, task::JoinHandle};

use super::{
    RecordedEvent,
    journal::{self, Fetched, Journal, Orphan, Position, Reader},
    sink::Sink,
};
use super::{personal, subjects::Subjects};
use crate::metrics::Metrics;

/// Bytes of journal read per batch (a few thousand events).
const BATCH_BYTES: usize = 1 << 20;
/// A destination this far behind is reported in the log.
const BEHIND_BYTES: u64 = 8 << 20;
const MAX_BACKOFF: Duration = Duration::from_secs(30);

struct Consumer {
    kind: &'static str,
    delivered: watch::Receiver<Position>,
}

/// A journal left by a dead process, shared by the consumers that replay it.
struct Adopted {
    orphan: Orphan,
    /// Consumers still replaying it; the last one removes the directory.
    remaining: AtomicUsize,
}

/// The running pipeline.
pub struct Pipeline {
    journal: Arc<Journal>,
    consumers: Vec<Consumer>,
    shutdown: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<bool>>>,
    closed: AtomicBool,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("journal", &self.journal)
            .finish_non_exhaustive()
    }
}

struct Context {
    name: String,
    sink: Sink,
    journal: Arc<Journal>,
    adopted: Vec<Arc<Adopted>>,
    /// Segment each consumer of this process's journal has reached.
    segments: Arc<Mutex<HashMap<String, u64>>>,
    delivered: watch::Sender<Position>,
    shutdown: watch::Receiver<bool>,
    metrics: Metrics,
    subjects: Arc<Subjects>,
}

impl Pipeline {
    /// Opens the journal under `root`, adopts journals of dead processes and starts one consumer
    /// per destination.
    pub fn start(
        root: &Path,
        sinks: Vec<(String, Sink)>,
        metrics: &Metrics,
        subjects: Arc<Subjects>,
    ) -> std::io::Result<Self> {
        let (journal, orphans) = Journal::open(root)?;
        let journal = Arc::new(journal);
        let count = sinks.len();
        let adopted: Vec<Arc<Adopted>> = orphans
            .into_iter()
            .map(|orphan| {
                tracing::info!(journal = %orphan.dir.display(), "delivering audit events left by a process that stopped without flushing");
                Arc::new(Adopted { orphan, remaining: AtomicUsize::new(count) })
            })
            .collect();
        let (shutdown, _) = watch::channel(false);
        let segments = Arc::new(Mutex::new(HashMap::new()));
        let mut consumers = Vec::new();
        let mut tasks = Vec::new();
        for (name, sink) in sinks {
            let (delivered, rx) = watch::channel(Position::default());
            consumers.push(Consumer {
                kind: sink.kind(),
                delivered: rx,
            });
            let cx = Context {
                name,
                sink,
                journal: journal.clone(),
                adopted: adopted.clone(),
                segments: segments.clone(),
                delivered,
                shutdown: shutdown.subscribe(),
                metrics: metrics.clone(),
                subjects: subjects.clone(),
            };
            tasks.push(tokio::spawn(run(cx)));
        }
        Ok(Self {
            journal,
            consumers,
            shutdown,
            tasks: Mutex::new(tasks),
            closed: AtomicBool::new(false),
        })
    }

    /// Starts a new journal segment (see [`Journal::roll`]).
    pub fn roll(&self) -> std::io::Result<()> {
        self.journal.roll()
    }

    /// Appends one journal line; the event is durable once this returns.
    pub fn append(&self, line: &[u8]) -> std::io::Result<Position> {
        if self.closed.load(Ordering::Acquire) {
            return Err(std::io::Error::other("the audit pipeline is shut down"));
        }
        self.journal.append(line)
    }

    /// Waits until the destinations of `kind` (all when `None`) have delivered everything appended
    /// so far, or `timeout` passed; returns whether they had.
    pub async fn flush(&self, kind: Option<&str>, timeout: Duration) -> bool {
        let target = self.journal.end();
        let wait = async {
            for c in self
                .consumers
                .iter()
                .filter(|c| kind.is_none_or(|k| k == c.kind))
            {
                let mut rx = c.delivered.clone();
                if rx.wait_for(|p| *p >= target).await.is_err() {
                    return false;
                }
            }
            true
        };
        tokio::time::timeout(timeout, wait).await.unwrap_or(false)
    }

    /// Stops accepting events, lets every destination deliver what is buffered (a destination that
    /// keeps failing gives up after a retry; its events stay in the journal for the next start),
    /// and removes the journal when everything was delivered.
    pub async fn shutdown(&self, timeout: Duration) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        self.shutdown.send_replace(true);
        let mut tasks = std::mem::take(
            &mut *self
                .tasks
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        let deadline = Instant::now() + timeout;
        let mut complete = true;
        for task in &mut tasks {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, &mut *task).await {
                Ok(Ok(done)) => complete &= done,
                Ok(Err(_)) => complete = false,
                Err(_) => {
                    task.abort();
                    complete = false;
                }
            }
        }
        let end = self.journal.end();
        complete &= self.consumers.iter().all(|c| *c.delivered.borrow() >= end);
        if complete {
            if let Err(e) = std::fs::remove_dir_all(self.journal.dir()) {
                tracing::warn!(error = %e, "could not remove the delivered audit journal");
            }
        } else {
            tracing::warn!(journal = %self.journal.dir().display(), "some audit events were not delivered before shutdown; they stay in the journal and are delivered at the next start");
        }
    }
}

async fn run(mut cx: Context) -> bool {
    for adopted in std::mem::take(&mut cx.adopted) {
        let dir = adopted.orphan.dir.clone();
        if !drain(&mut cx, &dir, false).await {
            return false;
        }
        if adopted.remaining.fetch_sub(1, Ordering::AcqRel) == 1
            && let Err(e) = std::fs::remove_dir_all(&dir)
        {
            tracing::warn!(error = %e, journal = %dir.display(), "could not remove a replayed audit journal");
        }
    }
    let dir = cx.journal.dir().to_path_buf();
    drain(&mut cx, &dir, true).await
}

/// Delivers a journal until it is done (adopted) or until shutdown once caught up (own);
/// returns false when the destination gave up at shutdown.
async fn drain(cx: &mut Context, dir: &Path, own: bool) -> bool {
    let mut reader = Reader::new(dir, &cx.name);
    let mut end = cx.journal.subscribe();
    let mut warned_at: Option<Instant> = None;
    loop {
        let (r, result) = match tokio::task::spawn_blocking(move || {
            let result = reader.read(BATCH_BYTES);
            (reader, result)
        })
        .await
        {
            Ok(x) => x,
            Err(_) => return false,
        };
        reader = r;
        match result {
            Err(e) => {
                tracing::error!(error = %e, destination = %cx.name, "cannot read the audit journal");
                if *cx.shutdown.borrow() {
                    return false;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Ok(Fetched::Batch {
                events,
                next,
                unreadable,
            }) => {
                if unreadable > 0 {
                    tracing::error!(count = unreadable, destination = %cx.name, "unreadable lines in the audit journal were skipped");
                    cx.metrics.audit_dropped("journal", unreadable as u64);
                }
                let n = events.len() as u64;
                if n > 0 && !deliver(cx, Arc::new(events)).await {
                    return false;
                }
                cx.metrics.audit_written(&cx.name, n);
                if let Err(e) = commit(&mut reader, next).await {
                    tracing::warn!(error = %e, destination = %cx.name, "cannot save the audit journal cursor");
                }
                if own {
                    progress(cx, dir, reader.at, &mut warned_at);
                }
            }
            Ok(Fetched::Empty) => {
                if !own {
                    // Nobody writes to an adopted journal: a torn last line is all that can be left.
                    return true;
                }
                progress(cx, dir, reader.at, &mut warned_at);
                if *cx.shutdown.borrow() && reader.at >= cx.journal.end() {
                    return true;
                }
                tokio::select! {
                    _ = end.changed() => {}
                    _ = cx.shutdown.changed() => {}
                    () = tokio::time::sleep(Duration::from_millis(500)) => {}
                }
            }
        }
    }
}

/// One small write in place; cheap enough to keep on the runtime.
async fn commit(reader: &mut Reader, next: Position) -> std::io::Result<()> {
    reader.commit(next)
}

fn progress(cx: &Context, dir: &Path, at: Position, warned_at: &mut Option<Instant>) {
    cx.delivered.send_if_modified(|p| {
        let newer = at > *p;
        if newer {
            *p = at;
        }
        newer
    });
    let lag = at.bytes_to(cx.journal.end());
    cx.metrics.audit_backlog(&cx.name, lag);
    if lag > BEHIND_BYTES && warned_at.is_none_or(|t| t.elapsed() > Duration::from_secs(30)) {
        tracing::warn!(destination = %cx.name, backlog_bytes = lag, "an audit destination is falling behind; events wait in the journal");
        *warned_at = Some(Instant::now());
    }
    let min = {
        let mut segments = cx
            .segments
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        segments.insert(cx.name.clone(), at.segment);
        segments.values().copied().min().unwrap_or(at.segment)
    };
    journal::delete_segments_before(dir, min);
}

/// The batch without the plaintext of subjects being erased or erased: an event recorded before
/// an erasure began, still in a journal, reaches no destination with the person's values.
async fn without_erased(
    subjects: &Subjects,
    events: &Arc<Vec<RecordedEvent>>,
) -> Result<Arc<Vec<RecordedEvent>>, super::AuditError> {
    let mut names: Vec<String> = events
        .iter()
        .filter_map(|e| e.pii.as_ref())
        .flat_map(|p| p.values().map(|s| s.s.clone()))
        .collect();
    if names.is_empty() {
        return Ok(events.clone());
    }
    names.sort_unstable();
    names.dedup();
    let known = subjects
        .by_pseudonyms(&names, super::subjects::STATE_TTL)
        .await?;
    let gone = |name: &str| known.get(name).is_none_or(|s| !s.writes_plaintext());
    if !names.iter().any(|n| gone(n)) {
        return Ok(events.clone());
    }
    let mut out = events.as_ref().clone();
    for event in &mut out {
        let Some(pii) = event.pii.clone() else {
            continue;
        };
        for (pointer, sealed) in &pii {
            if gone(&sealed.s) {
                personal::clear(event, pointer);
            }
        }
    }
    Ok(Arc::new(out))
}

/// Writes one batch, retrying with exponential backoff until it is taken. At shutdown a failing
/// destination gives up after its second attempt (false): the batch stays in the journal.
async fn deliver(cx: &Context, events: Arc<Vec<RecordedEvent>>) -> bool {
    let mut attempt: u32 = 0;
    loop {
        let written = match without_erased(&cx.subjects, &events).await {
            Ok(events) => cx.sink.write(events).await,
            Err(e) => Err(super::sink::SinkError::Subjects(e.to_string())),
        };
        match written {
            Ok(()) => {
                if attempt > 0 {
                    tracing::info!(destination = %cx.name, attempts = attempt + 1, "audit destination recovered");
                }
                return true;
            }
            Err(e) => {
                attempt += 1;
                cx.metrics.audit_destination_failure(&cx.name);
                if attempt == 1 || attempt.is_multiple_of(10) {
                    tracing::warn!(destination = %cx.name, error = %crate::error_chain(&e), attempt, events = events.len(), "cannot write to an audit destination; retrying");
                }
                if *cx.shutdown.borrow() && attempt >= 2 {
                    return false;
                }
                let backoff = Duration::from_millis(100)
                    .saturating_mul(1 << attempt.min(9))
                    .min(MAX_BACKOFF);
                let mut shutdown = cx.shutdown.clone();
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    _ = shutdown.changed() => {}
                }
            }
        }
    }
}

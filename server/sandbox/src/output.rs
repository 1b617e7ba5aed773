//! Captured stdout/stderr: capped, with the overflow dropped and flagged (the guest never sees
//! an error, so a flood cannot change its behaviour).

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

#[derive(Debug, Default)]
struct Buffer {
    bytes: Vec<u8>,
    truncated: bool,
}

/// A capped in-memory output stream shared between the WASI context and the run.
#[derive(Clone, Debug)]
pub(crate) struct CappedOutput {
    cap: usize,
    buffer: Arc<Mutex<Buffer>>,
}

impl CappedOutput {
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            cap,
            buffer: Arc::default(),
        }
    }

    /// The bytes kept and whether some were dropped.
    pub(crate) fn take(&self) -> (Vec<u8>, bool) {
        let mut b = self.buffer.lock().unwrap_or_else(PoisonError::into_inner);
        (std::mem::take(&mut b.bytes), b.truncated)
    }

    fn write(&self, data: &[u8]) {
        let mut b = self.buffer.lock().unwrap_or_else(PoisonError::into_inner);
        let room = self.cap.saturating_sub(b.bytes.len());
        if data.len() > room {
            b.truncated = true;
        }
        b.bytes.extend_from_slice(&data[..data.len().min(room)]);
    }
}

impl AsyncWrite for CappedOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.write(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl IsTerminal for CappedOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CappedOutput {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

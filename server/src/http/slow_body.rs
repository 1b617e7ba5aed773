//! Slow request bodies. A client that opens a request and then trickles its body (one byte a
//! second, or nothing at all) would hold a connection, a task and whatever the handler holds for
//! as long as it likes. Every request body therefore runs against a deadline: `--body-timeout`
//! (default 30 s) from the start, pushed back by one second for every `--min-body-rate` bytes
//! (default 16 KiB) delivered. A body that falls behind is cut off and the request is answered
//! with 408 `request_timeout` (and the connection closed). A large upload at 16 KiB/s or more is
//! never cut off; a stalled one ends `--body-timeout` after its last progress was due.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use axum::{
    body::{Body, HttpBody},
    extract::{Request, State},
    http::{HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use futures_util::StreamExt;
use tokio::time::Instant;

use super::api::ApiError;

/// The pace every request body must keep.
#[derive(Debug, Clone, Copy)]
pub struct BodyPace {
    /// Time allowed at any rate.
    pub grace: Duration,
    /// Bytes per second that earn more time; 0 means the body must be complete within `grace`.
    pub min_rate: u64,
}

impl BodyPace {
    /// When a body that started at `start` and has delivered `received` bytes falls behind.
    fn deadline(&self, start: Instant, received: u64) -> Instant {
        let earned = if self.min_rate == 0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(received as f64 / self.min_rate as f64)
        };
        start + self.grace + earned.min(Duration::from_secs(365 * 24 * 3600))
    }
}

/// The layer: wraps the request body so it errors once behind pace, and answers such a request
/// with 408 whatever the handler made of the error.
pub async fn pace(State(pace): State<BodyPace>, request: Request, next: Next) -> Response {
    if request.body().is_end_stream() {
        return next.run(request).await;
    }
    let cut = Arc::new(AtomicBool::new(false));
    let (parts, body) = request.into_parts();
    let body = Body::from_stream(paced(body, pace, cut.clone()));
    let response = next.run(Request::from_parts(parts, body)).await;
    if !cut.load(Ordering::Acquire) {
        return response;
    }
    let mut response = ApiError::new(
        StatusCode::REQUEST_TIMEOUT,
        "request_timeout",
        "the request body arrived too slowly and was cut off",
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// The body's chunks, ending in an error (and setting `cut`) once the body falls behind `pace`.
fn paced(
    body: Body,
    pace: BodyPace,
    cut: Arc<AtomicBool>,
) -> impl futures_util::Stream<Item = Result<axum::body::Bytes, axum::Error>> + Send {
    let start = Instant::now();
    let state = (body.into_data_stream(), 0u64, false);
    futures_util::stream::unfold(state, move |(mut stream, received, done)| {
        let cut = cut.clone();
        async move {
            if done {
                return None;
            }
            match tokio::time::timeout_at(pace.deadline(start, received), stream.next()).await {
                Ok(Some(Ok(chunk))) => {
                    let received = received.saturating_add(chunk.len() as u64);
                    Some((Ok(chunk), (stream, received, false)))
                }
                Ok(Some(Err(e))) => Some((Err(e), (stream, received, true))),
                Ok(None) => None,
                Err(_) => {
                    cut.store(true, Ordering::Release);
                    let e = axum::Error::new(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "the request body arrived too slowly",
                    ));
                    Some((Err(e), (stream, received, true)))
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_min_rate_bytes_delivered_earn_one_more_second() {
        let pace = BodyPace {
            grace: Duration::from_secs(30),
            min_rate: 16 * 1024,
        };
        let start = Instant::now();
        assert_eq!(pace.deadline(start, 0), start + Duration::from_secs(30));
        assert_eq!(
            pace.deadline(start, 160 * 1024),
            start + Duration::from_secs(40)
        );
        let strict = BodyPace {
            grace: Duration::from_secs(5),
            min_rate: 0,
        };
        assert_eq!(
            strict.deadline(start, u64::MAX),
            start + Duration::from_secs(5)
        );
        // A huge count cannot overflow the deadline.
        let _ = pace.deadline(start, u64::MAX);
    }
}

//! `GET /api/v1/events`: the live feed of alarm transitions (Server-Sent Events).
//!
//! `event: alarm` carries a transition record; `event: flood` the start or end of an alarm
//! flood.
//!
//! Each event's id is its journal sequence number. A client that reconnects with
//! `Last-Event-ID` first gets every transition it missed from the journal, then the live feed.
//! A subscriber that falls too far behind is disconnected rather than silently skipped, so
//! its reconnect replays what it missed.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::stream::{self, Stream, StreamExt};
use prometheus_client::metrics::gauge::Gauge;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

use super::{ApiError, AppState};
use crate::state::FeedEvent;

/// Most journal events replayed to one reconnecting client.
const MAX_REPLAY: usize = 10_000;

struct ClientGuard(Gauge);

impl Drop for ClientGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

pub(super) async fn feed(
    State(s): State<AppState>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    // Subscribe before reading the journal, so nothing falls between replay and live feed.
    let live = BroadcastStream::new(s.live.subscribe());
    let last_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let replay = match last_id {
        Some(after) => {
            let journal = s.journal.clone();
            tokio::task::spawn_blocking(move || journal.since(after, MAX_REPLAY))
                .await
                .map_err(|e| ApiError::Internal(e.to_string()))?
                .map_err(|e| ApiError::Internal(e.to_string()))?
        }
        None => Vec::new(),
    };
    let replayed_up_to = replay.last().map_or(last_id.unwrap_or(0), |e| e.seq);
    s.metrics.sse_clients.inc();
    let guard = ClientGuard(s.metrics.sse_clients.clone());
    let lagged = s.metrics.sse_lagged.clone();
    let live = live
        .take_while(move |r| {
            let keep = match r {
                Ok(_) => true,
                Err(BroadcastStreamRecvError::Lagged(n)) => {
                    lagged.inc_by(*n);
                    false
                }
            };
            std::future::ready(keep)
        })
        .filter_map(move |r| {
            let fresh = |f: &FeedEvent| match f {
                FeedEvent::Alarm(e) => e.seq == 0 || e.seq > replayed_up_to,
                FeedEvent::Flood { .. } => true,
            };
            std::future::ready(r.ok().filter(fresh))
        });
    let shutdown = s.shutdown.clone();
    let events = stream::iter(replay.into_iter().map(|e| FeedEvent::Alarm(Box::new(e))))
        .chain(live)
        .map(move |e| {
            let _keep_counted = &guard;
            Ok(to_sse(&e))
        })
        .take_until(async move { shutdown.cancelled().await });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

fn to_sse(f: &FeedEvent) -> Event {
    let (event, data) = match f {
        FeedEvent::Alarm(e) if e.seq > 0 => (
            Event::default().event("alarm").id(e.seq.to_string()),
            serde_json::to_string(e),
        ),
        FeedEvent::Alarm(e) => (Event::default().event("alarm"), serde_json::to_string(e)),
        FeedEvent::Flood { .. } => (Event::default().event("flood"), serde_json::to_string(f)),
    };
    event.data(data.unwrap_or_else(|_| "{}".into()))
}

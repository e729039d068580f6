//! `GET /api/v1/events`: the live feed of alarm transitions (Server-Sent Events).
//!
//! `event: alarm` carries a transition record; `event: flood` the start or end of an alarm
//! flood; `event: reading`, only when asked for with `?readings=GLOB`, a point's new value
//! (see [`super::feed_readings`]).
//!
//! Each event's id is its journal sequence number. A client that reconnects with
//! `Last-Event-ID` first gets every transition it missed from the journal, then the live feed.
//! A subscriber that falls too far behind is disconnected rather than silently skipped, so
//! its reconnect replays what it missed.
//!
//! A browser's `EventSource` cannot send an `Authorization` header, so this route alone also
//! takes the token as the `access_token` query parameter; request logs show that parameter
//! redacted ([`redacted_uri`]).

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Uri, header};
use axum::middleware::Next;
use axum::response::Response;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::stream::{self, Stream, StreamExt};
use prometheus_client::metrics::gauge::Gauge;
use serde::Deserialize;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use utoipa::IntoParams;

use super::error::{ApiQuery, ErrorBody};
use super::feed_readings::{self, ReadingFilter};
use super::{ApiError, AppState};
use crate::spec::units::parse_duration;
use crate::state::FeedEvent;

/// Most journal events replayed to one reconnecting client.
const MAX_REPLAY: usize = 10_000;

/// The query parameter that may carry the bearer token on the feed.
const TOKEN_PARAM: &str = "access_token";

/// Runs before the auth guard on the feed: turns `?access_token=` into an
/// `Authorization: Bearer` header, unless the request already has one.
pub(super) async fn token_from_query(mut req: Request, next: Next) -> Response {
    if !req.headers().contains_key(header::AUTHORIZATION) {
        let token = req
            .uri()
            .query()
            .and_then(|q| form_pairs(q).find(|(k, _)| k == TOKEN_PARAM).map(|(_, v)| v));
        if let Some(mut value) = token.and_then(|t| HeaderValue::from_str(&format!("Bearer {t}")).ok()) {
            value.set_sensitive(true);
            req.headers_mut().insert(header::AUTHORIZATION, value);
        }
    }
    next.run(req).await
}

/// `application/x-www-form-urlencoded` pairs of a query string, decoded.
fn form_pairs(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    query.split('&').filter(|p| !p.is_empty()).map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (decode(k), decode(v))
    })
}

fn decode(text: &str) -> String {
    let plus = text.replace('+', " ");
    percent_encoding::percent_decode_str(&plus)
        .decode_utf8_lossy()
        .into_owned()
}

/// The URI as request logs show it: any `access_token` value replaced by `REDACTED`.
pub(super) fn redacted_uri(uri: &Uri) -> String {
    let Some(query) = uri.query() else {
        return uri.to_string();
    };
    let parts: Vec<String> = query
        .split('&')
        .map(|pair| {
            let key = pair.split_once('=').map_or(pair, |(k, _)| k);
            if decode(key) == TOKEN_PARAM {
                format!("{key}=REDACTED")
            } else {
                pair.to_string()
            }
        })
        .collect();
    format!("{}?{}", uri.path(), parts.join("&"))
}

struct ClientGuard(Gauge);

impl Drop for ClientGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Options of the live feed.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct FeedQuery {
    /// Also send `event: reading` for points matching this glob (`MHS-001/*`, `*`).
    readings: Option<String>,
    /// At most one reading event per point per this interval (`"500ms"`, `"5s"`; at least
    /// 100ms; default 1s).
    reading_interval: Option<String>,
    /// The bearer token, for clients that cannot send headers (a browser's `EventSource`).
    /// Prefer the `Authorization` header: query strings end up in proxies' logs.
    #[allow(dead_code)]
    access_token: Option<String>,
}

/// The live feed (Server-Sent Events): `event: alarm` with the journal sequence number as
/// its id, `event: flood`, and optionally `event: reading`. Reconnect with `Last-Event-ID`
/// to receive every alarm transition missed meanwhile.
#[utoipa::path(get, path = "/api/v1/events", tag = "events",
    security(("bearer" = [])),
    params(
        ("Last-Event-ID" = Option<String>, Header,
            description = "Id of the last alarm event received; the transitions after it are replayed first"),
        FeedQuery,
    ),
    responses(
        (status = 200, description = "An endless event stream", body = String, content_type = "text/event-stream"),
        (status = 400, description = "A bad parameter", body = ErrorBody),
        (status = 401, description = "No or unknown token", body = ErrorBody),
    ))]
pub(super) async fn feed(
    State(s): State<AppState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<FeedQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let interval = match q.reading_interval.as_deref() {
        None => feed_readings::DEFAULT_INTERVAL,
        Some(text) => parse_duration(text).map_err(|reason| ApiError::BadParam {
            name: "reading_interval",
            reason,
        })?,
    };
    let filter = q
        .readings
        .as_deref()
        .map(|pattern| ReadingFilter::new(&s.live.points, pattern, interval))
        .transpose()
        .map_err(|reason| ApiError::BadParam {
            name: "readings",
            reason,
        })?;
    if let (Some(f), Some(pattern)) = (&filter, &q.readings) {
        tracing::debug!(pattern = %pattern, matched = f.matched(), "Live feed subscriber asks for readings");
    }
    // Subscribe before reading the journal, so nothing falls between replay and live feed.
    let readings = filter
        .as_ref()
        .map(|_| BroadcastStream::new(s.live.subscribe_readings()));
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
    // The alarm part ends the response when it ends (a lagging subscriber must reconnect to
    // replay): it is followed by one `None` that stops the merged stream.
    let alarms = stream::iter(replay.into_iter().map(|e| FeedEvent::Alarm(Box::new(e))))
        .chain(live)
        .map(|e| Some(to_sse(&e)))
        .chain(stream::once(async { None }));
    let reading_events = match (readings, filter) {
        (Some(batches), Some(filter)) => reading_stream(&s, batches, filter).left_stream(),
        _ => stream::pending().right_stream(),
    };
    let events = stream::select(alarms, reading_events.map(Some))
        .take_while(|e| std::future::ready(e.is_some()))
        .filter_map(move |e| {
            let _keep_counted = &guard;
            std::future::ready(e.map(Ok))
        })
        .take_until(async move { shutdown.cancelled().await });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// `event: reading` for every admitted reading of the subscribed batches.
fn reading_stream(
    s: &AppState,
    batches: BroadcastStream<std::sync::Arc<[crate::model::Reading]>>,
    mut filter: ReadingFilter,
) -> impl Stream<Item = Event> + Send + use<> {
    let (clock, live, metrics) = (s.clock.clone(), s.live.clone(), s.metrics.clone());
    batches
        .filter_map(move |batch| {
            let batch = match batch {
                Ok(b) => b,
                Err(BroadcastStreamRecvError::Lagged(n)) => {
                    metrics.sse_readings_lagged.inc_by(n);
                    return std::future::ready(None);
                }
            };
            let now = clock.now();
            let events: Vec<Event> = batch
                .iter()
                .filter(|r| filter.admit(r, now))
                .map(|r| {
                    let data = serde_json::to_string(&feed_readings::event_of(&live.points, r));
                    Event::default()
                        .event("reading")
                        .data(data.unwrap_or_else(|_| "{}".into()))
                })
                .collect();
            metrics.sse_readings_sent.inc_by(events.len() as u64);
            std::future::ready(Some(stream::iter(events)))
        })
        .flatten()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_in_a_query_string_is_redacted_for_the_log() {
        let uri: Uri = "/api/v1/events?x=1&access_token=s3cret%2Btoken&access%5Ftoken=again"
            .parse()
            .unwrap();
        let shown = redacted_uri(&uri);
        assert_eq!(
            shown,
            "/api/v1/events?x=1&access_token=REDACTED&access%5Ftoken=REDACTED"
        );
        assert_eq!(redacted_uri(&"/api/v1/alarms".parse().unwrap()), "/api/v1/alarms");
    }

    #[test]
    fn query_pairs_are_percent_decoded() {
        let pairs: Vec<_> = form_pairs("access_token=a%2Bb+c&&flag").collect();
        assert_eq!(
            pairs,
            vec![
                ("access_token".to_string(), "a+b c".to_string()),
                ("flag".to_string(), String::new())
            ]
        );
    }
}

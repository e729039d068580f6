//! `GET /api/v1/points` and `GET /api/v1/points/{id}/history`.

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};

use super::{ApiError, AppState, rfc3339};
use crate::model::Timestamp;
use crate::sinks::history::{HistoryRow, MinuteRow, Resolution, StoreError};

/// One point with its latest reading.
#[derive(Debug, Serialize)]
pub(super) struct PointView {
    id: String,
    unit: String,
    kind: &'static str,
    device: String,
    hazard_source: Option<String>,
    description: Option<String>,
    range: Option<(f64, f64)>,
    /// Latest value; absent before the first reading or when the reading has none.
    value: Option<f64>,
    /// `no_data` before the first reading.
    quality: &'static str,
    ts_ms: Option<i64>,
    time: Option<String>,
    age_ms: Option<i64>,
}

pub(super) async fn list(State(s): State<AppState>) -> Json<Vec<PointView>> {
    let now = s.clock.now();
    let views = s
        .live
        .readings()
        .into_iter()
        .map(|(id, reading)| {
            let m = s.live.points.meta(id);
            PointView {
                id: m.name.to_string(),
                unit: m.unit.to_string(),
                kind: m.kind.as_str(),
                device: m.device.to_string(),
                hazard_source: m.hazard_source.as_deref().map(str::to_string),
                description: m.description.as_deref().map(str::to_string),
                range: m.range,
                value: reading.and_then(|r| r.value.is_finite().then_some(r.value)),
                quality: reading.map_or("no_data", |r| r.quality.as_str()),
                ts_ms: reading.map(|r| r.ts.as_millis()),
                time: reading.map(|r| rfc3339(r.ts)),
                age_ms: reading.map(|r| now.since(r.ts).as_millis() as i64),
            }
        })
        .collect();
    Json(views)
}

/// Query of a history request; times are RFC 3339 or milliseconds since the epoch.
#[derive(Debug, Deserialize)]
pub(super) struct HistoryQuery {
    from: Option<String>,
    to: Option<String>,
    limit: Option<usize>,
    /// `raw` or `minute`; absent: raw when the range lies in the raw window and fits `limit`.
    resolution: Option<String>,
}

#[derive(Debug, Serialize)]
pub(super) struct HistoryView {
    point: String,
    unit: String,
    from_ms: i64,
    to_ms: i64,
    /// Which table answered: `raw` fills `readings`, `minute` fills `minutes`.
    resolution: Resolution,
    /// How far back raw rows are kept.
    raw_window_ms: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    readings: Option<Vec<HistoryRow>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    minutes: Option<Vec<MinuteRow>>,
}

const DEFAULT_WINDOW: std::time::Duration = std::time::Duration::from_secs(3600);
const MAX_ROWS: usize = 100_000;

pub(super) async fn history(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<HistoryQuery>,
) -> Result<Json<HistoryView>, ApiError> {
    let point = s
        .live
        .points
        .id_of(&id)
        .ok_or_else(|| ApiError::UnknownPoint(id.clone()))?;
    let now = s.clock.now();
    let to = match &q.to {
        Some(t) => parse_time("to", t)?,
        None => now,
    };
    let from = match &q.from {
        Some(t) => parse_time("from", t)?,
        None => to.minus(DEFAULT_WINDOW),
    };
    if from > to {
        return Err(ApiError::BadParam {
            name: "from",
            reason: "must not be after `to`".into(),
        });
    }
    let requested = match q.resolution.as_deref() {
        None => None,
        Some(r) => Some(Resolution::parse(r).ok_or_else(|| ApiError::BadParam {
            name: "resolution",
            reason: format!("`{r}` is neither `raw` nor `minute`"),
        })?),
    };
    let limit = q.limit.unwrap_or(10_000).min(MAX_ROWS);
    let reader = s.history.clone();
    let name = id.clone();
    let (resolution, readings, minutes) = tokio::task::spawn_blocking(move || {
        let resolution = reader.choose(&name, from, to, now, requested, limit)?;
        Ok::<_, StoreError>(match resolution {
            Resolution::Raw => (resolution, Some(reader.query(&name, from, to, limit)?), None),
            Resolution::Minute => (resolution, None, Some(reader.minutes(&name, from, to, limit)?)),
        })
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?
    .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(Json(HistoryView {
        point: id,
        unit: s.live.points.meta(point).unit.to_string(),
        from_ms: from.as_millis(),
        to_ms: to.as_millis(),
        resolution,
        raw_window_ms: i64::try_from(s.history.raw_window().as_millis()).unwrap_or(i64::MAX),
        readings,
        minutes,
    }))
}

pub(super) fn parse_time(name: &'static str, text: &str) -> Result<Timestamp, ApiError> {
    if let Ok(ms) = text.parse::<i64>() {
        return Ok(Timestamp::from_millis(ms));
    }
    let t = humantime::parse_rfc3339_weak(text).map_err(|e| ApiError::BadParam {
        name,
        reason: format!("`{text}` is neither RFC 3339 nor milliseconds since the epoch: {e}"),
    })?;
    let since = t
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|_| ApiError::BadParam {
            name,
            reason: "before 1970".into(),
        })?;
    Ok(Timestamp::from_nanos(
        i64::try_from(since.as_nanos()).unwrap_or(i64::MAX),
    ))
}

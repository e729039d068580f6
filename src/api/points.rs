//! `GET /api/v1/points` and `GET /api/v1/points/{id}/history`.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiPath, ApiQuery, ErrorBody};
use super::{ApiError, AppState, rfc3339};
use crate::sinks::history::{HistoryRow, MinuteRow, Resolution, StoreError};

/// One point with its latest reading.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct PointView {
    /// Point id, e.g. `MHS-001/GT-101`.
    id: String,
    /// Engineering unit.
    unit: String,
    /// Measured quantity (`gas`, `temperature`, `level`…).
    kind: &'static str,
    /// Device the point is read from (or the source that feeds it).
    device: String,
    /// Hazard source (重大危险源) the point belongs to.
    hazard_source: Option<String>,
    /// Free text from the device profile.
    description: Option<String>,
    /// Name, description and place from the config's `[labels.points]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    label: Option<super::labels::Label>,
    /// Measuring range `[low, high]` of the instrument.
    #[schema(value_type = Option<Vec<f64>>, min_items = 2, max_items = 2)]
    range: Option<(f64, f64)>,
    /// Latest value; absent before the first reading or when the reading has none.
    value: Option<f64>,
    /// A quality name (`good`, `comm_fault`, `decode_error`, `out_of_range`, `stale`,
    /// `uncertain`), or
    /// `no_data` before the first reading.
    quality: &'static str,
    /// Time of the latest reading, ms since the epoch.
    ts_ms: Option<i64>,
    /// Time of the latest reading, RFC 3339.
    time: Option<String>,
    /// Age of the latest reading, ms.
    age_ms: Option<i64>,
}

/// Every point with its latest reading, in config order.
#[utoipa::path(get, path = "/api/v1/points", tag = "points",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every point", body = Vec<PointView>),
        (status = 401, description = "No or unknown token", body = ErrorBody),
    ))]
pub(super) async fn list(State(s): State<AppState>) -> Json<Vec<PointView>> {
    let now = s.clock.now();
    let labels = s.policy.read().unwrap_or_else(|e| e.into_inner()).labels.points.clone();
    let views = s
        .live
        .readings()
        .into_iter()
        .map(|(id, reading)| {
            let m = s.live.points.meta(id);
            PointView {
                id: m.name().to_string(),
                unit: m.unit().to_string(),
                kind: m.kind().as_str(),
                device: m.device().to_string(),
                hazard_source: m.hazard_source().map(|t| &**t).map(str::to_string),
                description: m.description().map(|t| &**t).map(str::to_string),
                label: labels.get(&**m.name()).cloned(),
                range: m.range(),
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
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct HistoryQuery {
    /// Start (RFC 3339 or ms since the epoch); default one hour before `to`.
    #[param(schema_with = super::time_param::schema)]
    from: Option<String>,
    /// End (RFC 3339 or ms since the epoch); default now. A range that ends before it starts
    /// is empty.
    #[param(schema_with = super::time_param::schema)]
    to: Option<String>,
    /// Most rows returned (capped at 100,000); default 10,000.
    #[param(minimum = 0)]
    limit: Option<i64>,
    /// `raw` or `minute`; absent: raw when the range lies in the raw window and fits `limit`.
    resolution: Option<Resolution>,
}

/// A point's history over a time range.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct HistoryView {
    /// Point id.
    point: String,
    /// Engineering unit.
    unit: String,
    /// Start of the range, ms since the epoch.
    from_ms: i64,
    /// End of the range, ms since the epoch.
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

/// One point's readings (raw) or per-minute aggregates over a time range.
#[utoipa::path(get, path = "/api/v1/points/{id}/history", tag = "points",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Point id (URL-encode its `/`)"), HistoryQuery),
    responses(
        (status = 200, description = "The history", body = HistoryView),
        (status = 400, description = "A bad parameter", body = ErrorBody),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 404, description = "No such point", body = ErrorBody),
    ))]
pub(super) async fn history(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> Result<Json<HistoryView>, ApiError> {
    let point = s
        .live
        .points
        .id_of(&id)
        .ok_or_else(|| ApiError::UnknownPoint(id.clone()))?;
    let now = s.clock.now();
    let (from, to) = super::time_param::range(q.from.as_deref(), q.to.as_deref(), now, DEFAULT_WINDOW)?;
    // A range that ends before it starts holds nothing.
    let to = to.max(from);
    let requested = q.resolution;
    let limit = match q.limit {
        Some(l) => (super::alarms::non_negative("limit", l)?).min(MAX_ROWS as u64) as usize,
        None => 10_000,
    };
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
        unit: s.live.points.meta(point).unit().to_string(),
        from_ms: from.as_millis(),
        to_ms: to.as_millis(),
        resolution,
        raw_window_ms: i64::try_from(s.history.raw_window().as_millis()).unwrap_or(i64::MAX),
        readings,
        minutes,
    }))
}

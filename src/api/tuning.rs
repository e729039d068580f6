//! `GET /api/v1/tuning`: for the most raised threshold alarms of a period (the bad actors),
//! a suggested deadband and on/off delays computed from each point's own history, beside the
//! settings in force ([`crate::tuning`]). Advice only: nothing is applied.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiQuery, ErrorBody};
use super::{ApiError, AppState};
use crate::model::{Level, Timestamp};
use crate::rules::Limit;
use crate::tuning::{Outcome, Policy, Sample, Settings, recommend};

/// Default period: the last week.
const DEFAULT_SPAN: Duration = Duration::from_secs(7 * 86_400);
/// Longest period one request may replay.
const MAX_SPAN: Duration = Duration::from_secs(31 * 86_400);
/// Most alarms one request may ask about.
const MAX_TOP: i64 = 50;
/// Most readings replayed per alarm (the newest are kept): bounds the memory and time of one
/// request (a few seconds per alarm at most).
const MAX_SAMPLES: usize = 250_000;
/// History is read backwards from the period's end in pieces this long, until
/// [`MAX_SAMPLES`] are in hand or the period is covered.
const PIECE: Duration = Duration::from_secs(86_400);
/// Longest delay a caller may allow a suggestion to add to true alarms.
const MAX_DELAY_CAP: Duration = Duration::from_secs(120);

/// Query of the tuning suggestions; times are RFC 3339 or ms since the epoch.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct TuningQuery {
    /// Start (default: a week before `to`; a start more than 31 days before `to` is moved up
    /// to 31 days before it, and the answer's `from_ms` says so).
    #[param(schema_with = super::time_param::schema)]
    from: Option<String>,
    /// End (default: now).
    #[param(schema_with = super::time_param::schema)]
    to: Option<String>,
    /// How many of the most raised threshold alarms (default 10).
    #[param(minimum = 1, maximum = 50)]
    top: Option<i64>,
    /// Longest a suggestion may delay a true alarm, in seconds (default 10).
    #[param(minimum = 0, maximum = 120)]
    max_delay_s: Option<i64>,
}

/// One bad actor with its suggestion.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct TuningAdvice {
    /// Alarm id.
    alarm_id: String,
    /// Rule that defines it; its settings apply to every limit of the rule.
    rule: String,
    /// Point name.
    point: String,
    /// Level.
    level: Level,
    /// The set-point.
    set_point: f64,
    /// Unit.
    unit: String,
    /// Raises in the period, from the alarm journal.
    raises: u64,
    /// Readings of the period replayed from history.
    samples: usize,
    /// Estimated noise (one standard deviation) of the point.
    noise: f64,
    /// The settings in force.
    current: Settings,
    /// How the alarm behaves with them over the replayed readings.
    current_outcome: Outcome,
    /// The suggestion (equal to `current` when nothing within the bound does better).
    suggested: Settings,
    /// How it would have behaved.
    suggested_outcome: Outcome,
    /// Whether the suggestion differs from the settings in force.
    changed: bool,
}

/// The answer.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct TuningReport {
    /// Period start, ms since the epoch.
    from_ms: i64,
    /// Period end, ms since the epoch.
    to_ms: i64,
    /// The bound on delay added to true alarms, in ms.
    max_delay_ms: u64,
    /// How long the value must stay past the set-point for an episode to count as a true
    /// alarm, in ms.
    persist_ms: u64,
    /// The most raised threshold alarms, most raised first.
    alarms: Vec<TuningAdvice>,
}

#[utoipa::path(get, path = "/api/v1/tuning", tag = "alarms",
    security(("bearer" = [])),
    params(TuningQuery),
    responses(
        (status = 200, description = "Suggestions for the most raised threshold alarms", body = TuningReport),
        (status = 400, description = "A bad parameter", body = ErrorBody),
        (status = 401, description = "No or unknown token", body = ErrorBody),
    ))]
pub(super) async fn suggestions(
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<TuningQuery>,
) -> Result<Json<TuningReport>, ApiError> {
    let (from, to) = super::time_param::range(q.from.as_deref(), q.to.as_deref(), s.clock.now(), DEFAULT_SPAN)?;
    // Longer periods are cut to their last 31 days; an empty one has no bad actors.
    let from = from.max(to.minus(MAX_SPAN));
    let top = match q.top {
        Some(n @ 1..=50) => n as usize,
        Some(n) => {
            return Err(ApiError::BadParam {
                name: "top",
                reason: format!("must be 1 to {MAX_TOP}, got {n}"),
            });
        }
        None => 10,
    };
    let max_delay = match q.max_delay_s {
        Some(n @ 0..=120) => Duration::from_secs(n as u64),
        Some(n) => {
            return Err(ApiError::BadParam {
                name: "max_delay_s",
                reason: format!("must be 0 to {} seconds, got {n}", MAX_DELAY_CAP.as_secs()),
            });
        }
        None => Duration::from_secs(10),
    };
    let journal = s.journal.clone();
    let history = s.history.clone();
    let live = s.live.clone();
    let report = tokio::task::spawn_blocking(move || -> Result<TuningReport, ApiError> {
        let counts = journal
            .raise_counts(from, to)
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        let settings = live.thresholds();
        let mut alarms = Vec::new();
        let persist = Policy::for_point(None, 1.0).persist;
        let counts = if from < to { counts } else { Vec::new() };
        for (alarm_id, raises) in counts {
            if alarms.len() >= top {
                break;
            }
            let Some(t) = settings.iter().find(|t| t.alarm_id == alarm_id) else {
                continue;
            };
            let meta = live.points.meta(t.point);
            let mut pieces: Vec<Vec<Sample>> = Vec::new();
            let (mut end, mut held) = (to, 0);
            while end > from && held < MAX_SAMPLES {
                let start = end.minus(PIECE).max(from);
                let rows = history
                    .query(meta.name(), start, end, MAX_SAMPLES - held)
                    .map_err(|e| ApiError::Internal(e.to_string()))?;
                let piece: Vec<Sample> = rows
                    .into_iter()
                    // `query` takes both ends; the piece after this one already has `end`.
                    .filter(|r| r.ts_ms < end.as_millis() || end == to)
                    .filter(|r| r.quality.drives_process_alarms())
                    .filter_map(|r| {
                        r.value.map(|value| Sample {
                            ts: Timestamp::from_millis(r.ts_ms),
                            value,
                        })
                    })
                    .collect();
                held += piece.len();
                pieces.push(piece);
                end = start;
            }
            let samples: Vec<Sample> = pieces.into_iter().rev().flatten().collect();
            let limit = Limit {
                level: t.level,
                value: t.set_point,
                priority: t.priority,
                falling: t.falling,
            };
            let current = Settings {
                deadband: t.deadband,
                on_delay: t.on_delay,
                off_delay: t.off_delay,
            };
            let policy = Policy {
                max_delay,
                ..Policy::for_point(meta.range(), t.set_point)
            };
            let r = recommend(&samples, &limit, &current, &policy);
            alarms.push(TuningAdvice {
                alarm_id,
                rule: t.rule.clone(),
                point: meta.name().to_string(),
                level: t.level,
                set_point: t.set_point,
                unit: meta.unit().to_string(),
                raises,
                samples: r.samples,
                noise: r.noise,
                changed: r.suggested != r.current,
                current: r.current,
                current_outcome: r.current_outcome,
                suggested: r.suggested,
                suggested_outcome: r.suggested_outcome,
            });
        }
        Ok(TuningReport {
            from_ms: from.as_millis(),
            to_ms: to.as_millis(),
            max_delay_ms: u64::try_from(max_delay.as_millis()).unwrap_or(u64::MAX),
            persist_ms: u64::try_from(persist.as_millis()).unwrap_or(u64::MAX),
            alarms,
        })
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))??;
    Ok(Json(report))
}

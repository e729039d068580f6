//! `GET /api/v1/console`: what the console needs to know about its caller and the site before
//! it draws anything: who is logged in with which role, whether the API is open, which
//! priorities sound, and who may shelve what for how long (so it shows only the buttons the
//! caller can use; the server enforces the same rules on every command).

use axum::Json;
use axum::extract::{Extension, State};
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use super::auth::{Principal, Role};
use super::error::ErrorBody;
use super::policy::{SetpointView, ShelveBy, SiteName};
use crate::model::Priority;

/// The shelving rule of one priority.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct ShelveRuleView {
    /// The priority it applies to.
    priority: Priority,
    /// Who may shelve: `operator`, `admin` or `nobody`.
    by: ShelveBy,
    /// Longest shelving, seconds.
    max_s: u64,
    /// Whether the caller may shelve alarms of this priority.
    allowed: bool,
}

/// The caller and the site's console policy.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct ConsoleSettings {
    /// The token holder's name; `null` when the API is open.
    user: Option<String>,
    /// `viewer`, `operator` or `admin`.
    #[schema(value_type = String)]
    role: Role,
    /// Whether the API takes requests without a token.
    open_api: bool,
    /// An API without tokens reachable beyond loopback, not declared open: it refuses every
    /// operator action.
    read_only: bool,
    /// Unacknowledged alarms of this priority or a more urgent one sound.
    sound_from: Priority,
    /// Shelving rules, least urgent first.
    shelving: Vec<ShelveRuleView>,
    /// Hazard sources: code, name and GB 18218 grade.
    hazard_sources: Vec<SiteName>,
    /// Threshold set-points by point id.
    setpoints: std::collections::BTreeMap<String, Vec<SetpointView>>,
    /// Shift starts (`"HH:MM"`, local time, ascending) the handover page covers; empty: the
    /// last 8 hours.
    shifts: Vec<String>,
}

/// The caller, their role and the site's console policy.
#[utoipa::path(get, path = "/api/v1/console", tag = "console",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Caller and policy", body = ConsoleSettings),
        (status = 401, description = "No or unknown token", body = ErrorBody),
    ))]
pub(super) async fn settings(State(s): State<AppState>, Extension(who): Extension<Principal>) -> Json<ConsoleSettings> {
    let policy = s.policy.read().unwrap_or_else(|p| p.into_inner()).clone();
    let shelving = policy
        .shelving
        .iter()
        .map(|(&priority, rule)| ShelveRuleView {
            priority,
            by: rule.by,
            max_s: rule.max.as_secs(),
            allowed: rule.by.least_role().is_some_and(|least| who.role >= least),
        })
        .collect();
    Json(ConsoleSettings {
        user: who.user,
        role: who.role,
        open_api: !s.auth.current().enabled(),
        read_only: s.auth.current().read_only_when_open(),
        sound_from: policy.sound_from,
        shelving,
        hazard_sources: policy.hazard_sources,
        setpoints: policy.setpoints,
        shifts: policy.shifts.iter().copied().map(super::shifts::format).collect(),
    })
}

//! `GET /api/v1/pair`: this node's role in a hot-standby pair, for consoles, keepalived's
//! check script and the plant's monitoring. The standby serves the same answer.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use crate::model::pair::{FieldReach, PairView};

/// Replication from the active to the standby.
#[derive(Debug, Serialize, ToSchema)]
pub struct Replication {
    /// Journal entries the standby has not confirmed (as the active counts them).
    pub lag_entries: u64,
    /// Milliseconds since the standby last confirmed everything it was sent.
    pub lag_ms: u64,
}

/// The lease record at the witness, as this node last saw it.
#[derive(Debug, Serialize, ToSchema)]
pub struct LeaseSeen {
    /// The node holding it; absent when vacant.
    pub holder: Option<String>,
    /// The holder's renewals in its term so far.
    pub beat: u64,
}

/// A node's place in its pair.
#[derive(Debug, Serialize, ToSchema)]
pub struct PairStatus {
    /// `single` (not in a pair), `active` or `standby`.
    pub role: &'static str,
    /// This node (`a` or `b`); absent when single.
    pub node: Option<String>,
    /// The other node.
    pub peer: Option<String>,
    /// The highest lease term seen.
    pub term: u64,
    /// Whether the pair link to the peer is up.
    pub peer_up: bool,
    /// Whether the witness broker is reachable.
    pub witness_up: bool,
    /// Whether the pair link runs over mutual TLS (`[redundancy] tls`); `false`: authenticated
    /// by the shared secret but not encrypted.
    pub link_tls: bool,
    /// Replication state.
    pub replication: Replication,
    /// Where the active's API is (as it advertises it), when known.
    pub active_api: Option<String>,
    /// The lease record last seen at the witness, if any.
    pub lease: Option<LeaseSeen>,
    /// What this node reaches of the plant network (Modbus TCP and RTU-over-TCP devices):
    /// the active's pollers, or the standby's while it polls them; absent otherwise.
    pub field: Option<FieldReach>,
    /// What the peer last said it reaches, if it polls.
    pub peer_field: Option<FieldReach>,
}

impl PairStatus {
    /// What `view` shows; a gateway outside a pair is `single`.
    pub fn of(view: Option<&PairView>) -> Self {
        let Some(v) = view else {
            return Self {
                role: "single",
                node: None,
                peer: None,
                term: 0,
                peer_up: false,
                witness_up: false,
                link_tls: false,
                replication: Replication {
                    lag_entries: 0,
                    lag_ms: 0,
                },
                active_api: None,
                lease: None,
                field: None,
                peer_field: None,
            };
        };
        let (lag_entries, lag_ms) = v.lag();
        Self {
            role: v.role().as_str(),
            node: Some(v.node.clone()),
            peer: Some(v.peer.clone()),
            term: v.term(),
            peer_up: v.peer_up(),
            witness_up: v.witness_up(),
            link_tls: v.link_tls(),
            replication: Replication { lag_entries, lag_ms },
            active_api: v.active_api(),
            lease: v.lease().map(|(holder, beat)| LeaseSeen { holder, beat }),
            field: v.field(),
            peer_field: v.peer_field(),
        }
    }
}

/// Accepted hand-over.
#[derive(Debug, Serialize, ToSchema)]
pub struct Handover {
    /// The node that takes over.
    pub to: String,
}

/// `POST /api/v1/pair/handover`: the active hands over to its standby for maintenance. It
/// stops monitoring in order (journal written, the standby confirmed it has everything), then
/// marks the lease vacant so the standby takes it at once. Refused when this node is not the
/// active or no standby follows it (nobody would be active).
#[utoipa::path(post, path = "/api/v1/pair/handover", tag = "operations",
    security(("bearer" = [])),
    responses(
        (status = 202, description = "Handing over", body = Handover),
        (status = 401, description = "No or unknown token", body = super::error::ErrorBody),
        (status = 403, description = "The token's role is not admin", body = super::error::ErrorBody),
        (status = 409, description = "Not in a pair, not active, or no standby follows", body = super::error::ErrorBody),
    ))]
pub(super) async fn handover(
    State(s): State<AppState>,
) -> Result<(axum::http::StatusCode, Json<Handover>), super::error::ApiError> {
    use super::error::ApiError;
    let Some(v) = s.pair.as_deref() else {
        return Err(ApiError::Conflict("this gateway is not in a pair".into()));
    };
    if v.role() != crate::model::pair::PairRole::Active {
        return Err(ApiError::Conflict("this node is not the active one".into()));
    }
    if !v.peer_up() {
        return Err(ApiError::Conflict(format!(
            "node {} is not following: after a hand-over nobody would be monitoring",
            v.peer
        )));
    }
    tracing::warn!(to = %v.peer, "Pair: hand-over requested through the API");
    v.request_handover();
    Ok((axum::http::StatusCode::ACCEPTED, Json(Handover { to: v.peer.clone() })))
}

/// This node's role in its hot-standby pair (`single` outside one).
#[utoipa::path(get, path = "/api/v1/pair", tag = "operations",
    responses((status = 200, description = "Role, term, peer and witness, replication lag", body = PairStatus)))]
pub(super) async fn status(State(s): State<AppState>) -> Json<PairStatus> {
    Json(PairStatus::of(s.pair.as_deref()))
}

//! Health of each OPC UA endpoint as its task sees it; `/api/v1/devices` shows it beside the
//! polled devices. Each endpoint has its own std mutex, held only to copy or bump a few fields
//! (never across an await).

use std::sync::Mutex;

use serde::Serialize;

use super::config::OpcuaSpec;
use crate::model::Timestamp;

/// What `/api/v1/devices` shows of an OPC UA endpoint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct OpcuaHealthView {
    /// Endpoint URL.
    pub url: String,
    /// Security policy and mode, e.g. `basic256sha256/sign_and_encrypt`.
    pub security: String,
    /// True while the session is open.
    pub connected: bool,
    /// When the current session opened (ms since the Unix epoch).
    pub connected_since_ms: Option<i64>,
    /// Sessions opened, the first and every reconnect.
    pub sessions: u64,
    /// Connections lost.
    pub connection_losses: u64,
    /// Monitored items configured.
    pub items: usize,
    /// Monitored items the server accepted at the last (re)subscription.
    pub items_ok: usize,
    /// Readings delivered.
    pub readings: u64,
    /// Values dropped as already delivered.
    pub duplicates: u64,
    /// The last failure, as logged (never holds a password).
    pub last_error: Option<String>,
}

#[derive(Debug)]
struct Entry {
    name: String,
    view: Mutex<OpcuaHealthView>,
    last_data: Mutex<Option<Timestamp>>,
}

/// Health of every OPC UA endpoint, in config order.
#[derive(Debug, Default)]
pub struct OpcuaHealth {
    entries: Vec<Entry>,
}

impl OpcuaHealth {
    /// A board for the endpoints of `spec`.
    pub fn new(spec: &OpcuaSpec) -> Self {
        Self {
            entries: spec
                .endpoints
                .iter()
                .enumerate()
                .map(|(i, e)| Entry {
                    name: e.name.clone(),
                    view: Mutex::new(OpcuaHealthView {
                        url: e.url.clone(),
                        security: format!("{}/{}", e.policy.as_str(), e.mode.as_str()),
                        items: spec.items.iter().filter(|it| it.endpoint == i).count(),
                        ..Default::default()
                    }),
                    last_data: Mutex::new(None),
                })
                .collect(),
        }
    }

    /// Changes the view of endpoint `i`.
    pub fn update(&self, i: usize, f: impl FnOnce(&mut OpcuaHealthView)) {
        if let Some(e) = self.entries.get(i) {
            f(&mut e.view.lock().unwrap_or_else(|p| p.into_inner()));
        }
    }

    /// Records data arriving at `now` on endpoint `i`.
    pub fn data(&self, i: usize, now: Timestamp) {
        if let Some(e) = self.entries.get(i) {
            *e.last_data.lock().unwrap_or_else(|p| p.into_inner()) = Some(now);
        }
    }

    /// `(name, view, last data time)` of every endpoint.
    pub fn snapshot(&self) -> Vec<(String, OpcuaHealthView, Option<Timestamp>)> {
        self.entries
            .iter()
            .map(|e| {
                (
                    e.name.clone(),
                    e.view.lock().unwrap_or_else(|p| p.into_inner()).clone(),
                    *e.last_data.lock().unwrap_or_else(|p| p.into_inner()),
                )
            })
            .collect()
    }
}

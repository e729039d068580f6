//! Health of each OPC UA endpoint as its task sees it; `/api/v1/devices` shows it beside the
//! polled devices. Each endpoint has its own std mutex, held only to copy or bump a few fields
//! (never across an await).

use std::sync::Mutex;

use super::config::OpcuaSpec;
use crate::model::Timestamp;
pub use crate::state::devices::OpcuaHealthView;
use crate::state::devices::{DeviceHealthView, EndpointBoard};

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

impl EndpointBoard for OpcuaHealth {
    /// OPC UA endpoints as devices: online while the session is open.
    fn device_views(&self) -> Vec<DeviceHealthView> {
        self.snapshot()
            .into_iter()
            .map(|(name, view, last_data)| DeviceHealthView {
                name: super::validate::device_of(&name),
                profile: "opcua".into(),
                transport: format!("opcua {}", view.url),
                unit_id: 0,
                status: match (view.connected, view.sessions, view.last_error.is_some()) {
                    (true, _, _) => "online",
                    (false, 0, false) => "unknown",
                    _ => "offline",
                },
                last_success_ms: last_data.map(Timestamp::as_millis),
                consecutive_failures: 0,
                requests: view.readings,
                timeouts: 0,
                exceptions: 0,
                bad_frames: 0,
                link_errors: view.connection_losses,
                response_ms_p50: None,
                response_ms_p99: None,
                station: None,
                opcua: Some(view),
                mqtt: None,
            })
            .collect()
    }
}

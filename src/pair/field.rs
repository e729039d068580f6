//! The standby's own view of the plant network, so the pair can tell an active that lost its
//! network (switch over) from devices that are down (nothing to gain).
//!
//! Design: the standby polls only network devices (Modbus TCP, RTU over TCP), never a serial
//! bus (one master) nor a dialled-in DTU (it dials one node). It polls them with the product's
//! own pollers into a health board of its own, read-only, and throws the readings away: the
//! active's readings are the record. It polls while the active asks (the active's network is
//! gone, or it would hand the role back) or all the time with `dual_poll = true`, which also
//! keeps the standby's reach known before anything fails.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::info;

use super::Shared;
use crate::clock::SharedClock;
use crate::config::GatewayConfig;
use crate::model::pair::FieldReach;
use crate::sources::modbus::poller::{Poller, group_lines};
use crate::sources::modbus::spec::TransportSpec;
use crate::state::devices::HealthBoard;
use crate::telemetry::Metrics;

/// How often the standby's reach is refreshed for the active.
const REFRESH: Duration = Duration::from_millis(100);

/// Pollers of the network devices, for as long as the standby probes.
struct Probe {
    board: Arc<HealthBoard>,
    stop: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl Probe {
    fn start(config: &GatewayConfig, clock: &SharedClock) -> Self {
        let board = HealthBoard::new(&config.devices);
        let stop = CancellationToken::new();
        // Readings are dropped as they come: only whether devices answer matters here.
        let (tx, mut rx) = mpsc::channel(64);
        let mut tasks = vec![tokio::spawn(async move { while rx.recv().await.is_some() {} })];
        let metrics = Metrics::default();
        for line in group_lines(&config.devices)
            .iter()
            .filter(|l| matches!(l.transport, TransportSpec::Tcp(_) | TransportSpec::RtuOverTcp(_)))
        {
            let poller = Poller::new(
                line,
                &config.devices,
                tx.clone(),
                clock.clone(),
                metrics.clone(),
                board.clone(),
            );
            tasks.push(tokio::spawn(poller.run(stop.child_token())));
        }
        Probe { board, stop, tasks }
    }

    async fn stop(self) {
        self.stop.cancel();
        for t in self.tasks.into_iter().skip(1) {
            let _ = t.await;
        }
        // The drain ends with the last sender.
    }
}

/// While this node is standby: polls the network devices when the active asks or
/// `always` (`dual_poll`), and keeps [`crate::model::pair::PairView::field`] current.
pub async fn watch(
    config: Arc<GatewayConfig>,
    shared: Arc<Shared>,
    clock: SharedClock,
    always: bool,
    stop: CancellationToken,
) {
    let mut probe: Option<Probe> = None;
    loop {
        let wanted = always || shared.view.field_asked();
        match (&probe, wanted) {
            (None, true) => {
                info!(always, "Pair: polling the network devices from the standby");
                probe = Some(Probe::start(&config, &clock));
            }
            (Some(_), false) => {
                if let Some(p) = probe.take() {
                    p.stop().await;
                }
                shared.view.set_field(None);
                info!("Pair: the active no longer asks; the standby stops polling");
            }
            _ => {}
        }
        if let Some(p) = &probe {
            shared.view.set_field(Some(p.board.network_reach()));
        }
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(REFRESH) => {}
        }
    }
    if let Some(p) = probe.take() {
        p.stop().await;
    }
    shared.view.set_field(None);
    shared.view.set_field_asked(false);
}

/// Whether the active should hand over for its plant network: it reaches none of its
/// network devices and the standby reaches at least one.
pub fn hand_over_for_field(own: FieldReach, peer: Option<FieldReach>) -> bool {
    own.lost() && peer.is_some_and(|p| p.online > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reach(devices: u32, known: u32, online: u32) -> FieldReach {
        FieldReach { devices, known, online }
    }

    #[test]
    fn the_active_hands_over_only_when_the_standby_reaches_what_it_lost() {
        assert!(hand_over_for_field(reach(2, 2, 0), Some(reach(2, 2, 1))));
        // The devices themselves are down: both lost them.
        assert!(!hand_over_for_field(reach(2, 2, 0), Some(reach(2, 2, 0))));
        // The standby has not polled yet, or does not say.
        assert!(!hand_over_for_field(reach(2, 2, 0), Some(reach(2, 0, 0))));
        assert!(!hand_over_for_field(reach(2, 2, 0), None));
        // One device still answers here.
        assert!(!hand_over_for_field(reach(2, 2, 1), Some(reach(2, 2, 2))));
    }
}

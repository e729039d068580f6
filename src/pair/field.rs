//! The standby's own view of the plant network, so the pair can tell an active that lost its
//! network (switch over) from devices that are down (nothing to gain).
//!
//! Design: the standby polls only network devices (Modbus TCP, RTU over TCP), never a serial
//! bus (one master) nor a dialled-in DTU (it dials one node). It polls them with the product's
//! own pollers into a health board of its own, read-only. It polls while the active asks (the
//! active's network is gone, or it would hand the role back) or all the time with
//! `dual_poll = true`, which keeps the standby's reach known before anything fails and its
//! values warm: the readings of the last [`WARM_FOR`] are kept, and those taken after the
//! active was last heard are evaluated first when this node takes over, so the record has
//! no gap where both could have read the devices.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::info;

use super::Shared;
use crate::clock::SharedClock;
use crate::config::GatewayConfig;
use crate::model::pair::FieldReach;
use crate::model::{ReadingBatch, Timestamp};
use crate::sources::modbus::poller::{Poller, group_lines};
use crate::sources::modbus::spec::TransportSpec;
use crate::state::devices::HealthBoard;
use crate::telemetry::Metrics;

/// How often the standby's reach is refreshed for the active.
const REFRESH: Duration = Duration::from_millis(100);

/// How far back the standby keeps its readings.
pub const WARM_FOR: Duration = Duration::from_secs(5);
/// Most readings kept, whatever the plant's size.
const WARM_MAX: usize = 200_000;

/// The standby's recent readings, oldest first, bounded by age and count.
#[derive(Debug, Default)]
struct Warm {
    batches: VecDeque<ReadingBatch>,
    readings: usize,
}

impl Warm {
    fn push(&mut self, batch: ReadingBatch, now: Timestamp) {
        self.readings += batch.len();
        self.batches.push_back(batch);
        let horizon = now.as_nanos() - i64::try_from(WARM_FOR.as_nanos()).unwrap_or(i64::MAX);
        while let Some(first) = self.batches.front() {
            let old = first.iter().all(|r| r.ts.as_nanos() < horizon);
            if !(old || self.readings > WARM_MAX) {
                break;
            }
            self.readings -= first.len();
            self.batches.pop_front();
        }
    }

    /// Readings taken after `after`, in the order they were polled.
    fn after(self, after: Timestamp) -> Vec<ReadingBatch> {
        self.batches
            .into_iter()
            .map(|b| b.into_iter().filter(|r| r.ts > after).collect::<ReadingBatch>())
            .filter(|b| !b.is_empty())
            .collect()
    }
}

/// Pollers of the network devices, for as long as the standby probes.
struct Probe {
    board: Arc<HealthBoard>,
    warm: Arc<Mutex<Warm>>,
    stop: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl Probe {
    fn start(config: &GatewayConfig, clock: &SharedClock) -> Self {
        let board = HealthBoard::new(&config.devices);
        let stop = CancellationToken::new();
        let warm = Arc::new(Mutex::new(Warm::default()));
        let (tx, mut rx) = mpsc::channel::<ReadingBatch>(64);
        let keep = warm.clone();
        let now = clock.clone();
        let mut tasks = vec![tokio::spawn(async move {
            while let Some(batch) = rx.recv().await {
                keep.lock().unwrap_or_else(|p| p.into_inner()).push(batch, now.now());
            }
        })];
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
        Probe {
            board,
            warm,
            stop,
            tasks,
        }
    }

    /// Stops the pollers; the readings they took.
    async fn stop(self) -> Warm {
        self.stop.cancel();
        for t in self.tasks {
            // The pollers end first; the keeper ends with their senders.
            let _ = t.await;
        }
        std::mem::take(&mut *self.warm.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// While this node is standby: polls the network devices when the active asks or
/// `always` (`dual_poll`), and keeps [`crate::model::pair::PairView::field`] current.
/// Returns the readings polled after `shared` last heard the active.
pub async fn watch(
    config: Arc<GatewayConfig>,
    shared: Arc<Shared>,
    clock: SharedClock,
    always: bool,
    stop: CancellationToken,
) -> Vec<ReadingBatch> {
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
    let warm = match probe.take() {
        Some(p) => p.stop().await,
        None => Warm::default(),
    };
    shared.view.set_field(None);
    shared.view.set_field_asked(false);
    match shared.warm_from() {
        Some(t) => {
            let kept = warm.after(t);
            info!(
                after_ms = t.as_millis(),
                batches = kept.len(),
                first_ms = kept.first().and_then(|b| b.first()).map(|r| r.ts.as_millis()),
                "Pair: the standby's readings since it last heard the active"
            );
            kept
        }
        // Never heard an active: nothing it may have missed is known.
        None => Vec::new(),
    }
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

    fn batch(ts_s: i64) -> ReadingBatch {
        let mut t = crate::model::PointTable::default();
        let point = t.insert(crate::model::PointMeta::test_gas("p")).unwrap();
        vec![crate::model::Reading {
            point,
            ts: Timestamp::from_nanos(ts_s * 1_000_000_000),
            value: 1.0,
            quality: crate::model::Quality::Good,
        }]
    }

    #[test]
    fn the_standby_keeps_recent_readings_and_hands_on_those_after_the_active_went_quiet() {
        let mut w = Warm::default();
        for s in 0..10 {
            w.push(batch(100 + s), Timestamp::from_nanos((100 + s) * 1_000_000_000));
        }
        // Readings older than WARM_FOR at the last push are gone.
        assert_eq!(w.batches.len(), 6, "{w:?}");
        assert_eq!(w.readings, 6);
        let after = w.after(Timestamp::from_nanos(107 * 1_000_000_000));
        let ts: Vec<i64> = after.iter().map(|b| b[0].ts.as_nanos() / 1_000_000_000).collect();
        assert_eq!(ts, [108, 109]);
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

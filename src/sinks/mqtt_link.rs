//! The broker side of a QoS 1 MQTT publisher, shared by northbound MQTT targets
//! ([`crate::sinks::mqtt_north`]) and MQTT uplinks ([`crate::sinks::uplink`]).
//!
//! rumqttc's `publish()` returns when the packet is queued, not when the broker has it, so a
//! publish counts as delivered only at the PUBACK carrying its packet id, which rumqttc
//! assigns on the way out. One task ([`start`]) owns the event loop and polls it without
//! pause, reconnecting with backoff after an error; it reports the packet id of each outgoing
//! publish and each PUBACK to the publishing task ([`Acks`]), and whether the broker
//! connection is up (a `watch`). The publishing task publishes one payload at a time:
//! [`Acks::forget_earlier`] before the publish, then [`Acks::acked`] pairs the first
//! outgoing packet id with its PUBACK.

use std::time::Duration;

use rumqttc::{ConnectionError, Event, EventLoop, Outgoing, Packet};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

/// Wait before the first reconnect attempt after an error, and after each successful connect.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// Longest wait between reconnect attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// How a publisher's broker connection shows in the log (each caller names itself in its own
/// fields).
pub trait LinkLog: Send + 'static {
    /// The broker accepted the connection: the first time, or again after a failure.
    fn connected(&self);
    /// The connection failed (the first failure after it was up, or before it ever was);
    /// `after_connection` tells the two apart. Repeated failures are not reported again.
    fn unreachable(&self, error: &ConnectionError, after_connection: bool);
}

/// What the event-loop task reports about packets and the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Report {
    /// A publish with this packet id went out.
    Sent(u16),
    /// The broker acknowledged this packet id.
    Acked(u16),
}

/// The publishing task's end: reports of the event-loop task, matched to one publish at a time.
#[derive(Debug)]
pub struct Acks {
    reports: mpsc::UnboundedReceiver<Report>,
}

impl Acks {
    /// Forgets reports about earlier packets (a PUBACK that came after its deadline); call it
    /// right before publishing.
    pub fn forget_earlier(&mut self) {
        while self.reports.try_recv().is_ok() {}
    }

    /// Waits for the PUBACK of the first publish that goes out after
    /// [`Acks::forget_earlier`] and returns its packet id; `None` once the event-loop task
    /// has stopped. Keep the future across other waits: it holds the packet id it saw go out.
    pub async fn acked(&mut self) -> Option<u16> {
        let mut ours = None;
        loop {
            match self.reports.recv().await? {
                Report::Sent(pkid) if ours.is_none() => ours = Some(pkid),
                Report::Acked(pkid) if Some(pkid) == ours => return Some(pkid),
                _ => {}
            }
        }
    }

    /// For a connection whose acknowledgements matter to nobody: reads and drops the reports
    /// (the event-loop task stops once nobody reads them).
    pub fn discard(mut self) {
        tokio::spawn(async move { while self.reports.recv().await.is_some() {} });
    }
}

/// Spawns the task that polls `eventloop` until `stop` fires (or nobody reads its reports);
/// returns the reports and whether the connection is up (false until the first CONNACK).
pub fn start(eventloop: EventLoop, log: impl LinkLog, stop: CancellationToken) -> (Acks, watch::Receiver<bool>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let (up_tx, up_rx) = watch::channel(false);
    tokio::spawn(drive(eventloop, tx, up_tx, log, stop));
    (Acks { reports: rx }, up_rx)
}

/// Polls the event loop without pause; rumqttc reconnects on the next poll after an error.
async fn drive(
    mut eventloop: EventLoop,
    reports: mpsc::UnboundedSender<Report>,
    up: watch::Sender<bool>,
    log: impl LinkLog,
    stop: CancellationToken,
) {
    let mut backoff = FIRST_BACKOFF;
    // None until the first CONNACK or failure.
    let mut connected = None;
    loop {
        let event = tokio::select! {
            _ = stop.cancelled() => return,
            e = eventloop.poll() => e,
        };
        let report = match event {
            Ok(Event::Outgoing(Outgoing::Publish(pkid))) => Some(Report::Sent(pkid)),
            Ok(Event::Incoming(Packet::PubAck(ack))) => Some(Report::Acked(ack.pkid)),
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                backoff = FIRST_BACKOFF;
                if connected != Some(true) {
                    log.connected();
                }
                connected = Some(true);
                up.send_replace(true);
                None
            }
            Ok(_) => None,
            Err(e) => {
                if connected != Some(false) {
                    log.unreachable(&e, connected == Some(true));
                }
                connected = Some(false);
                up.send_replace(false);
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                None
            }
        };
        if let Some(r) = report
            && reports.send(r).is_err()
        {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acks() -> (mpsc::UnboundedSender<Report>, Acks) {
        let (tx, rx) = mpsc::unbounded_channel();
        (tx, Acks { reports: rx })
    }

    #[tokio::test]
    async fn only_the_puback_of_the_first_publish_out_counts() {
        let (tx, mut acks) = acks();
        // A PUBACK that came after its deadline, and the packet it answered.
        tx.send(Report::Sent(1)).unwrap();
        tx.send(Report::Acked(1)).unwrap();
        acks.forget_earlier();
        for r in [
            Report::Acked(1),
            Report::Sent(2),
            Report::Sent(3),
            Report::Acked(3),
            Report::Acked(2),
        ] {
            tx.send(r).unwrap();
        }
        assert_eq!(acks.acked().await, Some(2));
    }

    #[tokio::test]
    async fn no_ack_once_the_event_loop_task_is_gone() {
        let (tx, mut acks) = acks();
        tx.send(Report::Sent(7)).unwrap();
        drop(tx);
        assert_eq!(acks.acked().await, None);
    }
}

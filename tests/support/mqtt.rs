//! An MQTT publisher for tests that feed the gateway through a real broker.

use std::time::Duration;

use rumqttc::{AsyncClient, Event, MqttOptions, Outgoing, Packet, QoS};
use tokio::sync::mpsc;

/// A QoS 1 publisher that waits for each PUBACK, and publishes again after a timeout or a
/// lost connection (so every message reaches the broker at least once).
pub struct Publisher {
    client: AsyncClient,
    events: mpsc::UnboundedReceiver<(bool, u16)>,
}

impl Publisher {
    /// Connects to the broker on loopback `port` as client `id`.
    pub fn start(port: u16, id: &str) -> Publisher {
        let mut opts = MqttOptions::new(id, "127.0.0.1", port);
        opts.set_keep_alive(Duration::from_secs(5));
        opts.set_max_packet_size(4 << 20, 4 << 20);
        let (client, mut eventloop) = AsyncClient::new(opts, 64);
        let (tx, events) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                let r = match eventloop.poll().await {
                    Ok(Event::Outgoing(Outgoing::Publish(pkid))) => Some((false, pkid)),
                    Ok(Event::Incoming(Packet::PubAck(a))) => Some((true, a.pkid)),
                    Ok(_) => None,
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        None
                    }
                };
                if let Some(r) = r
                    && tx.send(r).is_err()
                {
                    return;
                }
            }
        });
        Publisher { client, events }
    }

    /// Publishes `payload` to `topic` and returns once the broker acknowledged it.
    pub async fn send(&mut self, topic: &str, payload: impl Into<Vec<u8>>) {
        let payload = payload.into();
        loop {
            while self.events.try_recv().is_ok() {}
            self.client
                .publish(topic, QoS::AtLeastOnce, false, payload.clone())
                .await
                .expect("publish queued");
            let acked = tokio::time::timeout(Duration::from_secs(3), async {
                let mut ours = None;
                while let Some((ack, pkid)) = self.events.recv().await {
                    match (ack, ours) {
                        (false, None) => ours = Some(pkid),
                        (true, Some(p)) if p == pkid => return true,
                        _ => {}
                    }
                }
                false
            })
            .await;
            if acked == Ok(true) {
                return;
            }
        }
    }
}

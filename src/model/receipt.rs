//! The durability receipt of a batch of readings: how a source that can acknowledge upstream
//! (MQTT's PUBACK) learns that every sink has made the batch durable.

use std::sync::Arc;

use tokio::sync::oneshot;

/// Travels with a batch to every sink; each sink drops its clone once the readings are
/// durable there (history committed, the store's buffer record written) or their loss is
/// counted and logged. When the last clone is gone the source's [`Durable`] resolves and it
/// may acknowledge. A process killed before that never acknowledges, so the sender delivers
/// the batch again: accepted means durable.
#[derive(Debug, Clone)]
pub struct Receipt {
    /// Held, never read: its drop is the signal.
    _settle: Arc<Signal>,
}

#[derive(Debug)]
struct Signal(Option<oneshot::Sender<()>>);

impl Drop for Signal {
    fn drop(&mut self) {
        if let Some(tx) = self.0.take() {
            // The source may be gone (stopping); then nobody is left to acknowledge.
            let _ = tx.send(());
        }
    }
}

/// Resolves when every clone of its [`Receipt`] has been dropped.
pub type Durable = oneshot::Receiver<()>;

impl Receipt {
    /// A receipt and the future that resolves once it is settled everywhere.
    pub fn new() -> (Receipt, Durable) {
        let (tx, rx) = oneshot::channel();
        (
            Receipt {
                _settle: Arc::new(Signal(Some(tx))),
            },
            rx,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settles_only_when_every_clone_is_dropped() {
        let (r, mut done) = Receipt::new();
        let (a, b) = (r.clone(), r.clone());
        drop(r);
        drop(a);
        assert!(done.try_recv().is_err(), "one sink still holds it");
        drop(b);
        assert_eq!(done.try_recv(), Ok(()));
    }
}

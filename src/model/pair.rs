//! What a hot-standby pair shares with the components: the fence every field-bus transaction
//! and regulator send passes, and the pair's state as the API shows it.
//!
//! Design: the fence is a deadline on the monotonic clock, extended by whatever proves the
//! node may still be active (a lease renewal the witness echoed, an acknowledgement of the
//! standby over the pair link) and measured from when that proof was *sent*. The standby
//! waits longer than the fence lasts before it takes over, so the two never drive a bus
//! together, even when this node was frozen (SIGSTOP) and wakes past its deadline: the check
//! reads the clock, not a flag some task should have cleared.

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

/// Whether this node may drive field buses and regulator sends now.
#[derive(Debug, Clone)]
pub struct Fence {
    inner: Arc<FenceInner>,
}

#[derive(Debug)]
struct FenceInner {
    origin: Instant,
    /// Nanoseconds after `origin` until which driving is allowed; `u64::MAX` for a gateway
    /// that is not in a pair.
    until: AtomicU64,
}

impl Fence {
    /// A gateway alone: always open.
    pub fn open() -> Self {
        Self::with(u64::MAX)
    }

    /// A pair member: closed until a proof extends it.
    pub fn closed() -> Self {
        Self::with(0)
    }

    fn with(until: u64) -> Self {
        Self {
            inner: Arc::new(FenceInner {
                origin: Instant::now(),
                until: AtomicU64::new(until),
            }),
        }
    }

    fn nanos(&self, t: Instant) -> u64 {
        u64::try_from(t.saturating_duration_since(self.inner.origin).as_nanos()).unwrap_or(u64::MAX - 1)
    }

    /// True while this node may drive a bus or send to a regulator.
    pub fn may_drive(&self) -> bool {
        self.nanos(Instant::now()) < self.inner.until.load(Ordering::Acquire)
    }

    /// Allows driving until `deadline` (never shortens an allowance already given).
    pub fn extend_to(&self, deadline: Instant) {
        self.inner.until.fetch_max(self.nanos(deadline), Ordering::AcqRel);
    }

    /// Stops driving at once (the lease went to the peer, or the node steps down).
    pub fn close(&self) {
        self.inner.until.store(0, Ordering::Release);
    }

    /// How long driving stays allowed from now (zero when closed).
    pub fn remaining(&self) -> Duration {
        let until = self.inner.until.load(Ordering::Acquire);
        Duration::from_nanos(until.saturating_sub(self.nanos(Instant::now())))
    }
}

/// A pair member's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum PairRole {
    /// Not in a pair.
    Single = 0,
    /// Polls, evaluates, journals and delivers.
    Active = 1,
    /// Holds a copy and waits to take over.
    Standby = 2,
}

impl PairRole {
    /// Name in the API and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            PairRole::Single => "single",
            PairRole::Active => "active",
            PairRole::Standby => "standby",
        }
    }

    fn from_u8(v: u8) -> Self {
        match v {
            1 => PairRole::Active,
            2 => PairRole::Standby,
            _ => PairRole::Single,
        }
    }
}

/// What a node reaches of the plant network: its network devices (Modbus TCP, RTU over
/// TCP), how many have had a poll cycle, and how many answered their last one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct FieldReach {
    /// Network devices in the config.
    pub devices: u32,
    /// Of those, how many have had a poll cycle.
    pub known: u32,
    /// Of those, how many answered their last cycle.
    pub online: u32,
}

impl FieldReach {
    /// Every network device failed its last cycle: this node has lost the plant network, or
    /// the devices are down (the peer's reach tells which).
    pub fn lost(&self) -> bool {
        self.devices > 0 && self.known == self.devices && self.online == 0
    }
}

/// The pair as this node sees it, for the API, the console and `/metrics`.
#[derive(Debug)]
pub struct PairView {
    /// This node's name in the pair.
    pub node: String,
    /// The other node's name.
    pub peer: String,
    role: AtomicU8,
    term: AtomicU64,
    peer_up: AtomicBool,
    witness_up: AtomicBool,
    /// Whether the pair link runs over TLS.
    link_tls: AtomicBool,
    /// Journal entries the standby lacks (on the active) or is known to lack (on the standby).
    lag_entries: AtomicU64,
    /// Milliseconds since the standby last confirmed everything it was sent.
    lag_ms: AtomicU64,
    /// The active's API address, when known (the standby redirects there).
    active_api: Mutex<Option<String>>,
    /// The latest lease record seen at the witness: holder (`None`: vacant) and its renewal
    /// count.
    lease: Mutex<Option<(Option<String>, u64)>>,
    /// An operator asked the active to hand over to the standby.
    handover: tokio::sync::Notify,
    /// What this node reaches of the plant network (the active's pollers, or the standby's
    /// probe); `None` while it does not poll.
    field: Mutex<Option<FieldReach>>,
    /// What the peer last said it reaches (`None`: it does not poll or has not said).
    peer_field: Mutex<Option<FieldReach>>,
    /// On the standby: the active asked for this node's reach (its own plant network is
    /// gone, or it wants to hand the role back).
    field_asked: AtomicBool,
}

impl PairView {
    /// A fresh view: standby until the lease says otherwise.
    pub fn new(node: &str, peer: &str) -> Arc<Self> {
        Arc::new(Self {
            node: node.to_string(),
            peer: peer.to_string(),
            role: AtomicU8::new(PairRole::Standby as u8),
            term: AtomicU64::new(0),
            peer_up: AtomicBool::new(false),
            witness_up: AtomicBool::new(false),
            link_tls: AtomicBool::new(false),
            lag_entries: AtomicU64::new(0),
            lag_ms: AtomicU64::new(0),
            active_api: Mutex::new(None),
            lease: Mutex::new(None),
            handover: tokio::sync::Notify::new(),
            field: Mutex::new(None),
            peer_field: Mutex::new(None),
            field_asked: AtomicBool::new(false),
        })
    }

    /// Current role.
    pub fn role(&self) -> PairRole {
        PairRole::from_u8(self.role.load(Ordering::Acquire))
    }
    /// Sets the role.
    pub fn set_role(&self, role: PairRole) {
        self.role.store(role as u8, Ordering::Release);
    }
    /// The highest lease term seen.
    pub fn term(&self) -> u64 {
        self.term.load(Ordering::Acquire)
    }
    /// Records a lease term seen.
    pub fn see_term(&self, term: u64) {
        self.term.fetch_max(term, Ordering::AcqRel);
    }
    /// Whether the pair link to the peer is up.
    pub fn peer_up(&self) -> bool {
        self.peer_up.load(Ordering::Acquire)
    }
    /// Sets whether the pair link is up.
    pub fn set_peer_up(&self, up: bool) {
        self.peer_up.store(up, Ordering::Release);
    }
    /// Whether the witness broker is reachable.
    pub fn witness_up(&self) -> bool {
        self.witness_up.load(Ordering::Acquire)
    }
    /// Sets whether the witness is reachable.
    pub fn set_witness_up(&self, up: bool) {
        self.witness_up.store(up, Ordering::Release);
    }
    /// Whether the pair link runs over TLS (`[redundancy] tls`).
    pub fn link_tls(&self) -> bool {
        self.link_tls.load(Ordering::Acquire)
    }
    /// Records whether the pair link runs over TLS.
    pub fn set_link_tls(&self, tls: bool) {
        self.link_tls.store(tls, Ordering::Release);
    }
    /// Replication lag: entries and milliseconds.
    pub fn lag(&self) -> (u64, u64) {
        (
            self.lag_entries.load(Ordering::Acquire),
            self.lag_ms.load(Ordering::Acquire),
        )
    }
    /// Sets the replication lag.
    pub fn set_lag(&self, entries: u64, ms: u64) {
        self.lag_entries.store(entries, Ordering::Release);
        self.lag_ms.store(ms, Ordering::Release);
    }
    /// The active's API address, when known.
    pub fn active_api(&self) -> Option<String> {
        self.active_api.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
    /// Asks the role loop to hand over to the standby (maintenance).
    pub fn request_handover(&self) {
        self.handover.notify_one();
    }
    /// Resolves when an operator asked for a hand-over.
    pub async fn handover_requested(&self) {
        self.handover.notified().await;
    }
    /// The latest lease record seen: holder and renewal count.
    pub fn lease(&self) -> Option<(Option<String>, u64)> {
        self.lease.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
    /// Records the latest lease record seen.
    pub fn see_lease(&self, holder: Option<String>, beat: u64) {
        *self.lease.lock().unwrap_or_else(|p| p.into_inner()) = Some((holder, beat));
    }
    /// What this node reaches of the plant network, if it polls.
    pub fn field(&self) -> Option<FieldReach> {
        *self.field.lock().unwrap_or_else(|p| p.into_inner())
    }
    /// Records what this node reaches.
    pub fn set_field(&self, reach: Option<FieldReach>) {
        *self.field.lock().unwrap_or_else(|p| p.into_inner()) = reach;
    }
    /// What the peer last said it reaches.
    pub fn peer_field(&self) -> Option<FieldReach> {
        *self.peer_field.lock().unwrap_or_else(|p| p.into_inner())
    }
    /// Records what the peer said it reaches.
    pub fn set_peer_field(&self, reach: Option<FieldReach>) {
        *self.peer_field.lock().unwrap_or_else(|p| p.into_inner()) = reach;
    }
    /// On the standby: whether the active asked for this node's reach.
    pub fn field_asked(&self) -> bool {
        self.field_asked.load(Ordering::Acquire)
    }
    /// Records whether the active asks for this node's reach.
    pub fn set_field_asked(&self, asked: bool) {
        self.field_asked.store(asked, Ordering::Release);
    }
    /// Records where the active's API is.
    pub fn set_active_api(&self, api: Option<String>) {
        *self.active_api.lock().unwrap_or_else(|p| p.into_inner()) = api;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fence_allows_driving_only_until_its_deadline() {
        let f = Fence::closed();
        assert!(!f.may_drive());
        f.extend_to(Instant::now() + Duration::from_secs(60));
        assert!(f.may_drive());
        // A later, shorter proof never takes back an allowance already given.
        f.extend_to(Instant::now());
        assert!(f.may_drive());
        assert!(f.remaining() > Duration::from_secs(50));
        f.close();
        assert!(!f.may_drive());
        assert_eq!(f.remaining(), Duration::ZERO);
        // A deadline already past allows nothing: a node that wakes after its lease ran out.
        f.extend_to(Instant::now() - Duration::from_millis(1));
        assert!(!f.may_drive());
        assert!(Fence::open().may_drive());
    }

    #[test]
    fn the_field_is_lost_only_when_every_network_device_failed_its_last_cycle() {
        let reach = |devices, known, online| FieldReach { devices, known, online };
        assert!(reach(3, 3, 0).lost());
        // Not yet polled, one still answering, or nothing on the network to lose.
        assert!(!reach(3, 2, 0).lost());
        assert!(!reach(3, 3, 1).lost());
        assert!(!reach(0, 0, 0).lost());
    }

    #[test]
    fn the_view_reports_role_and_the_highest_term() {
        let v = PairView::new("a", "b");
        assert_eq!(v.role(), PairRole::Standby);
        v.set_role(PairRole::Active);
        assert_eq!(v.role().as_str(), "active");
        v.see_term(5);
        v.see_term(3);
        assert_eq!(v.term(), 5);
    }
}

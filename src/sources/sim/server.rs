//! The simulator's Modbus server: TCP, RTU over TCP, or RTU on a serial port.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio_modbus::server::tcp::Server;
use tokio_modbus::{ExceptionCode, Request, Response, SlaveRequest};
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::scenario::{Drill, PointDrill, ScenarioKind, ScenarioSet, StatusLink};
use super::signal::{Leak, SimSignal};
use crate::clock::{self, SharedClock};
use crate::model::Timestamp;
use crate::sources::modbus::decoder::encode;
use crate::sources::modbus::planner::{MAX_BITS_PER_READ, MAX_REGISTERS_PER_READ};
use crate::sources::modbus::register::{DataType, RegisterFunction, RegisterSpec};

/// How the simulator is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SimTransport {
    /// Modbus TCP on this address.
    Tcp(SocketAddr),
    /// RTU frames over TCP on this address, as a serial server / DTU would forward them.
    RtuOverTcp(SocketAddr),
    /// RTU on a serial port (e.g. one end of a socat pty pair) at this baud rate, 8N1.
    Rtu(PathBuf, u32),
}

/// A scripted event played on one point of the simulated device.
#[derive(Debug, Clone, PartialEq)]
pub enum Scenario {
    /// A gas leak (or any rise) on the point with this profile key.
    Leak {
        /// Profile point key, e.g. `ch1`.
        point: String,
        /// Its timing and peak.
        leak: Leak,
    },
    /// One of the drills the profile offers (see [`SimProfile::scenarios`]).
    Drill {
        /// Which drill.
        kind: ScenarioKind,
        /// Only these profile points (default: every target the profile names).
        points: Option<Vec<String>>,
        /// Replays the drill with this period.
        repeat_every: Option<Duration>,
    },
}

/// What the simulator serves of a device profile: its points' registers, everyday signals and
/// drill parts, and the drills it offers. The config's device profiles convert into it, so the
/// simulator needs nothing from the config.
#[derive(Debug, Clone, PartialEq)]
pub struct SimProfile {
    /// Profile name, for messages.
    pub name: String,
    /// Points in the profile's order (drill targets and status links index into it).
    pub points: Vec<SimPoint>,
    /// Drills the simulator can play on this device.
    pub scenarios: ScenarioSet,
}

/// One simulated point of a [`SimProfile`].
#[derive(Debug, Clone, PartialEq)]
pub struct SimPoint {
    /// Key in the profile (`ch1`, `level`).
    pub key: String,
    /// Where and how it is read.
    pub register: RegisterSpec,
    /// Simulated everyday behaviour.
    pub sim: SimSignal,
    /// Part in the drills (excursion, fault value, status bit behaviour).
    pub drill: PointDrill,
}

/// Device state shared by every connection.
#[derive(Debug)]
struct SimDevice {
    profile: SimProfile,
    /// Scenario time runs on this clock, so a test can walk a drill with a manual clock.
    clock: SharedClock,
    started: Timestamp,
    scenario: Option<(usize, Leak)>,
    /// The drill being played, if any.
    drill: Option<(ScenarioKind, Drill)>,
    /// Current state of hysteresis status bits; a std mutex: never held across an await.
    latches: Mutex<HashMap<usize, bool>>,
    /// Values pinned by hand (tests, drills); a std mutex: never held across an await.
    pinned: Mutex<HashMap<usize, f64>>,
    /// Unit id answered; `None` answers every unit (TCP devices commonly do).
    unit: Option<u8>,
    /// Delay before each answer, in microseconds (a slow device).
    delay_us: AtomicU64,
    /// When set, requests get no answer at all (a device that hangs or lost power on a bus).
    mute: AtomicBool,
}

impl SimDevice {
    fn elapsed(&self) -> Duration {
        self.clock.now().since(self.started)
    }

    /// Whether the device plays dead now (muted by hand, or in a communication-loss drill).
    fn silent(&self) -> bool {
        self.mute.load(Ordering::Relaxed)
            || matches!(&self.drill, Some((ScenarioKind::CommLoss, d)) if d.episode.holding(self.elapsed()))
    }

    /// Whether point `idx` is in a sensor-fault drill now.
    fn faulty(&self, idx: usize, elapsed: Duration) -> bool {
        matches!(&self.drill, Some((ScenarioKind::SensorFault, d)) if d.targets.contains(&idx) && d.episode.holding(elapsed))
    }

    fn value_of(&self, idx: usize, elapsed: Duration) -> f64 {
        if let Some(v) = self.pinned.lock().ok().and_then(|p| p.get(&idx).copied()) {
            return v;
        }
        let point = &self.profile.points[idx];
        match point.drill.status {
            Some(StatusLink::FaultOf { index }) => return f64::from(u8::from(self.faulty(index, elapsed))),
            Some(StatusLink::Follows { index, on, off }) => {
                // A faulty sensor's reading trips no relay.
                let v = if self.faulty(index, elapsed) {
                    f64::NEG_INFINITY
                } else {
                    self.value_of(index, elapsed)
                };
                let Ok(mut latches) = self.latches.lock() else {
                    return 0.0;
                };
                let set = latches.entry(idx).or_insert(false);
                *set = if *set { v >= off } else { v >= on };
                return f64::from(u8::from(*set));
            }
            None => {}
        }
        if let (true, Some(f)) = (self.faulty(idx, elapsed), point.drill.fault) {
            return f;
        }
        let jitter = rand::random::<f64>() - 0.5;
        let normal = point.sim.value_at(elapsed, jitter);
        if let Some((ScenarioKind::Leak | ScenarioKind::SlowRise, d)) = &self.drill
            && d.targets.contains(&idx)
            && let Some(x) = point.drill.excursion
        {
            return normal + (x - normal) * d.episode.share(elapsed);
        }
        match &self.scenario {
            Some((i, leak)) if *i == idx => leak.value_at(elapsed, normal),
            _ => normal,
        }
    }

    /// The registers `start..start+count` of a table, or the exception a strict device sends.
    fn read(&self, function: RegisterFunction, start: u16, count: u16) -> Result<Vec<u16>, ExceptionCode> {
        let max = if function.is_bits() {
            MAX_BITS_PER_READ
        } else {
            MAX_REGISTERS_PER_READ
        };
        if count == 0 || count > max {
            return Err(ExceptionCode::IllegalDataValue);
        }
        let elapsed = self.elapsed();
        let end = u32::from(start) + u32::from(count);
        let mut image = BTreeMap::new();
        for (idx, p) in self.profile.points.iter().enumerate() {
            let r = &p.register;
            if r.function != function || r.end() <= u32::from(start) || u32::from(r.address) >= end {
                continue;
            }
            for (i, w) in encode(r, self.value_of(idx, elapsed)).into_iter().enumerate() {
                let slot = image.entry(u32::from(r.address) + i as u32).or_insert(0);
                // Bits of one register are separate points: merge them.
                *slot = if matches!(r.data_type, DataType::Bit(_)) {
                    *slot | w
                } else {
                    w
                };
            }
        }
        (u32::from(start)..end)
            .map(|a| image.get(&a).copied().ok_or(ExceptionCode::IllegalDataAddress))
            .collect()
    }
}

#[derive(Debug, Clone)]
struct SimService(Arc<SimDevice>);

type Answer = Result<Option<Response>, ExceptionCode>;

impl tokio_modbus::server::Service for SimService {
    type Request = SlaveRequest<'static>;
    type Response = Option<Response>;
    type Exception = ExceptionCode;
    type Future = Pin<Box<dyn Future<Output = Answer> + Send>>;

    fn call(&self, req: Self::Request) -> Self::Future {
        let dev = &self.0;
        if dev.silent() || dev.unit.is_some_and(|u| u != req.slave) {
            return Box::pin(std::future::ready(Ok(None)));
        }
        let bits = |v: Vec<u16>| v.into_iter().map(|b| b != 0).collect::<Vec<bool>>();
        let answer = match req.request {
            Request::ReadCoils(a, n) => dev
                .read(RegisterFunction::Coil, a, n)
                .map(|v| Response::ReadCoils(bits(v))),
            Request::ReadDiscreteInputs(a, n) => dev
                .read(RegisterFunction::Discrete, a, n)
                .map(|v| Response::ReadDiscreteInputs(bits(v))),
            Request::ReadHoldingRegisters(a, n) => dev
                .read(RegisterFunction::Holding, a, n)
                .map(Response::ReadHoldingRegisters),
            Request::ReadInputRegisters(a, n) => dev
                .read(RegisterFunction::Input, a, n)
                .map(Response::ReadInputRegisters),
            _ => Err(ExceptionCode::IllegalFunction),
        }
        .map(Some);
        let delay = Duration::from_micros(dev.delay_us.load(Ordering::Relaxed));
        if delay.is_zero() {
            return Box::pin(std::future::ready(answer));
        }
        Box::pin(async move {
            tokio::time::sleep(delay).await;
            answer
        })
    }
}

/// A running simulated device. Dropping it (or [`Simulator::stop`]) closes the listener and
/// every open connection, as a device losing power would.
#[derive(Debug)]
pub struct Simulator {
    addr: SocketAddr,
    device: Arc<SimDevice>,
    cancel: CancellationToken,
}

impl Simulator {
    /// Binds `listen` and serves `profile` over Modbus TCP until stopped.
    pub async fn start(
        profile: impl Into<SimProfile>,
        listen: SocketAddr,
        scenario: Option<Scenario>,
    ) -> io::Result<Self> {
        Self::serve(profile, SimTransport::Tcp(listen), None, scenario).await
    }

    /// Serves `profile` on `transport` as unit `unit` (`None`: every unit) until stopped.
    pub async fn serve(
        profile: impl Into<SimProfile>,
        transport: SimTransport,
        unit: Option<u8>,
        scenario: Option<Scenario>,
    ) -> io::Result<Self> {
        Self::serve_on(profile, transport, unit, scenario, clock::system()).await
    }

    /// Like [`Simulator::serve`], with scenario time taken from `clock`.
    pub async fn serve_on(
        profile: impl Into<SimProfile>,
        transport: SimTransport,
        unit: Option<u8>,
        scenario: Option<Scenario>,
        clock: SharedClock,
    ) -> io::Result<Self> {
        let profile: SimProfile = profile.into();
        let invalid = |msg: String| io::Error::new(io::ErrorKind::InvalidInput, msg);
        let mut drill = None;
        let scenario = match scenario {
            None => None,
            Some(Scenario::Drill {
                kind,
                points,
                repeat_every,
            }) => {
                let Some(mut d) = profile.scenarios.get(&kind).cloned() else {
                    return Err(invalid(format!(
                        "profile `{}` offers no {kind} scenario (no point has the value it needs)",
                        profile.name
                    )));
                };
                if let Some(keys) = points {
                    let mut picked = Vec::new();
                    for k in keys {
                        match d.targets.iter().find(|&&i| profile.points[i].key == k) {
                            Some(&i) => picked.push(i),
                            None => {
                                return Err(invalid(format!(
                                    "the {kind} scenario of profile `{}` cannot act on `{k}`",
                                    profile.name
                                )));
                            }
                        }
                    }
                    if kind != ScenarioKind::CommLoss {
                        d.targets = picked;
                    }
                }
                d.episode.repeat_every = repeat_every;
                drill = Some((kind, d));
                None
            }
            Some(Scenario::Leak { point, leak }) => {
                let idx = profile.points.iter().position(|p| p.key == point).ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!(
                            "profile `{}` has no point `{point}` for the leak scenario",
                            profile.name
                        ),
                    )
                })?;
                Some((idx, leak))
            }
        };
        let started = clock.now();
        let device = Arc::new(SimDevice {
            profile,
            clock,
            started,
            scenario,
            drill,
            latches: Mutex::new(HashMap::new()),
            pinned: Mutex::new(HashMap::new()),
            unit,
            delay_us: AtomicU64::new(0),
            mute: AtomicBool::new(false),
        });
        let cancel = CancellationToken::new();
        let addr = match transport {
            SimTransport::Tcp(listen) => {
                let listener = TcpListener::bind(listen).await?;
                let addr = listener.local_addr()?;
                tokio::spawn(serve(listener, device.clone(), cancel.clone()));
                addr
            }
            SimTransport::RtuOverTcp(listen) => {
                let listener = TcpListener::bind(listen).await?;
                let addr = listener.local_addr()?;
                tokio::spawn(serve_rtu_over_tcp(listener, device.clone(), cancel.clone()));
                addr
            }
            SimTransport::Rtu(path, baud) => {
                let port = tokio_serial::SerialStream::open(&tokio_serial::new(path.to_string_lossy(), baud))
                    .map_err(io::Error::other)?;
                let server = tokio_modbus::server::rtu::Server::new(port);
                let service = SimService(device.clone());
                let stop = cancel.clone();
                tokio::spawn(async move {
                    let abort = Box::pin(stop.cancelled_owned());
                    if let Err(e) = server.serve_until(service, abort).await {
                        debug!(error = %e, "Simulator serial server ended");
                    }
                });
                SocketAddr::from(([0, 0, 0, 0], 0))
            }
        };
        Ok(Self { addr, device, cancel })
    }

    /// Delays every answer by `delay` (zero: answer at once), like a slow device.
    pub fn set_delay(&self, delay: Duration) {
        let us = u64::try_from(delay.as_micros()).unwrap_or(u64::MAX);
        self.device.delay_us.store(us, Ordering::Relaxed);
    }

    /// Stops (or resumes) answering while keeping connections open, like a hung device.
    pub fn set_mute(&self, mute: bool) {
        self.device.mute.store(mute, Ordering::Relaxed);
    }

    /// The address it listens on (useful when started on port 0); unspecified for serial.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Pins a point to `value` until [`Simulator::unpin`]; `false` if the profile has no such key.
    pub fn pin(&self, key: &str, value: f64) -> bool {
        let Some(idx) = self.device.profile.points.iter().position(|p| p.key == key) else {
            return false;
        };
        if let Ok(mut p) = self.device.pinned.lock() {
            p.insert(idx, value);
        }
        true
    }

    /// Lets a pinned point follow its signal again.
    pub fn unpin(&self, key: &str) {
        if let Some(idx) = self.device.profile.points.iter().position(|p| p.key == key)
            && let Ok(mut p) = self.device.pinned.lock()
        {
            p.remove(&idx);
        }
    }

    /// Stops serving and closes every connection.
    pub fn stop(&self) {
        self.cancel.cancel();
    }

    /// Resolves when the simulator has been stopped.
    pub async fn stopped(&self) {
        self.cancel.cancelled().await;
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

async fn serve(listener: TcpListener, device: Arc<SimDevice>, cancel: CancellationToken) {
    let server = Server::new(listener);
    let on_connected = |stream: TcpStream, peer: SocketAddr| {
        let device = device.clone();
        let cancel = cancel.clone();
        async move {
            debug!(%peer, "Simulator connection");
            // tokio-modbus owns the per-connection task; it talks to one end of an in-memory
            // pipe and we relay the socket, so stopping can close every socket at once.
            let (ours, theirs) = tokio::io::duplex(4096);
            tokio::spawn(relay(stream, theirs, cancel));
            Ok(Some((SimService(device), ours)))
        }
    };
    tokio::select! {
        _ = cancel.cancelled() => {}
        r = server.serve(&on_connected, |e| debug!(error = %e, "Simulator connection ended")) => {
            if let Err(e) = r { debug!(error = %e, "Simulator listener failed"); }
        }
    }
}

async fn serve_rtu_over_tcp(listener: TcpListener, device: Arc<SimDevice>, cancel: CancellationToken) {
    let server = tokio_modbus::server::rtu_over_tcp::Server::new(listener);
    let on_connected = |stream: TcpStream, peer: SocketAddr| {
        let device = device.clone();
        let cancel = cancel.clone();
        async move {
            debug!(%peer, "Simulator RTU-over-TCP connection");
            let (ours, theirs) = tokio::io::duplex(4096);
            tokio::spawn(relay(stream, theirs, cancel));
            Ok(Some((SimService(device), ours)))
        }
    };
    tokio::select! {
        _ = cancel.cancelled() => {}
        r = server.serve(&on_connected, |e| debug!(error = %e, "Simulator connection ended")) => {
            if let Err(e) = r { debug!(error = %e, "Simulator listener failed"); }
        }
    }
}

async fn relay(mut socket: TcpStream, mut pipe: tokio::io::DuplexStream, cancel: CancellationToken) {
    tokio::select! {
        _ = cancel.cancelled() => {}
        _ = tokio::io::copy_bidirectional(&mut socket, &mut pipe) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::config::ProfileSet;

    #[tokio::test]
    async fn a_power_cut_bit_sets_at_the_cut_value_and_resets_only_below_the_restore_value() {
        let profile = ProfileSet::builtin().unwrap().get("mine-ch4").cloned().unwrap();
        let clock: SharedClock = Arc::new(ManualClock::new(Timestamp::from_nanos(1)));
        let listen = SocketAddr::from(([127, 0, 0, 1], 0));
        let sim = Simulator::serve_on(profile, SimTransport::Tcp(listen), None, None, clock)
            .await
            .unwrap();
        let status = |ch4: f64| {
            assert!(sim.pin("ch4", ch4));
            sim.device.read(RegisterFunction::Holding, 1, 1).unwrap()[0]
        };
        const ALARM: u16 = 1;
        const CUT: u16 = 2;
        assert_eq!(status(0.5), 0);
        assert_eq!(status(1.2), ALARM, "alarm at 1.0 %, no cut below 1.5 %");
        assert_eq!(status(1.6), ALARM | CUT);
        assert_eq!(status(1.2), ALARM | CUT, "power stays cut until below 1.0 %");
        assert_eq!(status(0.99), 0, "restored below 1.0 %");
    }

    #[tokio::test]
    async fn a_comm_loss_drill_silences_the_device_only_during_its_hold() {
        let profile = ProfileSet::builtin().unwrap().get("mine-co").cloned().unwrap();
        let hold = profile.scenarios[&ScenarioKind::CommLoss].episode;
        let manual = Arc::new(ManualClock::new(Timestamp::from_nanos(1)));
        let clock: SharedClock = manual.clone();
        let drill = Scenario::Drill {
            kind: ScenarioKind::CommLoss,
            points: None,
            repeat_every: None,
        };
        let listen = SocketAddr::from(([127, 0, 0, 1], 0));
        let sim = Simulator::serve_on(profile, SimTransport::Tcp(listen), None, Some(drill), clock)
            .await
            .unwrap();
        assert!(!sim.device.silent());
        manual.advance(hold.start + hold.hold / 2);
        assert!(sim.device.silent());
        manual.advance(hold.hold);
        assert!(!sim.device.silent());
    }
}

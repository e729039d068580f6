//! The simulator's Modbus TCP server.

use std::collections::{BTreeMap, HashMap};
use std::future::{Ready, ready};
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_modbus::server::tcp::Server;
use tokio_modbus::{ExceptionCode, Request, Response};
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::signal::Leak;
use crate::config::Profile;
use crate::sources::modbus::decoder::encode;
use crate::sources::modbus::planner::MAX_REGISTERS_PER_READ;
use crate::sources::modbus::register::RegisterFunction;

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
}

/// Device state shared by every connection.
#[derive(Debug)]
struct SimDevice {
    profile: Profile,
    started: Instant,
    scenario: Option<(usize, Leak)>,
    /// Values pinned by hand (tests, drills); a std mutex: never held across an await.
    pinned: Mutex<HashMap<usize, f64>>,
}

impl SimDevice {
    fn value_of(&self, idx: usize, elapsed: std::time::Duration) -> f64 {
        if let Some(v) = self.pinned.lock().ok().and_then(|p| p.get(&idx).copied()) {
            return v;
        }
        let point = &self.profile.points[idx];
        let jitter = rand::random::<f64>() - 0.5;
        let normal = point.sim.value_at(elapsed, jitter);
        match &self.scenario {
            Some((i, leak)) if *i == idx => leak.value_at(elapsed, normal),
            _ => normal,
        }
    }

    /// The registers `start..start+count` of a table, or the exception a strict device sends.
    fn read(&self, function: RegisterFunction, start: u16, count: u16) -> Result<Vec<u16>, ExceptionCode> {
        if count == 0 || count > MAX_REGISTERS_PER_READ {
            return Err(ExceptionCode::IllegalDataValue);
        }
        let elapsed = self.started.elapsed();
        let end = u32::from(start) + u32::from(count);
        let mut image = BTreeMap::new();
        for (idx, p) in self.profile.points.iter().enumerate() {
            let r = &p.register;
            if r.function != function || r.end() <= u32::from(start) || u32::from(r.address) >= end {
                continue;
            }
            for (i, w) in encode(r, self.value_of(idx, elapsed)).into_iter().enumerate() {
                image.insert(u32::from(r.address) + i as u32, w);
            }
        }
        (u32::from(start)..end)
            .map(|a| image.get(&a).copied().ok_or(ExceptionCode::IllegalDataAddress))
            .collect()
    }
}

#[derive(Debug, Clone)]
struct SimService(Arc<SimDevice>);

impl tokio_modbus::server::Service for SimService {
    type Request = Request<'static>;
    type Response = Response;
    type Exception = ExceptionCode;
    type Future = Ready<Result<Response, ExceptionCode>>;

    fn call(&self, req: Self::Request) -> Self::Future {
        let dev = &self.0;
        ready(match req {
            Request::ReadHoldingRegisters(a, n) => dev
                .read(RegisterFunction::Holding, a, n)
                .map(Response::ReadHoldingRegisters),
            Request::ReadInputRegisters(a, n) => dev
                .read(RegisterFunction::Input, a, n)
                .map(Response::ReadInputRegisters),
            _ => Err(ExceptionCode::IllegalFunction),
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
    /// Binds `listen` and serves `profile` until stopped.
    pub async fn start(profile: Profile, listen: SocketAddr, scenario: Option<Scenario>) -> io::Result<Self> {
        let scenario = match scenario {
            None => None,
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
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let device = Arc::new(SimDevice {
            profile,
            started: Instant::now(),
            scenario,
            pinned: Mutex::new(HashMap::new()),
        });
        let cancel = CancellationToken::new();
        tokio::spawn(serve(listener, device.clone(), cancel.clone()));
        Ok(Self { addr, device, cancel })
    }

    /// The address it listens on (useful when started on port 0).
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

async fn relay(mut socket: TcpStream, mut pipe: tokio::io::DuplexStream, cancel: CancellationToken) {
    tokio::select! {
        _ = cancel.cancelled() => {}
        _ = tokio::io::copy_bidirectional(&mut socket, &mut pipe) => {}
    }
}

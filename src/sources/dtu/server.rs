//! The listening side: accept, read the registration packet, map it to a station, then run
//! the connection's reader (heartbeats out, frames to the line task, heartbeat timeout).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout_at};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::framer::{Framer, Piece};
use super::{DtuHub, Session, Station};
use crate::sources::dtu::spec::{DtuListenerSpec, hex};
use crate::telemetry::dtu::ListenerResult;

/// Longest registration packet looked at.
const MAX_REGISTRATION: usize = 128;
/// After a partial match, how long to wait for bytes that could make a longer one; and how
/// long a complete TCP frame is held for bytes that tell whether a heartbeat split it.
const SETTLE: Duration = Duration::from_millis(200);
/// A partial frame older than this when new bytes arrive is dropped: the rest never came.
const STALE_PARTIAL: Duration = Duration::from_secs(2);
/// Frames queued for the line task; more means nobody asked for them (late answers).
const FRAME_QUEUE: usize = 16;
/// Unknown-id warnings per listener are logged at most this often (the rest are counted).
const UNKNOWN_LOG_EVERY: Duration = Duration::from_secs(60);

/// How the first bytes of a connection compare with the stations of a listener.
#[derive(Debug, PartialEq, Eq)]
pub enum Registration {
    /// Station index and bytes the registration took; `settled` once more bytes cannot
    /// change the answer.
    Match {
        /// Index into the hub's stations.
        station: usize,
        /// Bytes of the registration packet.
        len: usize,
        /// No longer id could still match.
        settled: bool,
    },
    /// No station yet, but more bytes could complete one.
    NeedMore,
    /// No station can match.
    Unknown,
}

impl DtuHub {
    /// Compares `buf` with the ids of the stations on `listener`; the longest match wins.
    pub fn recognise(&self, listener: usize, buf: &[u8]) -> Registration {
        let mut best: Option<(usize, usize)> = None;
        let mut more = false;
        for (i, s) in self.stations.iter().enumerate() {
            if s.spec.listener != listener {
                continue;
            }
            if let Some(n) = s.spec.id.match_len(buf)
                && best.is_none_or(|(_, b)| n > b)
            {
                best = Some((i, n));
            }
            more |= s.spec.id.could_complete(buf);
        }
        match best {
            Some((station, len)) => Registration::Match {
                station,
                len,
                settled: !more,
            },
            None if more => Registration::NeedMore,
            None => Registration::Unknown,
        }
    }

    /// Binds every listener; the accept loops run until `cancel` fires.
    pub async fn start(
        self: &Arc<Self>,
        cancel: CancellationToken,
    ) -> Result<Vec<SocketAddr>, (SocketAddr, std::io::Error)> {
        let mut addrs = Vec::new();
        for (i, l) in self.spec.listeners.iter().enumerate() {
            let listener = TcpListener::bind(l.listen).await.map_err(|e| (l.listen, e))?;
            let addr = listener.local_addr().map_err(|e| (l.listen, e))?;
            tracing::info!(listener = %l.name, %addr, framing = ?l.framing, "Listening for DTUs");
            addrs.push(addr);
            tokio::spawn(self.clone().accept_loop(i, listener, cancel.clone()));
        }
        Ok(addrs)
    }

    async fn accept_loop(self: Arc<Self>, index: usize, listener: TcpListener, cancel: CancellationToken) {
        loop {
            let accepted = tokio::select! {
                _ = cancel.cancelled() => return,
                a = listener.accept() => a,
            };
            let (stream, peer) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    warn!(error = %e, "Cannot accept a DTU connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(self.clone().register(index, stream, peer, cancel.clone()));
        }
    }

    /// Logs a refused id, at most once a minute per listener; the others are counted in the
    /// next warning (and all of them in `hazard_dtu_registrations_total`).
    fn refused(&self, index: usize, peer: SocketAddr, first: &[u8]) {
        let name = &self.spec.listeners[index].name;
        let mut limit = self.unknown_log[index].lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if limit.0.is_none_or(|t| now.duration_since(t) >= UNKNOWN_LOG_EVERY) {
            let suppressed = std::mem::take(&mut limit.1);
            limit.0 = Some(now);
            warn!(listener = %name, %peer, first_bytes = %hex(first), suppressed,
                  "Refused a DTU with an unknown registration id");
        } else {
            limit.1 += 1;
            debug!(listener = %name, %peer, first_bytes = %hex(first), "Refused a DTU with an unknown registration id");
        }
    }

    /// Reads the registration and attaches the connection to its station; an unknown id is
    /// refused (the socket is dropped, closing it).
    async fn register(
        self: Arc<Self>,
        index: usize,
        mut stream: TcpStream,
        peer: SocketAddr,
        cancel: CancellationToken,
    ) {
        let spec: &DtuListenerSpec = &self.spec.listeners[index];
        let deadline = Instant::now() + spec.registration_timeout;
        let count = |result: &'static str| {
            self.metrics
                .dtu
                .registrations
                .get_or_create(&ListenerResult {
                    listener: spec.name.clone(),
                    result,
                })
                .inc();
        };
        let regex = self
            .stations
            .iter()
            .any(|s| s.spec.listener == index && matches!(s.spec.id, crate::sources::dtu::spec::Matcher::Regex(_)));
        // True once a wait for more bytes ran out: what is there is all there is.
        let mut settled = false;
        let mut buf = Vec::with_capacity(64);
        let mut chunk = [0u8; 256];
        let (station, len) = loop {
            let reg = self.recognise(index, &buf);
            let wait_until = match reg {
                Registration::Match {
                    station,
                    len,
                    settled: true,
                    ..
                } => break (station, len),
                Registration::Match { .. } => (Instant::now() + SETTLE).min(deadline),
                Registration::NeedMore => deadline,
                Registration::Unknown if buf.is_empty() => deadline,
                // A pattern may need bytes still in flight: give them a moment.
                Registration::Unknown if regex && !settled => (Instant::now() + SETTLE).min(deadline),
                Registration::Unknown => {
                    count("unknown");
                    self.refused(index, peer, &buf);
                    return;
                }
            };
            if buf.len() >= MAX_REGISTRATION {
                count("unknown");
                self.refused(index, peer, &buf);
                return;
            }
            match tokio::time::timeout_at(wait_until, stream.read(&mut chunk)).await {
                Ok(Ok(0)) | Ok(Err(_)) => {
                    count("closed");
                    return;
                }
                Ok(Ok(n)) => {
                    buf.extend_from_slice(&chunk[..n]);
                    settled = false;
                }
                Err(_) => match reg {
                    Registration::Match { station, len, .. } => break (station, len),
                    Registration::Unknown if !buf.is_empty() => settled = true,
                    _ => {
                        count("timeout");
                        debug!(%peer, first_bytes = %hex(&buf), "A DTU connection sent no registration in time");
                        return;
                    }
                },
            }
        };
        count("ok");
        let st = self.stations[station].clone();
        let (read, write) = stream.into_split();
        let (tx, rx) = mpsc::channel(FRAME_QUEUE);
        let session = Arc::new(Session {
            serial: self.serial.fetch_add(1, Ordering::Relaxed),
            peer,
            framing: spec.framing,
            writer: tokio::sync::Mutex::new(write),
            frames: tokio::sync::Mutex::new(rx),
            closed: cancel.child_token(),
        });
        let mut framer = Framer::new(spec.framing, st.spec.heartbeat.clone());
        framer.push(&buf[len..]);
        self.attach(&st, session.clone());
        let limit = spec.heartbeat_timeout;
        self.read_loop(&st, &session, read, framer, tx, limit).await;
        self.detach(&st, &session);
    }

    /// Runs until the connection closes, is replaced, or stays silent past `limit`.
    ///
    /// The [`Framer`] takes heartbeats out wherever they land (at frame boundaries, split
    /// across reads, or inside a frame a slow serial side made the DTU send in two packets);
    /// each one counts as traffic, so heartbeats keep the station alive while only frames
    /// reach the line task. A frame the framer holds (see [`Framer::holding`]) is taken as
    /// received after [`SETTLE`] without further bytes.
    async fn read_loop(
        &self,
        st: &Station,
        session: &Arc<Session>,
        mut read: OwnedReadHalf,
        mut framer: Framer,
        tx: mpsc::Sender<Vec<u8>>,
        limit: Duration,
    ) {
        let mut chunk = [0u8; 512];
        let mut last_rx = Instant::now();
        loop {
            self.drain(st, &mut framer, &tx);
            let silent_until = last_rx + limit;
            let wait_until = if framer.holding() {
                (Instant::now() + SETTLE).min(silent_until)
            } else {
                silent_until
            };
            let got = tokio::select! {
                _ = session.closed.cancelled() => return,
                r = timeout_at(wait_until, read.read(&mut chunk)) => r,
            };
            match got {
                Err(_) if framer.holding() && Instant::now() < silent_until => {
                    for piece in framer.settle() {
                        self.deliver(st, piece, &tx);
                    }
                }
                Err(_) => {
                    warn!(station = %st.spec.name, peer = %session.peer, timeout = ?limit,
                          "No heartbeat or answer from the DTU within the heartbeat timeout; closing its connection");
                    self.metrics.dtu.heartbeat_timeouts.get_or_create(&st.label).inc();
                    st.health(|h| h.heartbeat_timeouts += 1);
                    return;
                }
                Ok(Ok(0)) => {
                    debug!(station = %st.spec.name, peer = %session.peer, "DTU closed its connection");
                    return;
                }
                Ok(Err(e)) => {
                    debug!(station = %st.spec.name, error = %e, "DTU connection failed");
                    return;
                }
                Ok(Ok(n)) => {
                    let now = Instant::now();
                    if framer.pending() > 0 && now.duration_since(last_rx) > STALE_PARTIAL {
                        let dropped = framer.clear();
                        self.garbled(st, dropped);
                    }
                    last_rx = now;
                    framer.push(&chunk[..n]);
                    self.traffic(st, false);
                }
            }
        }
    }

    fn drain(&self, st: &Station, framer: &mut Framer, tx: &mpsc::Sender<Vec<u8>>) {
        while let Some(piece) = framer.next_piece() {
            self.deliver(st, piece, tx);
        }
    }

    /// Heartbeats count as liveness, frames go to the line task, garbage is counted.
    fn deliver(&self, st: &Station, piece: Piece, tx: &mpsc::Sender<Vec<u8>>) {
        match piece {
            Piece::Heartbeat => self.traffic(st, true),
            Piece::Frame(f) => {
                if tx.try_send(f).is_err() {
                    // Nobody is waiting for this many answers: they answer nothing.
                    self.late_reply(st);
                }
            }
            Piece::Garbage(n) => self.garbled(st, n),
        }
    }

    fn garbled(&self, st: &Station, n: usize) {
        self.metrics.dtu.garbled_bytes.get_or_create(&st.label).inc_by(n as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::dtu::spec::{DtuFraming, DtuSpec, Matcher, StationSpec};

    fn hub() -> Arc<DtuHub> {
        let listener = DtuListenerSpec {
            name: "dtu".into(),
            listen: "127.0.0.1:0".parse().unwrap(),
            framing: DtuFraming::Rtu,
            heartbeat_interval: Duration::from_secs(30),
            heartbeat_timeout: Duration::from_secs(90),
            registration_timeout: Duration::from_secs(10),
        };
        let station = |name: &str, id: Matcher| StationSpec {
            name: name.into(),
            listener: 0,
            id,
            heartbeat: None,
        };
        let spec = DtuSpec {
            listeners: vec![listener],
            stations: vec![
                station("a", Matcher::Bytes(b"DTU1".to_vec())),
                station("b", Matcher::Bytes(b"DTU12".to_vec())),
                station(
                    "c",
                    Matcher::Regex(regex::bytes::Regex::new("^(?:REG[0-9]{2};)").unwrap()),
                ),
            ],
        };
        DtuHub::new(&spec, crate::telemetry::Metrics::new(), crate::clock::system())
    }

    #[test]
    fn the_longest_id_wins_and_a_prefix_waits_for_more() {
        let hub = hub();
        assert_eq!(hub.recognise(0, b"DT"), Registration::NeedMore);
        assert_eq!(
            hub.recognise(0, b"DTU1"),
            Registration::Match {
                station: 0,
                len: 4,
                settled: false
            },
            "DTU12 could still come"
        );
        assert_eq!(
            hub.recognise(0, b"DTU12HB"),
            Registration::Match {
                station: 1,
                len: 5,
                settled: true
            }
        );
        assert_eq!(
            hub.recognise(0, b"REG07;\x01\x03"),
            Registration::Match {
                station: 2,
                len: 6,
                settled: true
            }
        );
        assert_eq!(hub.recognise(0, b"XYZ"), Registration::Unknown);
        assert_eq!(
            hub.recognise(0, b"xDTU12"),
            Registration::Unknown,
            "ids match at the first byte"
        );
    }
}

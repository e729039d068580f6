//! A simulated 4G DTU: dials in to the gateway's DTU listener, sends its registration packet,
//! sends heartbeats on its own timer and around every answer, and answers each request by
//! forwarding it to a real Modbus server (our simulator over RTU-over-TCP or TCP, or pymodbus)
//! chosen by unit id. It can hold an answer back and deliver it late (before an answer to
//! another unit), send answers in two packets with a heartbeat between or around them, go
//! silent, and report when the gateway closed its socket.
//!
//! Self-contained (tokio only), so the DTU load harness includes it too.

#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

/// How Modbus frames travel, between gateway and DTU and between DTU and server alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    Rtu,
    Tcp,
}

/// What a simulated DTU does.
#[derive(Debug, Clone)]
pub struct DtuOptions {
    pub gateway: SocketAddr,
    pub registration: Vec<u8>,
    pub heartbeat: Vec<u8>,
    pub heartbeat_every: Duration,
    /// Also send a heartbeat just before and just after each answer.
    pub heartbeat_around_answers: bool,
    /// Send each answer in two packets with a heartbeat landing inside or around it, as a DTU
    /// does when the serial side pauses mid-answer and its heartbeat timer fires (see
    /// [`split_with_heartbeat`]).
    pub split_answers: bool,
    pub framing: Framing,
    /// Server behind each unit id.
    pub upstream: HashMap<u8, SocketAddr>,
}

/// Live controls and counters of a simulated DTU.
#[derive(Debug, Default)]
pub struct DtuState {
    /// Stop answering and stop heartbeats (the socket stays open).
    pub silent: AtomicBool,
    /// Hold back the next answer from this unit (+1; 0 = off) and deliver it late.
    pub late_unit: AtomicU64,
    /// Requests received from the gateway.
    pub requests: AtomicU64,
    /// Answers delivered late.
    pub late_sent: AtomicU64,
    /// Answers sent in pieces with a heartbeat inside or around them.
    pub split_sent: AtomicU64,
    /// Heartbeats sent, on the timer, around answers and inside them.
    pub heartbeats_sent: AtomicU64,
    /// The gateway closed the connection.
    pub closed_by_gateway: AtomicBool,
}

/// A running simulated DTU; aborted on drop.
pub struct SimDtu {
    pub state: Arc<DtuState>,
    task: JoinHandle<()>,
}

impl Drop for SimDtu {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SimDtu {
    /// Dials in and serves until dropped or the gateway hangs up.
    pub async fn start(opts: DtuOptions) -> SimDtu {
        let mut gw = TcpStream::connect(opts.gateway).await.expect("DTU dials the gateway");
        let _ = gw.set_nodelay(true);
        gw.write_all(&opts.registration).await.expect("registration sent");
        let state = Arc::new(DtuState::default());
        let task = tokio::spawn(run(gw, opts, state.clone()));
        SimDtu { state, task }
    }

    pub fn requests(&self) -> u64 {
        self.state.requests.load(Ordering::Relaxed)
    }

    pub fn heartbeats_sent(&self) -> u64 {
        self.state.heartbeats_sent.load(Ordering::Relaxed)
    }

    pub fn split_sent(&self) -> u64 {
        self.state.split_sent.load(Ordering::Relaxed)
    }

    pub fn closed_by_gateway(&self) -> bool {
        self.state.closed_by_gateway.load(Ordering::Relaxed)
    }

    pub fn set_silent(&self, on: bool) {
        self.state.silent.store(on, Ordering::Relaxed);
    }

    /// The next answer from `unit` is held back and sent before an answer to another unit.
    pub fn delay_next_answer_of(&self, unit: u8) {
        self.state.late_unit.store(u64::from(unit) + 1, Ordering::Relaxed);
    }
}

async fn run(mut gw: TcpStream, opts: DtuOptions, state: Arc<DtuState>) {
    let req_len = match opts.framing {
        Framing::Rtu => 8,
        Framing::Tcp => 12,
    };
    let mut servers: HashMap<u8, TcpStream> = HashMap::new();
    let mut hb = tokio::time::interval(opts.heartbeat_every);
    hb.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 512];
    // A held-back answer and the unit it came from.
    let mut held: Option<(u8, Vec<u8>)> = None;
    loop {
        tokio::select! {
            _ = hb.tick() => {
                if !state.silent.load(Ordering::Relaxed) && !opts.heartbeat.is_empty() {
                    if gw.write_all(&opts.heartbeat).await.is_err() {
                        break;
                    }
                    state.heartbeats_sent.fetch_add(1, Ordering::Relaxed);
                }
            }
            r = gw.read(&mut chunk) => {
                let n = match r { Ok(0) | Err(_) => { state.closed_by_gateway.store(true, Ordering::Relaxed); return; } Ok(n) => n };
                buf.extend_from_slice(&chunk[..n]);
                while buf.len() >= req_len {
                    let req: Vec<u8> = buf.drain(..req_len).collect();
                    state.requests.fetch_add(1, Ordering::Relaxed);
                    if state.silent.load(Ordering::Relaxed) {
                        continue;
                    }
                    let unit = if opts.framing == Framing::Rtu { req[0] } else { req[6] };
                    let Some(answer) = forward(&mut servers, &opts, unit, &req).await else { continue };
                    let late = state.late_unit.load(Ordering::Relaxed);
                    if late == u64::from(unit) + 1 {
                        state.late_unit.store(0, Ordering::Relaxed);
                        held = Some((unit, answer));
                        continue;
                    }
                    let mut out = Vec::new();
                    if let Some((_, h)) = held.take_if(|(u, _)| *u != unit) {
                        out.extend(&h);
                        state.late_sent.fetch_add(1, Ordering::Relaxed);
                    }
                    if opts.split_answers && !opts.heartbeat.is_empty() {
                        let n = state.split_sent.fetch_add(1, Ordering::Relaxed);
                        let (segments, heartbeats) = split_with_heartbeat(&answer, &opts.heartbeat, n);
                        state.heartbeats_sent.fetch_add(heartbeats, Ordering::Relaxed);
                        if write_segments(&mut gw, out, segments).await.is_err() {
                            return;
                        }
                        continue;
                    }
                    if opts.heartbeat_around_answers {
                        out.extend(&opts.heartbeat);
                        state.heartbeats_sent.fetch_add(1, Ordering::Relaxed);
                    }
                    out.extend(&answer);
                    if opts.heartbeat_around_answers {
                        out.extend(&opts.heartbeat);
                        state.heartbeats_sent.fetch_add(1, Ordering::Relaxed);
                    }
                    if gw.write_all(&out).await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}

/// Pause between the packets of a split answer. Each piece is written and flushed on a
/// `TCP_NODELAY` socket, so it leaves as a TCP segment of its own; the pause lets the
/// gateway's reader take it alone, so the gateway really sees half an answer, then a
/// heartbeat, then the rest. Nothing depends on the exact cut the reader sees (the gateway's
/// framer is unit-tested on every cut); this only makes the split states happen end to end.
const SEGMENT_GAP: Duration = Duration::from_millis(15);

/// The packets for answer number `n` with heartbeat `hb`, and how many heartbeats they hold.
/// The answer is cut at a point that moves one byte further with each answer (so every
/// position inside the frame, header and CRC included, comes up), and the heartbeat lands,
/// in turn, (0) whole between the two halves, (1) split itself across the two halves, or
/// (2) split across packets right before the first half and again right after the second.
///
/// Where the first half and the heartbeat (or its first half) already make as many bytes as
/// the whole answer, the heartbeat goes out glued to the second half instead. Split there,
/// the bytes before the pause read as a whole answer with heartbeat bytes for its last
/// data (a Modbus TCP answer has no checksum to say otherwise); should the pause outlast
/// the gateway's wait for a split answer's rest (a loaded machine stalls a 15 ms sleep past
/// it), that reading is taken and the rest counted as garbled, which is right for a DTU
/// that really sent those bytes and then paused. The framer's unit tests cover those cuts
/// with the timing out of the picture.
pub fn split_with_heartbeat(answer: &[u8], hb: &[u8], n: u64) -> (Vec<Vec<u8>>, u64) {
    let k = 1 + (n / 3) as usize % (answer.len() - 1);
    let (x, y) = answer.split_at(k);
    let (h1, h2) = hb.split_at(hb.len().div_ceil(2));
    match n % 3 {
        0 if k + hb.len() >= answer.len() => (vec![x.to_vec(), [hb, y].concat()], 1),
        0 => (vec![x.to_vec(), hb.to_vec(), y.to_vec()], 1),
        1 if k + h1.len() >= answer.len() => (vec![x.to_vec(), [hb, y].concat()], 1),
        1 => (vec![[x, h1].concat(), [h2, y].concat()], 1),
        _ => (vec![h1.to_vec(), [h2, x].concat(), [y, h1].concat(), h2.to_vec()], 2),
    }
}

/// Writes `first` (late answers due) with the first segment, then each segment on its own.
async fn write_segments(gw: &mut TcpStream, first: Vec<u8>, segments: Vec<Vec<u8>>) -> std::io::Result<()> {
    for (i, seg) in segments.into_iter().enumerate() {
        if i == 0 {
            gw.write_all(&[first.as_slice(), &seg].concat()).await?;
        } else {
            tokio::time::sleep(SEGMENT_GAP).await;
            gw.write_all(&seg).await?;
        }
        gw.flush().await?;
    }
    Ok(())
}

/// Sends `req` to the server of `unit`; its answer, or `None` if it has none.
async fn forward(servers: &mut HashMap<u8, TcpStream>, opts: &DtuOptions, unit: u8, req: &[u8]) -> Option<Vec<u8>> {
    let addr = *opts.upstream.get(&unit)?;
    if let std::collections::hash_map::Entry::Vacant(e) = servers.entry(unit) {
        let s = TcpStream::connect(addr).await.ok()?;
        let _ = s.set_nodelay(true);
        e.insert(s);
    }
    let s = servers.get_mut(&unit)?;
    let got = tokio::time::timeout(Duration::from_secs(2), exchange(s, opts.framing, req)).await;
    match got {
        Ok(Ok(a)) => Some(a),
        _ => {
            servers.remove(&unit);
            None
        }
    }
}

async fn exchange(s: &mut TcpStream, framing: Framing, req: &[u8]) -> std::io::Result<Vec<u8>> {
    s.write_all(req).await?;
    match framing {
        Framing::Rtu => {
            let mut head = [0u8; 3];
            s.read_exact(&mut head).await?;
            let rest = if head[1] & 0x80 != 0 {
                2
            } else {
                usize::from(head[2]) + 2
            };
            let mut f = head.to_vec();
            f.resize(3 + rest, 0);
            s.read_exact(&mut f[3..]).await?;
            Ok(f)
        }
        Framing::Tcp => {
            let mut head = [0u8; 7];
            s.read_exact(&mut head).await?;
            let len = usize::from(u16::from_be_bytes([head[4], head[5]]));
            let mut f = head.to_vec();
            f.resize(6 + len.max(1), 0);
            s.read_exact(&mut f[7..]).await?;
            Ok(f)
        }
    }
}

/// CRC-16/MODBUS.
pub fn crc16(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0xFFFF;
    for &b in bytes {
        crc ^= u16::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xA001 } else { crc >> 1 };
        }
    }
    crc
}

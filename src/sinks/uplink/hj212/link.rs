//! The TCP link to the centre: the field unit connects, sends data messages and waits for
//! each one's 9014, while on the same connection it answers the centre's requests.
//!
//! Design: one task owns the connection ([`run`]): it connects (backing off with jitter up
//! to a cap), hands a writer channel to whoever sends, reads frames and dispatches them: a
//! 9014 wakes the delivery waiting for that `QN`, a request is served on its own task so a
//! long history answer never holds up acknowledgements. Writes go through one writer task,
//! a message's frames in one piece. [`Hj212Transport::deliver`] sends a payload, waits up to
//! the acknowledgement timeout and resends up to the retry count (HJ 212-2017 6.4: timeout
//! and retries); it reports success only on the 9014. When the connection drops, every
//! waiting delivery fails at once and the outbox keeps its payloads.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::centre::{CentreServices, Frames};
use super::command::{self, Incoming, QnRtn};
use super::encode::{ATTR_ACK, ATTR_QN};
use super::frame::Deframer;
use super::segment::Segment;
use crate::sinks::uplink::{BoxFuture, Payload, Transport, TransportError};
use crate::telemetry::uplink::hj212::{RequestLabel, UplinkLabel, UplinkResult};

/// How the link connects, waits and retries.
#[derive(Debug, Clone)]
pub struct LinkOptions {
    /// The centre's `host:port`.
    pub addr: String,
    /// Longest wait for a TCP connection.
    pub connect_timeout: Duration,
    /// How long a data message waits for its 9014 before it is sent again.
    pub ack_timeout: Duration,
    /// How many times a message is sent again before the attempt fails.
    pub retries: u32,
    /// First wait before reconnecting.
    pub backoff_min: Duration,
    /// Longest wait before reconnecting.
    pub backoff_max: Duration,
}

/// A write and, for data messages, word of its outcome.
#[derive(Debug)]
struct Outgoing {
    bytes: Frames,
    done: Option<oneshot::Sender<std::io::Result<()>>>,
}

#[derive(Debug, Default)]
struct Waiters {
    /// `QN` -> the delivery waiting for its 9014. A std mutex: never held across an await.
    map: Mutex<HashMap<String, oneshot::Sender<()>>>,
}

impl Waiters {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, oneshot::Sender<()>>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// State shared by the link task and the transport handle.
#[derive(Debug)]
struct Shared {
    writer: watch::Sender<Option<mpsc::Sender<Outgoing>>>,
    waiters: Waiters,
}

/// The uplink's transport: delivers payloads over the link and reports the 9014.
#[derive(Debug)]
pub struct Hj212Transport {
    shared: Arc<Shared>,
    opts: LinkOptions,
    services: Arc<CentreServices>,
}

/// Starts the link task; it runs until `cancel` fires. The returned transport delivers
/// over it.
pub fn spawn(opts: LinkOptions, services: CentreServices, cancel: CancellationToken) -> Hj212Transport {
    let shared = Arc::new(Shared {
        writer: watch::Sender::new(None),
        waiters: Waiters::default(),
    });
    let services = Arc::new(services);
    tokio::spawn(run(opts.clone(), shared.clone(), services.clone(), cancel));
    Hj212Transport { shared, opts, services }
}

/// Removes the waiter of a delivery however it ends.
struct WaiterGuard<'a> {
    waiters: &'a Waiters,
    qn: &'a str,
}

impl Drop for WaiterGuard<'_> {
    fn drop(&mut self) {
        self.waiters.lock().remove(self.qn);
    }
}

impl Hj212Transport {
    async fn writer(&self) -> Result<mpsc::Sender<Outgoing>, TransportError> {
        let mut rx = self.shared.writer.subscribe();
        let wait = rx.wait_for(Option::is_some);
        match tokio::time::timeout(self.opts.connect_timeout, wait).await {
            Ok(Ok(w)) => w
                .clone()
                .ok_or_else(|| TransportError::Unreachable("not connected".into())),
            _ => Err(TransportError::Unreachable(format!(
                "not connected to {}",
                self.opts.addr
            ))),
        }
    }

    async fn send(&self, payload: &Payload) -> Result<(), TransportError> {
        let qn = payload
            .attr(ATTR_QN)
            .ok_or_else(|| TransportError::Rejected("payload has no HJ 212 QN".into()))?;
        let ack = payload.attr(ATTR_ACK) == Some("1");
        let label = UplinkLabel {
            uplink: self.services.uplink.clone(),
        };
        for attempt in 0..=self.opts.retries {
            if attempt > 0 {
                self.services.metrics.resent.get_or_create(&label).inc();
                debug!(uplink = %label.uplink, qn, attempt, "No 9014 in time; sending again");
            }
            let writer = self.writer().await?;
            let (ack_tx, ack_rx) = oneshot::channel();
            let _guard = WaiterGuard {
                waiters: &self.shared.waiters,
                qn,
            };
            if ack {
                self.shared.waiters.lock().insert(qn.to_string(), ack_tx);
            }
            let (done_tx, done_rx) = oneshot::channel();
            let out = Outgoing {
                bytes: payload.body.clone(),
                done: Some(done_tx),
            };
            let lost = || TransportError::Unreachable("connection closed".into());
            writer.send(out).await.map_err(|_| lost())?;
            done_rx
                .await
                .map_err(|_| lost())?
                .map_err(|e| TransportError::Unreachable(e.to_string()))?;
            if !ack {
                return Ok(());
            }
            match tokio::time::timeout(self.opts.ack_timeout, ack_rx).await {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(_)) => return Err(lost()),
                Err(_) => continue,
            }
        }
        Err(TransportError::NotAcknowledged(format!(
            "no 9014 for QN {qn} after {} sends",
            self.opts.retries + 1
        )))
    }
}

impl Transport for Hj212Transport {
    fn deliver<'a>(&'a mut self, payload: &'a Payload) -> BoxFuture<'a, Result<(), TransportError>> {
        Box::pin(self.send(payload))
    }
}

fn backoff(current: Duration, opts: &LinkOptions) -> Duration {
    let next = (current * 2).clamp(opts.backoff_min, opts.backoff_max);
    let jitter = rand::rng().random_range(0.8..1.2);
    next.mul_f64(jitter).min(opts.backoff_max)
}

async fn run(opts: LinkOptions, shared: Arc<Shared>, services: Arc<CentreServices>, cancel: CancellationToken) {
    let uplink = services.uplink.clone();
    let result = |result| UplinkResult {
        uplink: uplink.clone(),
        result,
    };
    let connected = services
        .metrics
        .connected
        .get_or_create(&UplinkLabel { uplink: uplink.clone() })
        .clone();
    let mut wait = Duration::ZERO;
    loop {
        if !wait.is_zero() {
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
        }
        let attempt = tokio::time::timeout(opts.connect_timeout, TcpStream::connect(&opts.addr));
        let stream = tokio::select! {
            () = cancel.cancelled() => return,
            r = attempt => r,
        };
        let stream = match stream {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                services.metrics.connects.get_or_create(&result("error")).inc();
                wait = backoff(wait, &opts);
                debug!(uplink = %uplink, addr = %opts.addr, error = %e, retry_in = ?wait, "Centre unreachable");
                continue;
            }
            Err(_) => {
                services.metrics.connects.get_or_create(&result("timeout")).inc();
                wait = backoff(wait, &opts);
                continue;
            }
        };
        services.metrics.connects.get_or_create(&result("ok")).inc();
        connected.set(1);
        info!(uplink = %uplink, addr = %opts.addr, "Connected to the HJ 212 centre");
        let _ = stream.set_nodelay(true);
        let reason = serve_connection(stream, &shared, &services, &cancel).await;
        shared.writer.send_replace(None);
        // Deliveries waiting for a 9014 learn at once that the link is gone.
        shared.waiters.lock().clear();
        connected.set(0);
        if cancel.is_cancelled() {
            return;
        }
        warn!(uplink = %uplink, addr = %opts.addr, reason = %reason, "Lost the HJ 212 centre; reconnecting");
        wait = backoff(Duration::ZERO, &opts);
    }
}

/// Runs one connection until it breaks; returns why.
async fn serve_connection(
    stream: TcpStream,
    shared: &Shared,
    services: &Arc<CentreServices>,
    cancel: &CancellationToken,
) -> String {
    let (mut rd, mut wr) = stream.into_split();
    let (tx, mut rx) = mpsc::channel::<Outgoing>(64);
    let writer = tokio::spawn(async move {
        while let Some(out) = rx.recv().await {
            let r = async {
                wr.write_all(&out.bytes).await?;
                wr.flush().await
            }
            .await;
            let failed = r.as_ref().err().map(ToString::to_string);
            if let Some(done) = out.done {
                let _ = done.send(r);
            }
            if let Some(e) = failed {
                return e;
            }
        }
        "closed".to_string()
    });
    shared.writer.send_replace(Some(tx.clone()));
    let mut deframer = Deframer::new();
    let mut buf = vec![0u8; 4096];
    let mut writer = std::pin::pin!(writer);
    let reason = loop {
        let n = tokio::select! {
            () = cancel.cancelled() => break "shutting down".to_string(),
            r = &mut writer => break format!("write failed: {}", r.unwrap_or_else(|e| e.to_string())),
            r = rd.read(&mut buf) => r,
        };
        match n {
            Ok(0) => break "centre closed the connection".to_string(),
            Ok(n) => deframer.push(&buf[..n]),
            Err(e) => break format!("read failed: {e}"),
        }
        while let Some(seg) = deframer.next_segment() {
            dispatch(seg, shared, services, &tx);
        }
    };
    writer.abort();
    reason
}

fn dispatch(
    seg: Result<String, super::frame::FrameError>,
    shared: &Shared,
    services: &Arc<CentreServices>,
    tx: &mpsc::Sender<Outgoing>,
) {
    let uplink = &services.uplink;
    let bad = |kind: &'static str| {
        services
            .metrics
            .bad_frames
            .get_or_create(&UplinkResult {
                uplink: uplink.clone(),
                result: kind,
            })
            .inc();
    };
    let text = match seg {
        Ok(t) => t,
        Err(e) => {
            bad(e.kind());
            warn!(uplink = %uplink, error = %e, "Bad frame from the centre");
            return;
        }
    };
    let seg = match Segment::parse(&text) {
        Ok(s) => s,
        Err(e) => {
            bad("bad_segment");
            warn!(uplink = %uplink, error = %e, "Unreadable data segment from the centre");
            return;
        }
    };
    match command::classify(&seg, services.encoder.settings()) {
        Incoming::Ack(qn) => {
            if let Some(waiter) = shared.waiters.lock().remove(&qn) {
                let _ = waiter.send(());
            } else {
                debug!(uplink = %uplink, qn = %qn, "9014 for no message in flight");
            }
        }
        Incoming::Ignore => debug!(uplink = %uplink, cn = %seg.cn, "Centre answer needs no reply"),
        Incoming::Refuse { qn, code, reason } => {
            count_request(services, &seg.cn, refusal_name(code));
            warn!(uplink = %uplink, cn = %seg.cn, qn = %qn, reason = %reason, "Refused a centre request");
            let _ = tx.try_send(Outgoing {
                bytes: services.refusal(&qn, code),
                done: None,
            });
        }
        Incoming::Request { qn, request } => {
            count_request(services, &seg.cn, "accepted");
            debug!(uplink = %uplink, cn = %seg.cn, qn = %qn, "Centre request");
            let services = services.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                for bytes in services.serve(&qn, request).await {
                    // Wait for each write: a long history answer goes at the socket's pace.
                    let (done, written) = oneshot::channel();
                    if tx
                        .send(Outgoing {
                            bytes,
                            done: Some(done),
                        })
                        .await
                        .is_err()
                    {
                        return;
                    }
                    if !matches!(written.await, Ok(Ok(()))) {
                        return;
                    }
                }
            });
        }
    }
}

fn refusal_name(code: QnRtn) -> &'static str {
    match code {
        QnRtn::Ready => "accepted",
        QnRtn::Refused => "refused",
        QnRtn::BadPassword => "bad_password",
        QnRtn::BadMn => "bad_mn",
        QnRtn::BadFlag => "bad_flag",
        QnRtn::BadQn => "bad_qn",
        QnRtn::BadCn => "bad_cn",
    }
}

fn count_request(services: &CentreServices, cn: &str, result: &'static str) {
    const KNOWN: [&str; 10] = [
        "1011", "1012", "1061", "1062", "1063", "1064", "2011", "2051", "2061", "2031",
    ];
    let command = KNOWN.iter().copied().find(|k| *k == cn).unwrap_or("other");
    services
        .metrics
        .requests
        .get_or_create(&RequestLabel {
            uplink: services.uplink.clone(),
            command,
            result,
        })
        .inc();
}

//! Replication over the pair link: the active streams its journal rows, delay timers,
//! delivery state and durable queues to the standby, which stores them in its own data
//! directory.
//!
//! Design: the active reads its own files (journal rows after the standby's last, the timer
//! table, the delivery-state files, what its queues appended, `super::queues`) every
//! [`POLL`], so replication never waits on or slows the
//! rules engine's commits. Every [`BEAT_EVERY`] it sends a beat; the standby answers each with
//! what it has stored. The answer proves to the active that the standby still sees it as
//! active, which keeps its fence open while the witness is out of reach, and tells how far
//! behind the standby is. A switch-over is a start from these files: the restore path every
//! restart uses (alarms, acknowledgements, shelving, timers, delivery positions).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use base64::Engine;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::Shared;
use super::link::{Conn, LinkError, Msg, Reader};
use super::queues;
use super::spec::FENCE;
use crate::model::pair::{FieldReach, PairRole};
use crate::sinks::backup;
use crate::sinks::journal::AlarmJournal;
use crate::sinks::journal::replica::{self, ReplicaRow};

/// How often the active looks for new journal rows, timers and delivery state.
const POLL: Duration = Duration::from_millis(50);
/// How often the active sends a beat.
const BEAT_EVERY: Duration = Duration::from_millis(250);
/// How often delivery-state files are looked at (size and modification time; read only when
/// they changed): a delivery confirmed just before a switch-over is repeated only if its
/// cursor had not reached the standby yet.
const FILES_EVERY: Duration = POLL;
/// A link that carried nothing for this long is dead.
const SILENCE: Duration = Duration::from_millis(1_500);
/// Journal rows per frame.
const PAGE: usize = 500;
/// Handshake deadline.
const HANDSHAKE: Duration = Duration::from_secs(5);

fn journal_path(data_dir: &Path) -> PathBuf {
    data_dir.join(backup::JOURNAL_FILE)
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    tokio::task::spawn_blocking(f).await.ok()
}

/// Accepts the peer on the pair link for as long as the process runs. Only an active node
/// streams; a standby answers with its role and closes.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>, data_dir: PathBuf, stop: CancellationToken) {
    let mut warned: Option<Instant> = None;
    loop {
        let (stream, from) = tokio::select! {
            () = stop.cancelled() => return,
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(e) => {
                    warn!(error = %e, "Pair link: accept failed");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            },
        };
        let accept = Conn::accept(stream, &shared.secret, shared.tls.as_ref());
        let conn = match tokio::time::timeout(HANDSHAKE, accept).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => {
                // Bounded: a scanner or a misconfigured peer must not flood the log.
                if warned.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
                    warned = Some(Instant::now());
                    warn!(%from, error = %e, "Pair link: connection refused");
                }
                continue;
            }
            Err(_) => continue,
        };
        let shared = shared.clone();
        let data_dir = data_dir.clone();
        let stop = stop.child_token();
        tokio::spawn(async move {
            match session(conn, &shared, &data_dir, stop).await {
                Ok(()) => {}
                Err(e) => info!(%from, error = %e, "Pair link: session with the standby ended"),
            }
            shared.view.set_peer_up(false);
            shared.view.set_peer_field(None);
            shared.metrics.peer_up.set(0);
        });
    }
}

async fn session(conn: Conn, shared: &Arc<Shared>, data_dir: &Path, stop: CancellationToken) -> Result<(), LinkError> {
    let (mut r, mut w) = conn.into_halves();
    let role = shared.view.role();
    w.send(&Msg::Hello {
        node: shared.view.node.clone(),
        role: role.as_str().to_string(),
        term: shared.view.term(),
        api: shared.advertise_api.clone(),
    })
    .await?;
    if role != PairRole::Active {
        return Ok(());
    }
    let Msg::Resume {
        last_seq,
        last,
        queues: held,
        ..
    } = tokio::time::timeout(HANDSHAKE, r.recv())
        .await
        .map_err(|_| LinkError::Protocol)??
    else {
        return Err(LinkError::Protocol);
    };
    let path = journal_path(data_dir);
    let journal = blocking(move || AlarmJournal::open(&path))
        .await
        .ok_or(LinkError::Protocol)?
        .map_err(|e| LinkError::Io(std::io::Error::other(e.to_string())))?;
    let journal = Arc::new(journal);
    if diverged(&journal, last_seq, last.as_ref()).await {
        warn!(
            standby_last = last_seq,
            "Pair link: the standby's journal is not a copy of ours; it sets its own aside and copies again"
        );
        w.send(&Msg::Diverged).await?;
        return Ok(());
    }
    info!(from_seq = last_seq, "Pair link: standby connected; replicating");
    let mut queue_copy = match held {
        Some(held) => Some(queues::resume_on_link(&mut w, shared, data_dir, held).await?),
        None => {
            warn!("Pair link: the standby's version does not take copies of the durable queues; they are not copied");
            None
        }
    };
    shared.view.set_peer_up(true);
    shared.metrics.peer_up.set(1);
    let (ack_tx, mut acks) = mpsc::channel(64);
    let reader = tokio::spawn(read_acks(r, ack_tx));
    let mut cursor = last_seq;
    let mut timers: Option<Vec<(String, i64)>> = None;
    let mut files: HashMap<String, Sent> = HashMap::new();
    let mut beats: HashMap<u64, Instant> = HashMap::new();
    let mut beat_id = 0u64;
    let mut next_beat = Instant::now();
    let mut next_files = Instant::now();
    let mut confirmed_all = Instant::now();
    let mut applied = last_seq;
    let mut heard = Instant::now();
    let mut stopped_sent = false;
    let result = loop {
        if stop.is_cancelled() || shared.view.role() != PairRole::Active {
            break Ok(());
        }
        let now = Instant::now();
        if now.duration_since(heard) >= SILENCE {
            break Err(LinkError::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the standby stopped answering",
            )));
        }
        // Journal rows first: they are what a switch-over must not lose.
        let j = journal.clone();
        let rows = blocking(move || j.replica_rows(cursor, PAGE))
            .await
            .and_then(Result::ok)
            .unwrap_or_default();
        let full = rows.len() == PAGE;
        if let Some(last) = rows.last() {
            cursor = last.seq;
            w.send(&Msg::Rows { rows }).await?;
        }
        let j = journal.clone();
        if let Some(Ok(now_timers)) = blocking(move || j.replica_timers()).await
            && timers.as_ref() != Some(&now_timers)
        {
            w.send(&Msg::Timers {
                timers: now_timers.clone(),
            })
            .await?;
            timers = Some(now_timers);
        }
        if now >= next_files {
            next_files = now + FILES_EVERY;
            for (path, data) in changed_files(data_dir, &mut files).await {
                w.send(&Msg::File {
                    path,
                    data: base64::engine::general_purpose::STANDARD.encode(&data),
                })
                .await?;
            }
        }
        let queue_more = match queue_copy.as_mut() {
            Some(copy) => queues::send_on_link(&mut w, shared, data_dir, copy).await?,
            None => false,
        };
        if now >= next_beat {
            next_beat = now + BEAT_EVERY;
            beat_id += 1;
            beats.insert(beat_id, now);
            beats.retain(|_, t| now.duration_since(*t) < SILENCE * 2);
            w.send(&Msg::Beat {
                id: beat_id,
                head: cursor,
                probe: shared.wants_peer_field(),
            })
            .await?;
        }
        while let Ok(ack) = acks.try_recv() {
            let (id, a, field) = match ack {
                Ok(x) => x,
                Err(e) => {
                    reader.abort();
                    return Err(e);
                }
            };
            heard = Instant::now();
            applied = a;
            shared.view.set_peer_field(field);
            if let Some(sent) = beats.remove(&id) {
                // The standby still takes us for the active: drive on, counted from the send.
                shared.fence.extend_to(sent + FENCE);
            }
        }
        if applied >= cursor {
            confirmed_all = Instant::now();
        }
        let lag_ms = u64::try_from(confirmed_all.elapsed().as_millis()).unwrap_or(u64::MAX);
        let lag = cursor.saturating_sub(applied);
        shared.view.set_lag(lag, lag_ms);
        shared.metrics.lag_entries.set(i64::try_from(lag).unwrap_or(i64::MAX));
        shared.metrics.lag_ms.set(i64::try_from(lag_ms).unwrap_or(i64::MAX));
        if !stopped_sent && shared.handing_over.load(Ordering::Acquire) {
            // Its sources have stopped: every reading this node evaluates was taken before.
            stopped_sent = true;
            w.send(&Msg::Stopped).await?;
        }
        if !full && !queue_more {
            tokio::select! {
                () = stop.cancelled() => break Ok(()),
                () = shared.sources_ended.notified() => {}
                () = tokio::time::sleep(POLL) => {}
            }
        }
    };
    reader.abort();
    result
}

/// An acknowledged beat: its id, the standby's last journal row, and its field reach.
type Acked = (u64, u64, Option<FieldReach>);

async fn read_acks(mut r: Reader, tx: mpsc::Sender<Result<Acked, LinkError>>) {
    loop {
        let msg = match r.recv().await {
            Ok(Msg::Ack { id, applied, field }) => Ok((id, applied, field)),
            Ok(other) => {
                debug!(?other, "Pair link: unexpected message from the standby");
                continue;
            }
            Err(e) => Err(e),
        };
        let end = msg.is_err();
        if tx.send(msg).await.is_err() || end {
            return;
        }
    }
}

/// Whether the standby's last row is not ours: it journaled on its own (it was active while
/// the pair was apart) or is ahead of us.
async fn diverged(journal: &Arc<AlarmJournal>, last_seq: u64, last: Option<&(i64, String, String)>) -> bool {
    if last_seq == 0 {
        return false;
    }
    let j = journal.clone();
    let head = blocking(move || j.last_seq()).await.and_then(Result::ok).unwrap_or(0);
    if last_seq > head {
        return true;
    }
    let j = journal.clone();
    let ours = blocking(move || j.replica_row(last_seq))
        .await
        .and_then(Result::ok)
        .flatten();
    match (ours, last) {
        (Some(row), Some((ts, id, tr))) => row.fingerprint() != (*ts, id.as_str(), tr.as_str()),
        // Pruned here by retention: older than anything a switch-over restores.
        (None, _) => false,
        (Some(_), None) => true,
    }
}

/// A delivery-state file as last sent: its size and modification time, and a hash of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sent {
    stamp: (u64, Option<std::time::SystemTime>),
    hash: u64,
}

/// Files whose size or modification time moved since they were sent, and whose content
/// changed; `sent` is updated for them.
async fn changed_files(data_dir: &Path, sent: &mut HashMap<String, Sent>) -> Vec<(String, Vec<u8>)> {
    let dir = data_dir.to_path_buf();
    let known = std::mem::take(sent);
    let (known, out) = blocking(move || {
        let mut known = known;
        let Ok(list) = backup::delivery_state_files(&dir) else {
            return (known, Vec::new());
        };
        let mut out = Vec::new();
        for rel in list {
            let path = dir.join(&rel);
            let Ok(meta) = std::fs::metadata(&path) else { continue };
            let stamp = (meta.len(), meta.modified().ok());
            let key = backup::rel_text(&rel);
            if known.get(&key).is_some_and(|s| s.stamp == stamp) {
                continue;
            }
            let Ok(data) = std::fs::read(&path) else { continue };
            let hash = hash(&data);
            let same = known.get(&key).is_some_and(|s| s.hash == hash);
            known.insert(key.clone(), Sent { stamp, hash });
            if !same {
                out.push((key, data));
            }
        }
        (known, out)
    })
    .await
    .unwrap_or_default();
    *sent = known;
    out
}

fn hash(data: &[u8]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    data.hash(&mut h);
    h.finish()
}

/// Follows the active peer while this node is standby: dials it, stores what it streams and
/// answers its beats, reconnecting until `stop`.
pub async fn follow(shared: Arc<Shared>, data_dir: PathBuf, stop: CancellationToken) {
    let mut warned: Option<Instant> = None;
    while !stop.is_cancelled() {
        let outcome = tokio::select! {
            () = stop.cancelled() => return,
            r = follow_once(&shared, &data_dir) => r,
        };
        shared.view.set_peer_up(false);
        shared.metrics.peer_up.set(0);
        if let Err(e) = outcome
            && warned.is_none_or(|t| t.elapsed() >= Duration::from_secs(10))
        {
            warned = Some(Instant::now());
            if e.is_setup_mismatch() {
                warn!(peer = %shared.peer_addr, error = %e, "Pair link: the peer refused or was refused; retrying");
            } else {
                info!(peer = %shared.peer_addr, error = %e, "Pair link: not following the peer; retrying");
            }
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
    }
}

async fn follow_once(shared: &Arc<Shared>, data_dir: &Path) -> Result<(), LinkError> {
    let stream = tokio::time::timeout(HANDSHAKE, TcpStream::connect(&shared.peer_addr))
        .await
        .map_err(|_| LinkError::Io(std::io::ErrorKind::TimedOut.into()))??;
    let conn = tokio::time::timeout(HANDSHAKE, Conn::dial(stream, &shared.secret, shared.tls.as_ref()))
        .await
        .map_err(|_| LinkError::Io(std::io::ErrorKind::TimedOut.into()))??;
    let (mut r, mut w) = conn.into_halves();
    let Msg::Hello { role, term, api, .. } = tokio::time::timeout(HANDSHAKE, r.recv())
        .await
        .map_err(|_| LinkError::Protocol)??
    else {
        return Err(LinkError::Protocol);
    };
    shared.view.set_peer_up(true);
    shared.metrics.peer_up.set(1);
    shared.view.see_term(term);
    if role != PairRole::Active.as_str() {
        // Both standby (starting, or the witness decides): nothing to copy yet.
        tokio::time::sleep(Duration::from_millis(300)).await;
        return Ok(());
    }
    shared.view.set_active_api(Some(api));
    shared.heard_active();
    let path = journal_path(data_dir);
    let opened = blocking(move || AlarmJournal::open(&path))
        .await
        .ok_or(LinkError::Protocol)?;
    let journal = Arc::new(opened.map_err(|e| LinkError::Io(std::io::Error::other(e.to_string())))?);
    let j = journal.clone();
    let last = blocking(move || j.replica_last()).await.and_then(Result::ok).flatten();
    let mut applied = last.as_ref().map_or(0, |r| r.seq);
    let dir = data_dir.to_path_buf();
    let held = blocking(move || queues::held(&dir))
        .await
        .ok_or(LinkError::Protocol)??;
    w.send(&Msg::Resume {
        node: shared.view.node.clone(),
        last_seq: applied,
        last: last.map(|r| (r.ts, r.alarm_id, r.transition)),
        queues: Some(held),
    })
    .await?;
    loop {
        let msg = tokio::time::timeout(SILENCE, r.recv()).await.map_err(|_| {
            LinkError::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the active went silent",
            ))
        })??;
        // Anything from the active is contact: what the standby holds is the active's state
        // as of now (its warm readings count from here).
        shared.heard_active();
        match msg {
            Msg::Beat { id, head, probe } => {
                shared.view.set_field_asked(probe);
                w.send(&Msg::Ack {
                    id,
                    applied,
                    field: shared.view.field(),
                })
                .await?;
                let lag = head.saturating_sub(applied);
                shared.view.set_lag(lag, 0);
                shared.metrics.lag_entries.set(i64::try_from(lag).unwrap_or(i64::MAX));
            }
            Msg::Rows { rows } => {
                let n = rows.len() as u64;
                let last = rows.last().map(|r: &ReplicaRow| r.seq);
                let j = journal.clone();
                blocking(move || j.apply_replica(&rows, None))
                    .await
                    .ok_or(LinkError::Protocol)?
                    .map_err(|e| LinkError::Io(std::io::Error::other(e.to_string())))?;
                shared.metrics.replicated_entries.inc_by(n);
                if let Some(l) = last {
                    applied = l;
                }
            }
            Msg::Timers { timers } => {
                let j = journal.clone();
                blocking(move || j.apply_replica(&[], Some(&timers)))
                    .await
                    .ok_or(LinkError::Protocol)?
                    .map_err(|e| LinkError::Io(std::io::Error::other(e.to_string())))?;
            }
            Msg::File { path, data } => store_file(data_dir, &path, &data)?,
            // Written here, not on a blocking thread: when this node takes over, no write of
            // the follower may still be under way as the gateway opens its queues.
            Msg::QueueBytes { path, offset, data } => {
                let n = queues::store_bytes(data_dir, &path, offset, &data)?;
                shared.metrics.replicated_queue_bytes.inc_by(n);
            }
            Msg::QueueGone { path } => queues::remove(data_dir, &path)?,
            Msg::Stopped => {
                info!("Pair link: the active stopped polling; handing over");
                shared.active_stopped();
            }
            Msg::Diverged => {
                drop(journal);
                let path = journal_path(data_dir);
                let secs = u64::try_from(shared.clock.now().as_nanos() / 1_000_000_000).unwrap_or(0);
                let aside = replica::set_aside(&path, secs)?;
                shared.metrics.diverged_journals.inc();
                warn!(kept = %aside.display(), "Pair link: this node's journal diverged from the active's (it was active while the pair was apart); set aside, copying the active's");
                return Ok(());
            }
            other => debug!(?other, "Pair link: unexpected message from the active"),
        }
    }
}

/// Writes a delivery-state file by rename, as its owner does; refuses any other path.
fn store_file(data_dir: &Path, rel: &str, data: &str) -> Result<(), LinkError> {
    if !backup::is_delivery_state(rel) {
        return Err(LinkError::Message(format!("`{rel}` is not a delivery-state file")));
    }
    replace_file(data_dir, rel, &decode(rel, data)?)
}

/// The Base64 `data` of a frame about file `rel`.
pub(super) fn decode(rel: &str, data: &str) -> Result<Vec<u8>, LinkError> {
    base64::engine::general_purpose::STANDARD
        .decode(data)
        .map_err(|e| LinkError::Message(format!("`{rel}`: {e}")))
}

/// Replaces file `rel` of `data_dir` whole, by rename: a reader sees the old or the new.
pub(super) fn replace_file(data_dir: &Path, rel: &str, bytes: &[u8]) -> Result<(), LinkError> {
    let path = data_dir.join(rel);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let tmp = path.with_extension("pair-tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, &path)?;
    Ok(())
}

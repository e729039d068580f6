//! One task per endpoint: open the session (retrying with backoff), subscribe, turn data
//! changes into reading batches, and mark every point `comm_fault` while the link is down.
//!
//! The library's session event loop runs in a task of its own (requests made here need it
//! polled) and reports connects and losses over a channel. After a loss it reconnects by
//! itself, reactivating the session or opening a new one and transferring or recreating the
//! subscription with the same client handles; the server then resends each item's current
//! value, and [`Delivered`] drops the ones already delivered.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use opcua::client::{DataChangeCallback, IdentityToken, MonitoredItem, Session, SessionPollResult};
use opcua::types::{
    BrowsePath, DataChangeFilter, DataChangeTrigger, DataValue, ExtensionObject, MonitoredItemCreateRequest, NodeId,
    ObjectId, QualifiedName, ReferenceTypeId, RelativePath, RelativePathElement, StatusCode, TimestampsToReturn,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::client::{self, OpcuaError};
use super::config::{Deadband, EndpointSpec, ItemSpec, Target};
use super::convert::{Converted, Delivered};
use super::health::OpcuaHealth;
use crate::clock::SharedClock;
use crate::model::ReadingBatch;
use crate::model::{Quality, Reading};
use crate::telemetry::opcua::OpcuaMetrics;

/// Data changes waiting between the library's callback and this task, at least (more for
/// endpoints whose items queue more); past it they are dropped and counted (`queue_full`).
const DATA_QUEUE: usize = 65_536;
/// Readings per batch handed to the pipeline.
const BATCH: usize = 1024;
/// Notifications per publish response the gateway asks for; a server that honours it sends the
/// rest in further responses. Not every server does (asyncua sends all queued changes at
/// once), so the client's decoding limits are sized for the whole queue anyway
/// ([`client::Limits`]).
const MAX_PER_PUBLISH: u32 = 1000;
/// Monitored items per CreateMonitoredItems request.
const ITEMS_PER_REQUEST: usize = 1000;

/// What the session event loop reports.
#[derive(Debug)]
enum Link {
    Up,
    Lost(StatusCode),
    Failed(StatusCode),
    Ended(StatusCode),
}

/// Everything one endpoint task owns.
#[derive(Debug)]
pub struct EndpointTask {
    /// Index of the endpoint in the config (for health).
    pub index: usize,
    /// The endpoint.
    pub spec: EndpointSpec,
    /// Its monitored items; item `i` has client handle `i + 1`.
    pub items: Vec<ItemSpec>,
    /// Gateway id (application URI of the gateway's certificate).
    pub gateway_id: String,
    /// The gateway's PKI folder.
    pub pki: PathBuf,
    /// Where reading batches go.
    pub tx: mpsc::Sender<ReadingBatch>,
    /// Gateway clock (arrival times).
    pub clock: SharedClock,
    /// Metric handles.
    pub metrics: OpcuaMetrics,
    /// Health board.
    pub health: Arc<OpcuaHealth>,
}

impl EndpointTask {
    /// Response limits for this endpoint's items: all their queued values in one response.
    fn limits(&self) -> client::Limits {
        let queued = self.items.iter().map(|it| it.queue_size as usize).sum();
        client::Limits::for_queued(queued)
    }

    fn fail(&self, e: &OpcuaError) {
        self.metrics
            .errors
            .get_or_create(&OpcuaMetrics::kind(&self.spec.name, e.kind()))
            .inc();
        let text = e.to_string();
        self.health.update(self.index, |h| h.last_error = Some(text));
    }

    async fn send(&self, batch: ReadingBatch) {
        if batch.is_empty() {
            return;
        }
        let n = batch.len() as u64;
        if self.tx.send(batch).await.is_ok() {
            self.metrics
                .readings
                .get_or_create(&OpcuaMetrics::label(&self.spec.name))
                .inc_by(n);
            self.health.update(self.index, |h| h.readings += n);
        }
    }

    /// Marks every point of the endpoint with `quality` now (link down, item refused).
    async fn mark_all(&self, quality: Quality, delivered: &mut Delivered) {
        let now = self.clock.now();
        let batch = self
            .items
            .iter()
            .enumerate()
            .map(|(i, it)| {
                delivered.mark_faulted(i);
                Reading {
                    point: it.point,
                    ts: now,
                    value: f64::NAN,
                    quality,
                }
            })
            .collect();
        self.send(batch).await;
    }

    /// Runs until `cancel` fires.
    pub async fn run(self, cancel: CancellationToken) {
        let label = OpcuaMetrics::label(&self.spec.name);
        let mut delivered = Delivered::new(self.items.len());
        let setup = client::install_trust(&self.spec, &self.pki).and_then(|_| client::identity(&self.spec));
        let identity = match setup {
            Ok(id) => id,
            Err(e) => {
                warn!(endpoint = %self.spec.name, error = %e, "OPC UA endpoint cannot start");
                self.fail(&e);
                self.mark_all(Quality::CommFault, &mut delivered).await;
                return;
            }
        };
        let mut backoff = Duration::from_millis(500);
        let mut marked = false;
        let (session, event_loop) = loop {
            match self.open(identity.clone()).await {
                Ok(pair) => break pair,
                Err(e) => {
                    warn!(endpoint = %self.spec.name, error = %e, retry_in = ?backoff, "OPC UA connect failed");
                    self.fail(&e);
                    if !marked {
                        self.mark_all(Quality::CommFault, &mut delivered).await;
                        marked = true;
                    }
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        _ = tokio::time::sleep(jitter(backoff)) => {}
                    }
                    backoff = (backoff * 2).min(self.spec.reconnect_max);
                }
            }
        };
        // Room for every item's whole queue, as one response may bring it all.
        let queue = DATA_QUEUE.max(self.limits().max_array);
        let (data_tx, mut data_rx) = mpsc::channel::<(u32, DataValue)>(queue);
        let (link_tx, mut link_rx) = mpsc::unbounded_channel();
        let looper = tokio::spawn(async move {
            let stream = event_loop.enter();
            futures::pin_mut!(stream);
            while let Some(ev) = stream.next().await {
                let msg = match ev {
                    Ok(SessionPollResult::Reconnected(_)) => Link::Up,
                    Ok(SessionPollResult::ConnectionLost(code)) => Link::Lost(code),
                    Ok(SessionPollResult::ReconnectFailed(code)) => Link::Failed(code),
                    Ok(_) => continue,
                    Err(code) => {
                        let _ = link_tx.send(Link::Ended(code));
                        return;
                    }
                };
                if link_tx.send(msg).is_err() {
                    return;
                }
            }
        });
        let mut subscribed = false;
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                link = link_rx.recv() => match link {
                    Some(Link::Up) => {
                        info!(endpoint = %self.spec.name, url = %self.spec.url, "OPC UA session open");
                        self.metrics.connected.get_or_create(&label).set(1);
                        self.metrics.sessions.get_or_create(&label).inc();
                        let now = self.clock.now();
                        self.health.update(self.index, |h| {
                            h.connected = true;
                            h.connected_since_ms = Some(now.as_millis());
                            h.sessions += 1;
                        });
                        marked = false;
                        if subscribed {
                            // The library recreated (or transferred) the subscription while
                            // reconnecting, but its publish loop starts idle: without a first
                            // publish request the server never sends anything.
                            session.trigger_publish_now();
                        } else {
                            subscribed = self.subscribe(&session, &data_tx, &mut delivered).await;
                        }
                    }
                    Some(Link::Lost(code)) => {
                        let reason = client::lost_reason(code, self.limits());
                        warn!(endpoint = %self.spec.name, status = %code, reason = %reason, "OPC UA connection lost; reconnecting");
                        self.metrics.connected.get_or_create(&label).set(0);
                        self.metrics.connection_losses.get_or_create(&label).inc();
                        self.health.update(self.index, |h| {
                            h.connected = false;
                            h.connection_losses += 1;
                            h.last_error = Some(reason);
                        });
                        self.mark_all(Quality::CommFault, &mut delivered).await;
                        marked = true;
                    }
                    Some(Link::Failed(code)) => {
                        let e = client::connect_error(&self.spec, &self.pki, code, "cannot open the session");
                        warn!(endpoint = %self.spec.name, error = %e, "OPC UA reconnect failed");
                        self.fail(&e);
                        if !marked {
                            self.mark_all(Quality::CommFault, &mut delivered).await;
                            marked = true;
                        }
                    }
                    ended @ (Some(Link::Ended(_)) | None) => {
                        let code = match ended { Some(Link::Ended(c)) => c, _ => StatusCode::BadConnectionClosed };
                        warn!(endpoint = %self.spec.name, status = %code, "OPC UA session ended");
                        self.metrics.connected.get_or_create(&label).set(0);
                        self.health.update(self.index, |h| h.connected = false);
                        self.mark_all(Quality::CommFault, &mut delivered).await;
                        break;
                    }
                },
                Some(first) = data_rx.recv() => {
                    let mut batch = Vec::with_capacity(64);
                    let mut duplicates = 0u64;
                    let now = self.clock.now();
                    let mut next = Some(first);
                    while let Some((handle, dv)) = next {
                        let idx = handle as usize;
                        if let Some(it) = idx.checked_sub(1).and_then(|i| self.items.get(i)) {
                            match delivered.convert(idx - 1, it.point, it.range, &dv, now) {
                                Converted::Reading(r) => batch.push(r),
                                Converted::Duplicate => duplicates += 1,
                            }
                        }
                        next = if batch.len() < BATCH { data_rx.try_recv().ok() } else { None };
                    }
                    if duplicates > 0 {
                        debug!(endpoint = %self.spec.name, duplicates, "Dropped values already delivered");
                        self.metrics.duplicates.get_or_create(&label).inc_by(duplicates);
                        self.health.update(self.index, |h| h.duplicates += duplicates);
                    }
                    self.health.data(self.index, now);
                    self.send(batch).await;
                }
            }
        }
        self.metrics.connected.get_or_create(&label).set(0);
        session.disable_reconnects();
        let _ = tokio::time::timeout(Duration::from_secs(2), session.disconnect()).await;
        looper.abort();
    }

    async fn open(
        &self,
        identity: IdentityToken,
    ) -> Result<
        (
            Arc<Session>,
            opcua::client::SessionEventLoop<opcua::client::transport::TcpConnector>,
        ),
        OpcuaError,
    > {
        let mut client = client::build_client(
            &self.gateway_id,
            &self.pki,
            self.spec.request_timeout,
            self.spec.reconnect_max,
            self.limits(),
        )?;
        let wanted = client::wanted_endpoint(&self.spec);
        let found = tokio::time::timeout(
            self.spec.request_timeout,
            client.connect_to_matching_endpoint(wanted, identity),
        )
        .await
        .map_err(|_| {
            client::connect_error(
                &self.spec,
                &self.pki,
                StatusCode::BadTimeout,
                "no answer to GetEndpoints",
            )
        })?;
        found.map_err(|e| client::connect_error(&self.spec, &self.pki, e.status(), &e.to_string()))
    }

    /// Creates the subscription and its monitored items; false if the subscription itself
    /// could not be made (tried again at the next connect).
    async fn subscribe(
        &self,
        session: &Arc<Session>,
        data_tx: &mpsc::Sender<(u32, DataValue)>,
        delivered: &mut Delivered,
    ) -> bool {
        let name = self.spec.name.clone();
        let tx = data_tx.clone();
        let dropped = self
            .metrics
            .dropped
            .get_or_create(&OpcuaMetrics::kind(&name, "queue_full"))
            .clone();
        let (clock, endpoint) = (self.clock.clone(), name.clone());
        let (mut held, mut last_log) = (0u64, None::<crate::model::Timestamp>);
        let callback = DataChangeCallback::new(move |dv: DataValue, item: &MonitoredItem| {
            if tx.try_send((item.client_handle(), dv)).is_err() {
                dropped.inc();
                held += 1;
                let now = clock.now();
                if last_log.is_none_or(|t| now.since(t) >= Duration::from_secs(10)) {
                    warn!(endpoint = %endpoint, dropped = held, "OPC UA values lost: the intake queue is full");
                    (held, last_log) = (0, Some(now));
                }
            }
        });
        let interval = self.spec.publishing_interval;
        // Keep-alive every ~10 s and a lifetime of 3 keep-alives, as Part 4 5.13.2 asks.
        let keep_alive = u32::try_from((10_000 / interval.as_millis().max(1)).max(1)).unwrap_or(10);
        let sub = session
            .create_subscription(interval, keep_alive * 3, keep_alive, MAX_PER_PUBLISH, 0, true, callback)
            .await;
        let sub = match sub {
            Ok(id) => id,
            Err(e) => {
                let err = OpcuaError::Connect {
                    endpoint: name.clone(),
                    message: format!("cannot create the subscription: {e}"),
                    kind: "subscription",
                };
                warn!(endpoint = %name, error = %err, "OPC UA subscription failed");
                self.fail(&err);
                return false;
            }
        };
        let mut requests = Vec::with_capacity(self.items.len());
        let mut refused = Vec::new();
        let targets = self.resolve(session).await;
        for (i, (it, target)) in self.items.iter().zip(targets).enumerate() {
            match target {
                Ok(node) => requests.push(item_request(node, i, it)),
                Err(code) => refused.push((i, code, "browse_path")),
            }
        }
        let mut ok = 0usize;
        let mut idx = requests
            .iter()
            .map(|r| r.requested_parameters.client_handle as usize - 1)
            .collect::<Vec<_>>();
        for chunk in requests.chunks(ITEMS_PER_REQUEST) {
            let handles: Vec<usize> = idx.drain(..chunk.len()).collect();
            match session
                .create_monitored_items(sub, TimestampsToReturn::Both, chunk.to_vec())
                .await
            {
                Ok(results) => {
                    for (h, r) in handles.iter().zip(results) {
                        if r.result.status_code.is_good() {
                            ok += 1;
                        } else {
                            refused.push((*h, r.result.status_code, "monitored_item"));
                        }
                    }
                }
                Err(e) => {
                    for h in handles {
                        refused.push((h, e.status(), "monitored_item"));
                    }
                }
            }
        }
        self.metrics
            .monitored_items
            .get_or_create(&OpcuaMetrics::label(&name))
            .set(ok as i64);
        self.health.update(self.index, |h| h.items_ok = ok);
        let now = self.clock.now();
        let mut batch = Vec::new();
        for (i, code, kind) in refused {
            let it = &self.items[i];
            warn!(endpoint = %name, point = %it.point_name, target = %it.target, status = %code, "OPC UA server refused the item");
            self.metrics
                .errors
                .get_or_create(&OpcuaMetrics::kind(&name, kind))
                .inc();
            delivered.mark_faulted(i);
            let quality = match super::convert::quality_of(code) {
                Quality::CommFault => Quality::CommFault,
                _ => Quality::DecodeError,
            };
            batch.push(Reading {
                point: it.point,
                ts: now,
                value: f64::NAN,
                quality,
            });
        }
        self.send(batch).await;
        info!(endpoint = %name, items = self.items.len(), accepted = ok, "OPC UA subscription made");
        true
    }

    /// Node ids of every item, resolving browse paths on the server.
    async fn resolve(&self, session: &Session) -> Vec<Result<NodeId, StatusCode>> {
        let mut out: Vec<Result<NodeId, StatusCode>> = self
            .items
            .iter()
            .map(|it| match &it.target {
                Target::Node(n) => Ok(n.clone()),
                Target::Path(_) => Err(StatusCode::BadNoMatch),
            })
            .collect();
        let paths: Vec<(usize, BrowsePath)> = self
            .items
            .iter()
            .enumerate()
            .filter_map(|(i, it)| match &it.target {
                Target::Path(levels) => Some((i, browse_path(levels))),
                Target::Node(_) => None,
            })
            .collect();
        for chunk in paths.chunks(ITEMS_PER_REQUEST) {
            let request: Vec<BrowsePath> = chunk.iter().map(|(_, p)| p.clone()).collect();
            match session.translate_browse_paths_to_node_ids(&request).await {
                Ok(results) => {
                    for ((i, _), r) in chunk.iter().zip(results) {
                        let target = r.targets.as_ref().and_then(|t| t.first());
                        out[*i] = match target {
                            Some(t) if r.status_code.is_good() => Ok(t.target_id.node_id.clone()),
                            _ => Err(if r.status_code.is_good() {
                                StatusCode::BadNoMatch
                            } else {
                                r.status_code
                            }),
                        };
                    }
                }
                Err(e) => {
                    for (i, _) in chunk {
                        out[*i] = Err(e.status());
                    }
                }
            }
        }
        out
    }
}

fn browse_path(levels: &[(u16, String)]) -> BrowsePath {
    BrowsePath {
        starting_node: ObjectId::ObjectsFolder.into(),
        relative_path: RelativePath {
            elements: Some(
                levels
                    .iter()
                    .map(|(ns, name)| RelativePathElement {
                        reference_type_id: ReferenceTypeId::HierarchicalReferences.into(),
                        is_inverse: false,
                        include_subtypes: true,
                        target_name: QualifiedName::new(*ns, name.as_str()),
                    })
                    .collect(),
            ),
        },
    }
}

/// OPC UA Part 4, 7.22.2 DeadbandType: 1 absolute, 2 percent (of EURange).
fn deadband_filter(d: Deadband) -> ExtensionObject {
    let (kind, value) = match d {
        Deadband::Absolute(v) => (1, v),
        Deadband::Percent(v) => (2, v),
    };
    ExtensionObject::from_message(DataChangeFilter {
        trigger: DataChangeTrigger::StatusValue,
        deadband_type: kind,
        deadband_value: value,
    })
}

fn item_request(node: NodeId, i: usize, it: &ItemSpec) -> MonitoredItemCreateRequest {
    let mut req: MonitoredItemCreateRequest = node.into();
    req.requested_parameters.client_handle = u32::try_from(i + 1).unwrap_or(u32::MAX);
    req.requested_parameters.sampling_interval = it.sampling_interval.as_secs_f64() * 1000.0;
    req.requested_parameters.queue_size = it.queue_size;
    req.requested_parameters.discard_oldest = true;
    if let Some(d) = it.deadband {
        req.requested_parameters.filter = deadband_filter(d);
    }
    req
}

/// `d` plus up to a quarter more, so many gateways do not reconnect in step.
fn jitter(d: Duration) -> Duration {
    d + d.mul_f64(rand::random::<f64>() * 0.25)
}

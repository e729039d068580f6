//! `hazard-gateway opcua browse ENDPOINT`: the address space below a node, for the instrument
//! engineer who writes `[[opcua.points]]` entries. Lists node id, browse name, node class and,
//! for variables, data type and current value.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use opcua::client::{IdentityToken, Session};
use opcua::types::{
    AttributeId, BrowseDescription, BrowseDirection, BrowseResultMask, DataValue, NodeClass, NodeId, ReadValueId,
    ReferenceTypeId, TimestampsToReturn, Variant,
};

use super::client::{self, OpcuaError};
use super::config::EndpointSpec;

/// One node found.
#[derive(Debug, Clone, PartialEq)]
pub struct BrowseLine {
    /// Levels below the start node (1 = a direct child).
    pub depth: usize,
    /// Node id as written in `node = "..."`.
    pub node_id: String,
    /// Browse name as `ns:Name` (as written in `browse_path`).
    pub browse_name: String,
    /// Node class (`Object`, `Variable`, ...).
    pub class: String,
    /// Data type of a variable (built-in name or node id).
    pub data_type: Option<String>,
    /// Current value of a variable, or its bad status.
    pub value: Option<String>,
}

/// Name of a built-in data type (OPC UA Part 6, 5.1.2, ids 1..=15), else the node id.
fn type_name(id: &NodeId) -> String {
    const BUILTIN: [&str; 15] = [
        "Boolean",
        "SByte",
        "Byte",
        "Int16",
        "UInt16",
        "Int32",
        "UInt32",
        "Int64",
        "UInt64",
        "Float",
        "Double",
        "String",
        "DateTime",
        "Guid",
        "ByteString",
    ];
    if id.namespace == 0
        && let opcua::types::Identifier::Numeric(n) = id.identifier
        && (1..=15).contains(&n)
    {
        return BUILTIN[n as usize - 1].to_string();
    }
    id.to_string()
}

fn value_text(dv: &DataValue) -> String {
    match (&dv.value, dv.status) {
        (_, Some(s)) if !s.is_good() && !s.is_uncertain() => format!("({s})"),
        (Some(Variant::Empty) | None, _) => "(empty)".into(),
        (Some(v), Some(s)) if s.is_uncertain() => format!("{v} ({s})"),
        (Some(v), _) => v.to_string(),
    }
}

/// Opens a session (retrying for up to `spec.request_timeout`), runs `f`, closes it.
async fn with_session<T>(
    spec: &EndpointSpec,
    gateway_id: &str,
    data_dir: &Path,
    identity: IdentityToken,
    f: impl AsyncFnOnce(&Arc<Session>) -> Result<T, OpcuaError>,
) -> Result<T, OpcuaError> {
    let pki = client::pki_dir(data_dir);
    client::install_trust(spec, &pki)?;
    let mut c = client::build_client(
        gateway_id,
        &pki,
        spec.request_timeout,
        spec.reconnect_max,
        client::Limits::for_queued(0),
    )?;
    let (session, event_loop) = tokio::time::timeout(
        spec.request_timeout,
        c.connect_to_matching_endpoint(client::wanted_endpoint(spec), identity),
    )
    .await
    .map_err(|_| client::connect_error(spec, &pki, opcua::types::StatusCode::BadTimeout, "no answer"))?
    .map_err(|e| client::connect_error(spec, &pki, e.status(), &e.to_string()))?;
    session.disable_reconnects();
    let mut stream = Box::pin(event_loop.enter());
    let (tx, rx) = tokio::sync::oneshot::channel();
    let looper = tokio::spawn(async move {
        let mut tx = Some(tx);
        while let Some(ev) = stream.next().await {
            match ev {
                Ok(opcua::client::SessionPollResult::Reconnected(_)) => {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(Ok(()));
                    }
                }
                Ok(opcua::client::SessionPollResult::ReconnectFailed(code)) | Err(code) => {
                    // A one-off command reports the first refusal instead of retrying.
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(Err(code));
                    }
                    return;
                }
                Ok(_) => {}
            }
        }
    });
    let opened = tokio::time::timeout(spec.request_timeout, rx).await;
    let result = match opened {
        Ok(Ok(Ok(()))) => f(&session).await,
        Ok(Ok(Err(code))) => Err(client::connect_error(spec, &pki, code, "session not opened")),
        _ => Err(client::connect_error(
            spec,
            &pki,
            opcua::types::StatusCode::BadTimeout,
            "session not opened",
        )),
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), session.disconnect()).await;
    looper.abort();
    result
}

/// Lists the nodes below `start`, `depth` levels deep, in browse order.
pub async fn browse(
    spec: &EndpointSpec,
    gateway_id: &str,
    data_dir: &Path,
    start: NodeId,
    depth: usize,
) -> Result<Vec<BrowseLine>, OpcuaError> {
    let identity = client::identity(spec)?;
    let name = spec.name.clone();
    with_session(spec, gateway_id, data_dir, identity, async |session| {
        let fail = |e: opcua::types::Error| OpcuaError::Connect {
            endpoint: name.clone(),
            message: format!("browse failed: {e}"),
            kind: "browse",
        };
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        // Depth-first: a line is printed when popped, then its children are pushed in
        // reverse, so each child follows its parent in browse order.
        let mut stack: Vec<(BrowseLine, NodeId)> = Vec::new();
        let mut next = Some((start, 0usize));
        loop {
            if let Some((node, level)) = next.take()
                && level < depth
                && seen.insert(node.clone())
            {
                let children = children_of(session, node, level + 1).await.map_err(fail)?;
                stack.extend(children.into_iter().rev());
            }
            let Some((line, id)) = stack.pop() else { break };
            next = Some((id, line.depth));
            out.push(line);
        }
        Ok(out)
    })
    .await
}

/// The children of `node` (hierarchical references), with data type and value of variables.
async fn children_of(
    session: &Session,
    node: NodeId,
    depth: usize,
) -> Result<Vec<(BrowseLine, NodeId)>, opcua::types::Error> {
    let desc = BrowseDescription {
        node_id: node,
        browse_direction: BrowseDirection::Forward,
        reference_type_id: ReferenceTypeId::HierarchicalReferences.into(),
        include_subtypes: true,
        node_class_mask: 0,
        result_mask: BrowseResultMask::All as u32,
    };
    let results = session.browse(&[desc], 1000, None).await?;
    let refs = results
        .into_iter()
        .next()
        .and_then(|r| r.references)
        .unwrap_or_default();
    let mut lines = Vec::with_capacity(refs.len());
    for r in &refs {
        let id = r.node_id.node_id.clone();
        let mut line = BrowseLine {
            depth,
            node_id: id.to_string(),
            browse_name: format!("{}:{}", r.browse_name.namespace_index, r.browse_name.name),
            class: format!("{:?}", r.node_class),
            data_type: None,
            value: None,
        };
        if r.node_class == NodeClass::Variable {
            let read = |attr: AttributeId| ReadValueId {
                node_id: id.clone(),
                attribute_id: attr as u32,
                ..Default::default()
            };
            let vals = session
                .read(
                    &[read(AttributeId::DataType), read(AttributeId::Value)],
                    TimestampsToReturn::Neither,
                    0.0,
                )
                .await?;
            if let Some(Some(Variant::NodeId(t))) = vals.first().map(|d| d.value.clone()) {
                line.data_type = Some(type_name(&t));
            }
            line.value = vals.get(1).map(value_text);
        }
        lines.push((line, id));
    }
    Ok(lines)
}

/// The listing as the browse command prints it: one node per line, indented by depth.
pub fn render(lines: &[BrowseLine]) -> String {
    let mut out = String::from("NODE ID\tBROWSE NAME\tCLASS\tDATA TYPE\tVALUE\n");
    for l in lines {
        out.push_str(&format!(
            "{}{}\t{}\t{}\t{}\t{}\n",
            "  ".repeat(l.depth.saturating_sub(1)),
            l.node_id,
            l.browse_name,
            l.class,
            l.data_type.as_deref().unwrap_or("-"),
            l.value.as_deref().unwrap_or("-"),
        ));
    }
    out
}

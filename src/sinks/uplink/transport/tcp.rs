//! TCP client transport: one long-lived connection, reconnected after errors (the runner
//! backs off between attempts), optional TLS. Framing is chosen per platform:
//! `delimiter` sends each payload followed by a delimiter (`@@` for the provincial chemical
//! platforms). Without `reply`, a payload counts as acknowledged once it is written and
//! flushed; with `reply = { contains = "…" }` the peer's answer up to the delimiter must
//! contain that text.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::super::config::Place;
use super::super::tls::TlsConfig;
use super::super::{BoxFuture, Payload, Transport, TransportError};
use crate::spec::error::ConfigError;
use crate::spec::units;

fn default_delimiter() -> String {
    "@@".into()
}

fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

/// How payloads are framed on the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TcpFraming {
    /// Payload bytes then the delimiter.
    #[default]
    Delimiter,
}

/// `transport = { type = "tcp", … }`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TcpConfig {
    /// `host:port` of the platform.
    pub address: String,
    /// Framing (default `delimiter`).
    #[serde(default)]
    pub framing: TcpFraming,
    /// Delimiter after each payload (default `@@`).
    #[serde(default = "default_delimiter")]
    pub delimiter: String,
    /// TLS, when the platform wants it.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// Wait for the platform's answer and check it.
    #[serde(default)]
    pub reply: Option<TcpReply>,
    /// Connect, write and reply timeout (default 10s).
    #[serde(default = "default_timeout", deserialize_with = "units::duration::deserialize")]
    pub timeout: Duration,
}

/// `reply = { contains = "…" }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TcpReply {
    /// Text the answer must contain for the payload to count as acknowledged.
    pub contains: String,
}

impl TcpConfig {
    /// Checks the settings.
    pub fn check(&mut self, at: &Place<'_>, errors: &mut Vec<ConfigError>) {
        match self.address.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0) => {}
            _ => errors.push(at.error("address", format!("`{}` is not host:port", self.address))),
        }
        if self.framing == TcpFraming::Delimiter && self.delimiter.is_empty() {
            errors.push(at.error("delimiter", "must not be empty"));
        }
        if self.timeout.is_zero() {
            errors.push(at.error("timeout", "must be longer than zero"));
        }
        if let Some(tls) = &mut self.tls {
            tls.check(at, "tls", errors);
        }
    }

    /// The host part of `address`, for TLS server names.
    fn host(&self) -> &str {
        self.address
            .rsplit_once(':')
            .map_or(self.address.as_str(), |(h, _)| h)
            .trim_matches(['[', ']'])
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// The TCP client.
pub struct TcpTransport {
    cfg: TcpConfig,
    tls: Option<(tokio_rustls::TlsConnector, rustls_pki_types::ServerName<'static>)>,
    conn: Option<Box<dyn Io>>,
    inbox: Vec<u8>,
}

impl std::fmt::Debug for TcpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpTransport")
            .field("address", &self.cfg.address)
            .field("connected", &self.conn.is_some())
            .finish()
    }
}

impl TcpTransport {
    /// A client for `cfg` (connects on the first delivery).
    pub fn new(cfg: &TcpConfig) -> Result<Self, String> {
        let tls = match &cfg.tls {
            Some(t) => {
                let config: Arc<rustls::ClientConfig> = t.client_config()?;
                let name = t.server_name.clone().unwrap_or_else(|| cfg.host().to_string());
                let server = rustls_pki_types::ServerName::try_from(name.clone())
                    .map_err(|e| format!("`{name}` is not a TLS server name: {e}"))?;
                Some((tokio_rustls::TlsConnector::from(config), server))
            }
            None => None,
        };
        Ok(Self {
            cfg: cfg.clone(),
            tls,
            conn: None,
            inbox: Vec::new(),
        })
    }

    async fn connect(&mut self) -> Result<(), TransportError> {
        let unreachable = |e: String| TransportError::Unreachable(format!("{}: {e}", self.cfg.address));
        let stream = tokio::time::timeout(self.cfg.timeout, TcpStream::connect(&self.cfg.address))
            .await
            .map_err(|_| unreachable("connect timed out".into()))?
            .map_err(|e| unreachable(e.to_string()))?;
        let _ = stream.set_nodelay(true);
        let conn: Box<dyn Io> = match &self.tls {
            Some((connector, name)) => Box::new(
                tokio::time::timeout(self.cfg.timeout, connector.connect(name.clone(), stream))
                    .await
                    .map_err(|_| unreachable("TLS handshake timed out".into()))?
                    .map_err(|e| unreachable(format!("TLS: {e}")))?,
            ),
            None => Box::new(stream),
        };
        self.conn = Some(conn);
        self.inbox.clear();
        Ok(())
    }

    /// Drops the connection when the peer closed it while idle, so a payload is never
    /// written into a socket that is already dead.
    async fn check_idle(&mut self) {
        let Some(conn) = self.conn.as_mut() else { return };
        let mut buf = [0u8; 512];
        match tokio::time::timeout(Duration::ZERO, conn.read(&mut buf)).await {
            Err(_) => {}                                // nothing to read: alive
            Ok(Ok(0)) | Ok(Err(_)) => self.conn = None, // closed or broken
            Ok(Ok(_)) => {}                             // unsolicited bytes: ignored
        }
    }

    async fn send(&mut self, payload: &Payload) -> Result<(), TransportError> {
        self.check_idle().await;
        if self.conn.is_none() {
            self.connect().await?;
        }
        let timeout = self.cfg.timeout;
        let address = self.cfg.address.clone();
        let delimiter = self.cfg.delimiter.clone().into_bytes();
        let Some(conn) = self.conn.as_mut() else {
            return Err(TransportError::Unreachable(address));
        };
        let mut frame = Vec::with_capacity(payload.body.len() + delimiter.len());
        frame.extend_from_slice(&payload.body);
        frame.extend_from_slice(&delimiter);
        let write = async {
            conn.write_all(&frame).await?;
            conn.flush().await
        };
        match tokio::time::timeout(timeout, write).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(TransportError::Unreachable(format!("{address}: {e}"))),
            Err(_) => return Err(TransportError::Unreachable(format!("{address}: write timed out"))),
        }
        let Some(reply) = self.cfg.reply.clone() else {
            return Ok(());
        };
        let answer = tokio::time::timeout(timeout, read_until(conn, &mut self.inbox, &delimiter))
            .await
            .map_err(|_| TransportError::NotAcknowledged(format!("{address}: no reply in {timeout:?}")))?
            .map_err(|e| TransportError::Unreachable(format!("{address}: {e}")))?;
        if String::from_utf8_lossy(&answer).contains(&reply.contains) {
            Ok(())
        } else {
            Err(TransportError::NotAcknowledged(format!(
                "{address} answered `{}`",
                super::excerpt(&answer)
            )))
        }
    }
}

/// Reads up to and without the next `delim`, keeping bytes after it in `inbox`.
async fn read_until(conn: &mut Box<dyn Io>, inbox: &mut Vec<u8>, delim: &[u8]) -> std::io::Result<Vec<u8>> {
    loop {
        if let Some(pos) = inbox.windows(delim.len()).position(|w| w == delim) {
            let answer = inbox[..pos].to_vec();
            inbox.drain(..pos + delim.len());
            return Ok(answer);
        }
        let mut buf = [0u8; 4096];
        let n = conn.read(&mut buf).await?;
        if n == 0 {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "peer closed"));
        }
        inbox.extend_from_slice(&buf[..n]);
        if inbox.len() > 1024 * 1024 {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "reply too long"));
        }
    }
}

impl Transport for TcpTransport {
    fn deliver<'a>(&'a mut self, payload: &'a Payload) -> BoxFuture<'a, Result<(), TransportError>> {
        Box::pin(async move {
            let r = self.send(payload).await;
            if matches!(r, Err(TransportError::Unreachable(_))) {
                self.conn = None;
            }
            r
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncBufReadExt;

    #[tokio::test]
    async fn writes_delimited_payloads_and_checks_the_reply() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (s, _) = listener.accept().await.unwrap();
            let (r, mut w) = s.into_split();
            let mut r = tokio::io::BufReader::new(r);
            let mut got = Vec::new();
            for _ in 0..2 {
                let mut buf = Vec::new();
                r.read_until(b'@', &mut buf).await.unwrap();
                let mut at = [0u8; 1];
                r.read_exact(&mut at).await.unwrap();
                got.push(String::from_utf8(buf).unwrap());
                w.write_all(b"{\"code\":0}@@").await.unwrap();
            }
            got
        });
        let cfg = TcpConfig {
            address: addr.to_string(),
            framing: TcpFraming::Delimiter,
            delimiter: "@@".into(),
            tls: None,
            reply: Some(TcpReply {
                contains: "\"code\":0".into(),
            }),
            timeout: Duration::from_secs(5),
        };
        let mut t = TcpTransport::new(&cfg).unwrap();
        for body in ["{\"a\":1}", "{\"a\":2}"] {
            let p = Payload {
                body: body.as_bytes().to_vec(),
                items: 1,
                ..Payload::default()
            };
            t.deliver(&p).await.unwrap();
        }
        assert_eq!(server.await.unwrap(), vec!["{\"a\":1}@", "{\"a\":2}@"]);
    }

    #[tokio::test]
    async fn an_unreachable_peer_is_reported_as_such() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let cfg = TcpConfig {
            address: format!("127.0.0.1:{port}"),
            framing: TcpFraming::Delimiter,
            delimiter: "@@".into(),
            tls: None,
            reply: None,
            timeout: Duration::from_secs(2),
        };
        let mut t = TcpTransport::new(&cfg).unwrap();
        let e = t.deliver(&Payload::default()).await.unwrap_err();
        assert!(matches!(e, TransportError::Unreachable(_)), "{e}");
    }
}

//! The API's connection loop: plain TCP or TLS (rustls, ring provider), HTTP/1.1 by hyper with
//! limits that axum's own `serve` does not expose.
//!
//! Design: every accepted connection gets its own task. The TLS handshake and the request head
//! must both arrive within `header_read_timeout`, so a client that opens a socket and trickles
//! bytes holds nothing for long; a head larger than `max_header` is answered 431 by hyper and
//! the connection closed. Bodies are limited by the router (413) and ordinary requests by its
//! timeout layer (408); the SSE feed is exempt from that timeout because it is meant to last.
//! At shutdown the listener stops, open connections finish their current request (feeds end
//! through the same cancellation token), and whatever is still open after a grace period is
//! dropped.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::spec::tls::{self, TlsFile, TlsFileError};

/// How long open connections may take to finish after shutdown began.
const DRAIN: Duration = Duration::from_secs(5);

/// Limits of the connection layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The TLS handshake and the request head must arrive within this.
    pub header_read_timeout: Duration,
    /// Largest request head (request line and headers); larger ones get 431.
    pub max_header: usize,
}

/// hyper's smallest read buffer; a smaller head limit cannot be enforced.
pub const MIN_HEADER_LIMIT: usize = 8192;

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            max_header: 16 * 1024,
        }
    }
}

/// PEM files of the API's certificate chain and private key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// Certificate chain, leaf first.
    pub cert: PathBuf,
    /// Private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// Why the TLS files cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read or holds no PEM item of its kind.
    #[error(transparent)]
    Files(#[from] TlsFileError),
    /// rustls refused the pair (key does not match, unsupported key type).
    #[error("certificate {} and key {} do not make a TLS server: {source}", cert.display(), key.display())]
    Refused {
        /// Certificate file.
        cert: PathBuf,
        /// Key file.
        key: PathBuf,
        /// rustls' reason.
        source: rustls::Error,
    },
}

impl TlsFiles {
    /// Reads and checks both files and builds the acceptor (ring provider, TLS 1.2 and 1.3).
    pub fn acceptor(&self) -> Result<TlsAcceptor, TlsError> {
        let certs = tls::certs(TlsFile::Cert, &self.cert)?;
        let key = tls::private_key(&self.key)?;
        let refused = |source| TlsError::Refused {
            cert: self.cert.clone(),
            key: self.key.clone(),
            source,
        };
        let mut config =
            rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .map_err(refused)?
                .with_no_client_auth()
                .with_single_cert(certs, key)
                .map_err(refused)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsAcceptor::from(Arc::new(config)))
    }
}

/// Accepts connections on `listener` and serves `app` on each until `shutdown` fires.
pub async fn run(
    listener: TcpListener,
    app: Router,
    tls: Option<TlsAcceptor>,
    limits: Limits,
    shutdown: CancellationToken,
) {
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header.max(MIN_HEADER_LIMIT));
    loop {
        let (tcp, peer) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: pause instead of spinning.
                    warn!(error = %e, "API cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        // Small writes (one SSE event) must leave at once: with Nagle's algorithm an event
        // written right after another waits for the peer's delayed ACK, up to 40 ms on Linux.
        if let Err(e) = tcp.set_nodelay(true) {
            debug!(error = %e, "Cannot set TCP_NODELAY on an API connection");
        }
        let service = TowerToHyperService::new(app.clone());
        let http = http.clone();
        let tls = tls.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            match tls {
                None => {
                    let conn = http.serve_connection(TokioIo::new(tcp), service);
                    finish(watcher.watch(conn).await, peer);
                }
                Some(acceptor) => {
                    let stream = match handshake(&acceptor, tcp, limits.header_read_timeout).await {
                        Ok(s) => s,
                        Err(reason) => {
                            debug!(%peer, error = %reason, "API TLS handshake failed");
                            return;
                        }
                    };
                    let conn = http.serve_connection(TokioIo::new(stream), service);
                    finish(watcher.watch(conn).await, peer);
                }
            }
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(DRAIN) => info!("API connections still open after the drain period are dropped"),
    }
}

async fn handshake(
    acceptor: &TlsAcceptor,
    tcp: TcpStream,
    within: Duration,
) -> Result<tokio_rustls::server::TlsStream<TcpStream>, String> {
    match tokio::time::timeout(within, acceptor.accept(tcp)).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("timed out".into()),
    }
}

fn finish(result: Result<(), hyper::Error>, peer: std::net::SocketAddr) {
    if let Err(e) = result {
        // Slow or oversized heads, resets and timeouts end here; the client already got its
        // answer (431) or the connection closed, nothing else to do.
        debug!(%peer, error = %e, "API connection ended with an error");
    }
}

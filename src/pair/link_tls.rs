//! TLS of the pair link (`[redundancy] tls`): mutual TLS whose certificates both chain to
//! the site CA, and the errors that say plainly when the two nodes are set up differently.
//!
//! Design: a TLS dialler speaks first (its hello), a plain dialler waits for the acceptor's
//! hello and sends nothing. So an acceptor with TLS that hears nothing for [`FIRST_BYTE`]
//! knows its peer runs without TLS: it answers with a pair hello marked [`TLS_REQUIRED`], so
//! that node can say so too, and closes. A plain acceptor hears a TLS record where the
//! answer to its challenge should be; a TLS dialler gets a pair hello where a TLS record
//! should be.

use std::time::Duration;

use rustls_pki_types::ServerName;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_rustls::{TlsAcceptor, TlsConnector, client, server};

use super::link::{LinkError, MAGIC};
use crate::spec::tls::{MutualTls, TlsFileError};

/// In place of the version in the hello a TLS acceptor sends a plain dialler before it closes.
pub(super) const TLS_REQUIRED: u8 = 0xF1;
/// The first byte of a TLS record carrying a handshake (RFC 8446, 5.1): a TLS dialler's first.
pub(super) const TLS_HANDSHAKE: u8 = 0x16;
/// How long a TLS acceptor waits for the dialler's first byte: a TLS dialler sends its hello at
/// once, a plain one waits for ours.
const FIRST_BYTE: Duration = Duration::from_secs(1);

/// TLS of the pair link, both ways round: this node accepts its peer and dials it.
#[derive(Clone)]
pub struct LinkTls {
    acceptor: TlsAcceptor,
    connector: TlsConnector,
    /// The name the peer's certificate must carry: the `peer` host (IP address or DNS name).
    peer_name: ServerName<'static>,
}

impl std::fmt::Debug for LinkTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkTls")
            .field("peer_name", &self.peer_name)
            .finish_non_exhaustive()
    }
}

/// Why the link's TLS cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum LinkTlsError {
    /// A file is missing or unusable.
    #[error(transparent)]
    Files(#[from] TlsFileError),
    /// The peer host is no name a certificate can carry.
    #[error("`{0}` is not an IP address or DNS name a certificate can carry")]
    PeerName(String),
}

impl LinkTls {
    /// Reads the files and prepares both ends; `peer_host` is the host of `peer`.
    pub fn new(files: &MutualTls, peer_host: &str) -> Result<Self, LinkTlsError> {
        let peer_name =
            ServerName::try_from(peer_host.to_string()).map_err(|_| LinkTlsError::PeerName(peer_host.to_string()))?;
        Ok(Self {
            acceptor: TlsAcceptor::from(files.server_config()?),
            connector: TlsConnector::from(files.client_config()?),
            peer_name,
        })
    }

    /// The TLS handshake of the accepting side, once the dialler's first byte shows it speaks
    /// TLS. A dialler that stays silent speaks plain TCP: it hears that TLS is required.
    pub(super) async fn accept(&self, mut tcp: TcpStream) -> Result<server::TlsStream<TcpStream>, LinkError> {
        let mut first = [0u8; 1];
        match tokio::time::timeout(FIRST_BYTE, tcp.peek(&mut first)).await {
            Ok(Ok(0)) => return Err(LinkError::Io(std::io::ErrorKind::UnexpectedEof.into())),
            Ok(Ok(_)) if first[0] == TLS_HANDSHAKE => {}
            Ok(Ok(_)) => return Err(LinkError::Protocol),
            Ok(Err(e)) => return Err(LinkError::Io(e)),
            Err(_) => {
                let mut hello = Vec::with_capacity(39);
                hello.extend_from_slice(MAGIC);
                hello.push(TLS_REQUIRED);
                hello.extend_from_slice(&[0u8; 32]);
                // Best effort: the refusal is this node's to log either way.
                let _ = tcp.write_all(&hello).await;
                return Err(LinkError::NotTls);
            }
        }
        self.acceptor.accept(tcp).await.map_err(from_tls)
    }

    /// The TLS handshake of the dialling side, checking the acceptor's certificate for the
    /// `peer` host.
    pub(super) async fn connect(&self, tcp: TcpStream) -> Result<client::TlsStream<TcpStream>, LinkError> {
        self.connector
            .connect(self.peer_name.clone(), tcp)
            .await
            .map_err(from_tls)
    }
}

/// An I/O error that carries a TLS failure becomes the variant that names it.
pub(super) fn from_tls(e: std::io::Error) -> LinkError {
    use rustls::{CertificateError, Error};
    let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<Error>()) else {
        return LinkError::Io(e);
    };
    match tls {
        Error::InvalidCertificate(CertificateError::UnknownIssuer | CertificateError::BadSignature) => {
            LinkError::NotSiteCa
        }
        Error::InvalidCertificate(_) => LinkError::Certificate(tls.to_string()),
        Error::NoCertificatesPresented => LinkError::NoCertificate,
        Error::AlertReceived(alert) => LinkError::RefusedByPeer(format!("{alert:?}")),
        // Not a TLS record at all: a plain acceptor's hello.
        Error::InvalidMessage(_) => LinkError::NotTls,
        other => LinkError::Tls(other.to_string()),
    }
}

//! The pair link: an authenticated stream of frames between the two nodes, over plain TCP or
//! mutual TLS.
//!
//! Design: no certificate authority is needed on a plant network. Both nodes know a shared
//! secret; each proves it over the other's random challenge (HMAC-SHA256), and every frame
//! after that carries an HMAC under a key derived from both challenges, with its direction and
//! a counter. A node without the secret can neither join nor inject, alter, replay or reorder a
//! frame; a frame that fails its check ends the connection. Over plain TCP the content (alarm
//! transitions, delivery cursors) is not encrypted.
//!
//! With `[redundancy] tls`, the same exchange runs inside TLS: the acceptor requires the
//! dialler's certificate and both check the other's against the site CA, the dialler for the
//! `peer` host it dialled. The secret still proves the pair partner, since the site CA may sign
//! other certificates. Both nodes must agree: the acceptor tells a plain dialler (which waits
//! for the acceptor's hello and sends nothing) by its silence, answers it with a hello that
//! says TLS is required, and each side names the mismatch in its error ([`super::link_tls`]).

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;

pub use super::link_tls::{LinkTls, LinkTlsError};
use super::link_tls::{TLS_HANDSHAKE, TLS_REQUIRED, from_tls};
use crate::model::pair::FieldReach;
use crate::sinks::journal::replica::ReplicaRow;

type HmacSha256 = Hmac<Sha256>;

pub(super) const MAGIC: &[u8; 6] = b"HGPAIR";
const VERSION: u8 = 1;
/// Largest frame accepted: a page of journal rows or one delivery-state file.
pub const MAX_FRAME: usize = 16 << 20;

/// Why the link failed.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The connection failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The peer is not a hazard-gateway pair node, or speaks another version.
    #[error("the peer is not a pair node of this version")]
    Protocol,
    /// The peer does not know the shared secret (or this node has a different one).
    #[error("the peer failed authentication: is the same secret set on both nodes?")]
    Auth,
    /// A frame failed its check: altered, replayed or out of order.
    #[error("a frame failed its integrity check")]
    Integrity,
    /// A frame is larger than [`MAX_FRAME`].
    #[error("a frame of {0} bytes is larger than allowed")]
    TooLarge(usize),
    /// A frame is not a message of this protocol.
    #[error("unreadable message: {0}")]
    Message(String),
    /// This node runs the link over TLS, the peer does not.
    #[error("the peer does not speak TLS: set [redundancy] tls on both nodes, or on neither")]
    NotTls,
    /// The peer runs the link over TLS, this node does not.
    #[error("the peer speaks TLS and this node does not: set [redundancy] tls on both nodes, or on neither")]
    PeerWantsTls,
    /// The peer's certificate does not chain to this node's `tls.ca_file`.
    #[error("the peer's certificate is not signed by the site CA (tls.ca_file)")]
    NotSiteCa,
    /// The peer's certificate chains to the site CA but is not acceptable (expired, does not
    /// name the address dialled, not for this use).
    #[error("the peer's certificate is not acceptable: {0}")]
    Certificate(String),
    /// The dialler presented no certificate.
    #[error("the peer presented no certificate: set [redundancy] tls on both nodes, or on neither")]
    NoCertificate,
    /// The peer refused this node's certificate.
    #[error("the peer refused this node's certificate ({0}): is it signed by the site CA the peer trusts?")]
    RefusedByPeer(String),
    /// Another TLS failure.
    #[error("TLS: {0}")]
    Tls(String),
}

impl LinkError {
    /// Whether the two nodes are set up differently (TLS on one only, certificates): a
    /// mistake an operator must mend, unlike a connection that failed.
    pub fn is_setup_mismatch(&self) -> bool {
        matches!(
            self,
            LinkError::Auth
                | LinkError::NotTls
                | LinkError::PeerWantsTls
                | LinkError::NotSiteCa
                | LinkError::Certificate(_)
                | LinkError::NoCertificate
                | LinkError::RefusedByPeer(_)
        )
    }

    fn classify(self) -> Self {
        match self {
            LinkError::Io(e) => from_tls(e),
            other => other,
        }
    }
}

/// A byte stream the link runs over: TCP, or TLS over TCP.
trait Stream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Stream for T {}

type BoxStream = Box<dyn Stream>;

/// What the nodes say to each other.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum Msg {
    /// First word of the answering node: who it is and whether it is active.
    Hello {
        /// Node name.
        node: String,
        /// `active` or `standby`.
        role: String,
        /// Its lease term.
        term: u64,
        /// Where its API is.
        api: String,
    },
    /// The standby's position: its last journal row.
    Resume {
        /// Node name.
        node: String,
        /// Its last journal sequence number (0: empty).
        last_seq: u64,
        /// That row's time, alarm and transition.
        last: Option<(i64, String, String)>,
        /// The durable-queue files it holds; `None` from a standby of a version that does
        /// not take queue copies (the active then sends it none).
        #[serde(default)]
        queues: Option<Vec<HeldQueueFile>>,
    },
    /// The standby's journal is not a prefix of the active's: set it aside and start again.
    Diverged,
    /// Journal rows, in order.
    Rows {
        /// The rows.
        rows: Vec<ReplicaRow>,
    },
    /// The running delay timers, whole.
    Timers {
        /// `(alarm id, since ns)`.
        timers: Vec<(String, i64)>,
    },
    /// A delivery-state file (cursor, held transitions, escalation steps), whole.
    File {
        /// Path relative to the data directory.
        path: String,
        /// Contents, Base64.
        data: String,
    },
    /// Bytes of a durable-queue file from `offset` on: a segment grows by them (cut back to
    /// `offset` first if it is longer); a watermark file is replaced whole (`offset` 0).
    QueueBytes {
        /// Path relative to the data directory.
        path: String,
        /// Where the bytes start in the file.
        offset: u64,
        /// The bytes, Base64.
        data: String,
    },
    /// A durable-queue file the active no longer has (a segment acknowledged whole).
    QueueGone {
        /// Path relative to the data directory.
        path: String,
    },
    /// The active is alive; `head` is its last journal row.
    Beat {
        /// Beat number.
        id: u64,
        /// The active's last journal sequence number.
        head: u64,
        /// The active asks what the standby reaches of the plant network (it lost its own,
        /// or it would hand the role back).
        #[serde(default)]
        probe: bool,
    },
    /// The active has stopped polling (a hand-over): the standby's own readings from now on
    /// are newer than any the active evaluated.
    Stopped,
    /// The standby has stored everything up to `applied` and answers beat `id`.
    Ack {
        /// Beat answered.
        id: u64,
        /// Its last journal sequence number.
        applied: u64,
        /// What it reaches of the plant network, while it polls.
        #[serde(default)]
        field: Option<FieldReach>,
    },
}

/// A durable-queue file the standby holds, as it tells the active when it resumes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldQueueFile {
    /// Path relative to the data directory.
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
    /// A hash of its first bytes (up to [`QUEUE_HEAD`]): a segment of the same name that the
    /// other node wrote on its own starts differently.
    pub head: u64,
}

/// How many first bytes of a queue file [`HeldQueueFile::head`] covers.
pub const QUEUE_HEAD: u64 = 4096;

/// One side of an authenticated connection.
#[derive(Debug)]
pub struct Conn {
    reader: Reader,
    writer: Writer,
}

/// The receiving half (its session key is never printed).
pub struct Reader {
    io: ReadHalf<BoxStream>,
    key: Vec<u8>,
    dir: u8,
    count: u64,
}

/// The sending half (its session key is never printed).
pub struct Writer {
    io: WriteHalf<BoxStream>,
    key: Vec<u8>,
    dir: u8,
    count: u64,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("count", &self.count)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("count", &self.count)
            .finish_non_exhaustive()
    }
}

fn mac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC takes keys of any length.
    let mut m = HmacSha256::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().into()
}

fn verify(key: &[u8], parts: &[&[u8]], tag: &[u8]) -> bool {
    let Ok(mut m) = HmacSha256::new_from_slice(key) else {
        return false;
    };
    for p in parts {
        m.update(p);
    }
    m.verify_slice(tag).is_ok()
}

fn nonce() -> [u8; 32] {
    rand::random()
}

/// Direction bytes: frames from the node that accepted the connection, and from the one that
/// dialled it.
const FROM_ACCEPTOR: u8 = 1;
const FROM_DIALLER: u8 = 2;

impl Conn {
    /// Accepts a dialled connection: TLS first when configured, then challenge, check the
    /// answer, prove ourselves.
    pub async fn accept(tcp: TcpStream, secret: &[u8], tls: Option<&LinkTls>) -> Result<Self, LinkError> {
        tcp.set_nodelay(true)?;
        let io: BoxStream = match tls {
            None => Box::new(tcp),
            Some(t) => Box::new(t.accept(tcp).await?),
        };
        Self::challenge(io, secret).await.map_err(LinkError::classify)
    }

    async fn challenge(mut io: BoxStream, secret: &[u8]) -> Result<Self, LinkError> {
        let ours = nonce();
        let mut hello = Vec::with_capacity(39);
        hello.extend_from_slice(MAGIC);
        hello.push(VERSION);
        hello.extend_from_slice(&ours);
        io.write_all(&hello).await?;
        io.flush().await?;
        let mut answer = [0u8; 64];
        io.read_exact(&mut answer).await?;
        let (theirs, tag) = answer.split_at(32);
        if !verify(secret, &[b"dialler", &ours, theirs], tag) {
            // A TLS dialler's hello is a handshake record of TLS 1.x: `16 03 ..`. A random
            // nonce starts so once in 65 536 times, and only after the proof failed anyway.
            if answer[0] == TLS_HANDSHAKE && answer[1] == 3 {
                return Err(LinkError::PeerWantsTls);
            }
            return Err(LinkError::Auth);
        }
        io.write_all(&mac(secret, &[b"acceptor", &ours, theirs])).await?;
        io.flush().await?;
        let key = mac(secret, &[b"session", &ours, theirs]).to_vec();
        Ok(Self::split(io, key, FROM_ACCEPTOR, FROM_DIALLER))
    }

    /// Dials the peer: TLS first when configured (checking its certificate for the `peer`
    /// host), then answer its challenge, check its proof.
    pub async fn dial(tcp: TcpStream, secret: &[u8], tls: Option<&LinkTls>) -> Result<Self, LinkError> {
        tcp.set_nodelay(true)?;
        let io: BoxStream = match tls {
            None => Box::new(tcp),
            Some(t) => Box::new(t.connect(tcp).await?),
        };
        Self::answer(io, secret).await.map_err(LinkError::classify)
    }

    async fn answer(mut io: BoxStream, secret: &[u8]) -> Result<Self, LinkError> {
        let mut hello = [0u8; 39];
        io.read_exact(&mut hello).await?;
        if &hello[..6] == MAGIC && hello[6] == TLS_REQUIRED {
            return Err(LinkError::PeerWantsTls);
        }
        if &hello[..6] != MAGIC || hello[6] != VERSION {
            return Err(LinkError::Protocol);
        }
        let theirs = &hello[7..];
        let ours = nonce();
        let mut answer = Vec::with_capacity(64);
        answer.extend_from_slice(&ours);
        answer.extend_from_slice(&mac(secret, &[b"dialler", theirs, &ours]));
        io.write_all(&answer).await?;
        io.flush().await?;
        let mut proof = [0u8; 32];
        io.read_exact(&mut proof).await?;
        if !verify(secret, &[b"acceptor", theirs, &ours], &proof) {
            return Err(LinkError::Auth);
        }
        let key = mac(secret, &[b"session", theirs, &ours]).to_vec();
        Ok(Self::split(io, key, FROM_DIALLER, FROM_ACCEPTOR))
    }

    fn split(io: BoxStream, key: Vec<u8>, send_dir: u8, recv_dir: u8) -> Self {
        let (r, w) = tokio::io::split(io);
        Self {
            reader: Reader {
                io: r,
                key: key.clone(),
                dir: recv_dir,
                count: 0,
            },
            writer: Writer {
                io: w,
                key,
                dir: send_dir,
                count: 0,
            },
        }
    }

    /// The two halves, for a reader task and a writer task.
    pub fn into_halves(self) -> (Reader, Writer) {
        (self.reader, self.writer)
    }
}

impl Writer {
    /// Sends one message.
    pub async fn send(&mut self, msg: &Msg) -> Result<(), LinkError> {
        let body = serde_json::to_vec(msg).map_err(|e| LinkError::Message(e.to_string()))?;
        if body.len() > MAX_FRAME {
            return Err(LinkError::TooLarge(body.len()));
        }
        self.count += 1;
        let len = u32::try_from(body.len()).map_err(|_| LinkError::TooLarge(body.len()))?;
        let tag = mac(&self.key, &[&[self.dir], &self.count.to_be_bytes(), &body]);
        let mut frame = Vec::with_capacity(body.len() + 36);
        frame.extend_from_slice(&len.to_be_bytes());
        frame.extend_from_slice(&body);
        frame.extend_from_slice(&tag);
        self.io.write_all(&frame).await?;
        // TLS holds written bytes in its own buffer until flushed.
        self.io.flush().await?;
        Ok(())
    }
}

impl Reader {
    /// Receives one message.
    pub async fn recv(&mut self) -> Result<Msg, LinkError> {
        let mut len = [0u8; 4];
        self.io.read_exact(&mut len).await?;
        let len = u32::from_be_bytes(len) as usize;
        if len > MAX_FRAME {
            return Err(LinkError::TooLarge(len));
        }
        let mut body = vec![0u8; len + 32];
        self.io.read_exact(&mut body).await?;
        let (body, tag) = body.split_at(len);
        self.count += 1;
        if !verify(&self.key, &[&[self.dir], &self.count.to_be_bytes(), body], tag) {
            return Err(LinkError::Integrity);
        }
        serde_json::from_slice(body).map_err(|e| LinkError::Message(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::tls::MutualTls;
    use std::path::Path;
    use std::process::{Command, Stdio};
    use tokio::net::TcpListener;

    const SECRET: &[u8] = b"0123456789abcdef";

    async fn pair(
        acceptor_secret: &'static [u8],
        dialler_secret: &'static [u8],
    ) -> (Result<Conn, LinkError>, Result<Conn, LinkError>) {
        pair_over(acceptor_secret, None, dialler_secret, None).await
    }

    async fn pair_over(
        acceptor_secret: &'static [u8],
        acceptor_tls: Option<LinkTls>,
        dialler_secret: &'static [u8],
        dialler_tls: Option<LinkTls>,
    ) -> (Result<Conn, LinkError>, Result<Conn, LinkError>) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let acc = tokio::spawn(async move {
            let (s, _) = l.accept().await.unwrap();
            Conn::accept(s, acceptor_secret, acceptor_tls.as_ref()).await
        });
        let dial = Conn::dial(
            TcpStream::connect(addr).await.unwrap(),
            dialler_secret,
            dialler_tls.as_ref(),
        )
        .await;
        (acc.await.unwrap(), dial)
    }

    /// Runs `openssl` in `dir`.
    fn openssl(dir: &Path, args: &[&str]) {
        let status = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("openssl runs");
        assert!(status.success(), "openssl {args:?}");
    }

    const EC_KEY: [&str; 5] = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

    /// A CA `<ca>.pem`/`<ca>.key` in `dir`.
    fn ca(dir: &Path, ca: &str) {
        let (pem, key, subj) = (format!("{ca}.pem"), format!("{ca}.key"), format!("/CN={ca}"));
        let args = [
            &["req", "-x509"][..],
            &EC_KEY,
            &["-days", "2", "-subj", &subj, "-keyout", &key, "-out", &pem],
        ]
        .concat();
        openssl(dir, &args);
    }

    /// A node certificate `<stem>.pem`/`<stem>.key` for 127.0.0.1, signed by `<ca>.pem`: the
    /// files the pair link's TLS reads, with `ca_file` the site CA `site.pem`.
    fn node(dir: &Path, stem: &str, ca: &str) -> MutualTls {
        let (key, csr, ext, pem) = (
            format!("{stem}.key"),
            format!("{stem}.csr"),
            format!("{stem}.cnf"),
            format!("{stem}.pem"),
        );
        let args = [
            &["req"][..],
            &EC_KEY,
            &["-subj", "/CN=127.0.0.1", "-keyout", &key, "-out", &csr],
        ]
        .concat();
        openssl(dir, &args);
        std::fs::write(
            dir.join(&ext),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\n",
        )
        .unwrap();
        let (ca_pem, ca_key) = (format!("{ca}.pem"), format!("{ca}.key"));
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                &ca_pem,
                "-CAkey",
                &ca_key,
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                &ext,
                "-out",
                &pem,
            ],
        );
        MutualTls {
            ca_file: dir.join("site.pem"),
            cert: dir.join(pem),
            key: dir.join(key),
        }
    }

    /// Node `a` and node `b` of the site CA, and a node `rogue` signed by another CA.
    fn site(dir: &Path) -> (LinkTls, LinkTls, LinkTls) {
        ca(dir, "site");
        ca(dir, "other");
        let tls = |files: MutualTls| LinkTls::new(&files, "127.0.0.1").unwrap();
        (
            tls(node(dir, "a", "site")),
            tls(node(dir, "b", "site")),
            tls(node(dir, "rogue", "other")),
        )
    }

    async fn exchange_both_ways(a: Conn, b: Conn) {
        let (mut ar, mut aw) = a.into_halves();
        let (mut br, mut bw) = b.into_halves();
        let beat = Msg::Beat {
            id: 7,
            head: 42,
            probe: true,
        };
        aw.send(&beat).await.unwrap();
        aw.send(&Msg::Diverged).await.unwrap();
        assert_eq!(br.recv().await.unwrap(), beat);
        assert_eq!(br.recv().await.unwrap(), Msg::Diverged);
        let ack = Msg::Ack {
            id: 7,
            applied: 42,
            field: Some(FieldReach {
                devices: 2,
                known: 2,
                online: 1,
            }),
        };
        bw.send(&ack).await.unwrap();
        assert_eq!(ar.recv().await.unwrap(), ack);
    }

    #[tokio::test]
    async fn nodes_with_the_same_secret_exchange_messages_both_ways() {
        let (a, b) = pair(SECRET, SECRET).await;
        exchange_both_ways(a.unwrap(), b.unwrap()).await;
    }

    #[tokio::test]
    async fn nodes_of_the_site_ca_exchange_messages_both_ways_over_tls() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, _) = site(dir.path());
        let (acc, dial) = pair_over(SECRET, Some(a), SECRET, Some(b)).await;
        exchange_both_ways(acc.unwrap(), dial.unwrap()).await;
    }

    #[tokio::test]
    async fn a_dialler_whose_certificate_another_ca_signed_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (a, _, rogue) = site(dir.path());
        // The rogue trusts the site CA, so only the acceptor's check stops it.
        let (acc, dial) = pair_over(SECRET, Some(a), SECRET, Some(rogue)).await;
        let acc = acc.err();
        assert!(matches!(acc, Some(LinkError::NotSiteCa)), "acceptor: {acc:?}");
        assert_eq!(
            LinkError::NotSiteCa.to_string(),
            "the peer's certificate is not signed by the site CA (tls.ca_file)"
        );
        let dial = dial.err();
        assert!(matches!(dial, Some(LinkError::RefusedByPeer(_))), "dialler: {dial:?}");
    }

    #[tokio::test]
    async fn an_acceptor_whose_certificate_another_ca_signed_is_refused_by_the_dialler() {
        let dir = tempfile::tempdir().unwrap();
        let (_, b, rogue) = site(dir.path());
        let (acc, dial) = pair_over(SECRET, Some(rogue), SECRET, Some(b)).await;
        let dial = dial.err();
        assert!(matches!(dial, Some(LinkError::NotSiteCa)), "dialler: {dial:?}");
        assert!(acc.is_err());
    }

    #[tokio::test]
    async fn a_plain_dialler_and_a_tls_acceptor_each_say_tls_differs() {
        let dir = tempfile::tempdir().unwrap();
        let (a, _, _) = site(dir.path());
        let (acc, dial) = pair_over(SECRET, Some(a), SECRET, None).await;
        let acc = acc.err();
        assert!(matches!(acc, Some(LinkError::NotTls)), "acceptor: {acc:?}");
        assert!(
            LinkError::NotTls.to_string().starts_with("the peer does not speak TLS"),
            "{}",
            LinkError::NotTls
        );
        let dial = dial.err();
        assert!(matches!(dial, Some(LinkError::PeerWantsTls)), "dialler: {dial:?}");
    }

    #[tokio::test]
    async fn a_tls_dialler_and_a_plain_acceptor_each_say_tls_differs() {
        let dir = tempfile::tempdir().unwrap();
        let (_, b, _) = site(dir.path());
        let (acc, dial) = pair_over(SECRET, None, SECRET, Some(b)).await;
        let acc = acc.err();
        assert!(matches!(acc, Some(LinkError::PeerWantsTls)), "acceptor: {acc:?}");
        let dial = dial.err();
        assert!(matches!(dial, Some(LinkError::NotTls)), "dialler: {dial:?}");
    }

    #[tokio::test]
    async fn a_node_with_another_secret_is_refused_over_tls_too() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, _) = site(dir.path());
        let (acc, dial) = pair_over(SECRET, Some(a), b"fedcba9876543210", Some(b)).await;
        assert!(matches!(acc, Err(LinkError::Auth)), "acceptor: {:?}", acc.err());
        assert!(dial.is_err());
    }

    #[test]
    fn a_resume_of_a_standby_that_takes_no_queue_copies_reads_as_none() {
        let old = r#"{"t":"resume","node":"b","last_seq":3,"last":null}"#;
        let Msg::Resume { queues, .. } = serde_json::from_str(old).unwrap() else {
            panic!("a resume")
        };
        assert_eq!(queues, None);
        let new = Msg::Resume {
            node: "b".into(),
            last_seq: 0,
            last: None,
            queues: Some(vec![HeldQueueFile {
                path: "tsdb/vm/acked".into(),
                size: 12,
                head: 7,
            }]),
        };
        let text = serde_json::to_string(&new).unwrap();
        assert_eq!(serde_json::from_str::<Msg>(&text).unwrap(), new);
    }

    #[tokio::test]
    async fn a_node_with_another_secret_is_refused_on_both_sides() {
        let (a, b) = pair(SECRET, b"fedcba9876543210").await;
        assert!(matches!(a, Err(LinkError::Auth)), "acceptor: {:?}", a.err());
        assert!(b.is_err());
    }

    #[tokio::test]
    async fn an_altered_or_replayed_frame_ends_the_connection() {
        // The dialler's frames as raw bytes, to tamper with on the way.
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let acc = tokio::spawn(async move {
            let (s, _) = l.accept().await.unwrap();
            let (mut r, _w) = Conn::accept(s, SECRET, None).await.unwrap().into_halves();
            let first = r.recv().await;
            let second = r.recv().await;
            (first, second)
        });
        let stream = TcpStream::connect(addr).await.unwrap();
        let conn = Conn::dial(stream, SECRET, None).await.unwrap();
        let (_r, mut w) = conn.into_halves();
        // A genuine frame, captured by sending it through a second writer with the same key.
        let msg = Msg::Beat {
            id: 1,
            head: 1,
            probe: false,
        };
        let body = serde_json::to_vec(&msg).unwrap();
        let tag = mac(&w.key, &[&[w.dir], &1u64.to_be_bytes(), &body]);
        let mut frame = (body.len() as u32).to_be_bytes().to_vec();
        frame.extend_from_slice(&body);
        frame.extend_from_slice(&tag);
        w.io.write_all(&frame).await.unwrap();
        // The same frame again: its counter is now wrong.
        w.io.write_all(&frame).await.unwrap();
        let (first, second) = acc.await.unwrap();
        assert_eq!(first.unwrap(), msg);
        assert!(matches!(second, Err(LinkError::Integrity)), "{second:?}");
    }
}

//! The pair link: an authenticated stream of frames between the two nodes.
//!
//! Design: no certificate authority is needed on a plant network. Both nodes know a shared
//! secret; each proves it over the other's random challenge (HMAC-SHA256), and every frame
//! after that carries an HMAC under a key derived from both challenges, with its direction and
//! a counter. A node without the secret can neither join nor inject, alter, replay or reorder a
//! frame; a frame that fails its check ends the connection. The content (alarm transitions,
//! delivery cursors) is not encrypted: it is what the console shows on the same network.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use crate::model::pair::FieldReach;
use crate::sinks::journal::replica::ReplicaRow;

type HmacSha256 = Hmac<Sha256>;

const MAGIC: &[u8; 6] = b"HGPAIR";
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
}

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

/// One side of an authenticated connection.
#[derive(Debug)]
pub struct Conn {
    reader: Reader,
    writer: Writer,
}

/// The receiving half (its session key is never printed).
pub struct Reader {
    io: OwnedReadHalf,
    key: Vec<u8>,
    dir: u8,
    count: u64,
}

/// The sending half (its session key is never printed).
pub struct Writer {
    io: OwnedWriteHalf,
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
    /// Accepts a dialled connection: challenge, check the answer, prove ourselves.
    pub async fn accept(mut io: TcpStream, secret: &[u8]) -> Result<Self, LinkError> {
        io.set_nodelay(true)?;
        let ours = nonce();
        let mut hello = Vec::with_capacity(39);
        hello.extend_from_slice(MAGIC);
        hello.push(VERSION);
        hello.extend_from_slice(&ours);
        io.write_all(&hello).await?;
        let mut answer = [0u8; 64];
        io.read_exact(&mut answer).await?;
        let (theirs, tag) = answer.split_at(32);
        if !verify(secret, &[b"dialler", &ours, theirs], tag) {
            return Err(LinkError::Auth);
        }
        io.write_all(&mac(secret, &[b"acceptor", &ours, theirs])).await?;
        let key = mac(secret, &[b"session", &ours, theirs]).to_vec();
        Ok(Self::split(io, key, FROM_ACCEPTOR, FROM_DIALLER))
    }

    /// Dials the peer: answer its challenge, check its proof.
    pub async fn dial(mut io: TcpStream, secret: &[u8]) -> Result<Self, LinkError> {
        io.set_nodelay(true)?;
        let mut hello = [0u8; 39];
        io.read_exact(&mut hello).await?;
        if &hello[..6] != MAGIC || hello[6] != VERSION {
            return Err(LinkError::Protocol);
        }
        let theirs = &hello[7..];
        let ours = nonce();
        let mut answer = Vec::with_capacity(64);
        answer.extend_from_slice(&ours);
        answer.extend_from_slice(&mac(secret, &[b"dialler", theirs, &ours]));
        io.write_all(&answer).await?;
        let mut proof = [0u8; 32];
        io.read_exact(&mut proof).await?;
        if !verify(secret, &[b"acceptor", theirs, &ours], &proof) {
            return Err(LinkError::Auth);
        }
        let key = mac(secret, &[b"session", theirs, &ours]).to_vec();
        Ok(Self::split(io, key, FROM_DIALLER, FROM_ACCEPTOR))
    }

    fn split(io: TcpStream, key: Vec<u8>, send_dir: u8, recv_dir: u8) -> Self {
        let (r, w) = io.into_split();
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
    use tokio::net::TcpListener;

    async fn pair(
        acceptor_secret: &'static [u8],
        dialler_secret: &'static [u8],
    ) -> (Result<Conn, LinkError>, Result<Conn, LinkError>) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let acc = tokio::spawn(async move {
            let (s, _) = l.accept().await.unwrap();
            Conn::accept(s, acceptor_secret).await
        });
        let dial = Conn::dial(TcpStream::connect(addr).await.unwrap(), dialler_secret).await;
        (acc.await.unwrap(), dial)
    }

    #[tokio::test]
    async fn nodes_with_the_same_secret_exchange_messages_both_ways() {
        let (a, b) = pair(b"0123456789abcdef", b"0123456789abcdef").await;
        let (mut ar, mut aw) = a.unwrap().into_halves();
        let (mut br, mut bw) = b.unwrap().into_halves();
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
    async fn a_node_with_another_secret_is_refused_on_both_sides() {
        let (a, b) = pair(b"0123456789abcdef", b"fedcba9876543210").await;
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
            let (mut r, _w) = Conn::accept(s, b"0123456789abcdef").await.unwrap().into_halves();
            let first = r.recv().await;
            let second = r.recv().await;
            (first, second)
        });
        let stream = TcpStream::connect(addr).await.unwrap();
        let conn = Conn::dial(stream, b"0123456789abcdef").await.unwrap();
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

//! The only module that knows how bytes reach a device: Modbus TCP, RTU on a serial line, and
//! RTU over TCP (RTU frames through a serial server / DTU). All three are byte streams; the
//! framing ([`super::frame`]) is the only difference.
//!
//! Design: one [`Link`] is one open stream, owned by one line task, so requests on it never
//! overlap (a serial bus is half-duplex; a TCP gateway may serve several unit ids on one
//! connection). Every exchange runs under the device timeout. RTU has only the unit id to
//! match an answer with its request, so after a timeout or a garbled answer the link waits
//! for the line to fall silent ([`Link::resync`]) before the next request: a late answer can
//! then never pass for the next one. Before each RTU request the link keeps 3.5 character
//! times of silence since the last byte (Serial Line v1.02 §2.5.1.1).

use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, sleep_until, timeout};
use tokio_serial::SerialPortBuilderExt;

use super::frame::{self, Answer, FrameError, MBAP_LEN, ReadRequest};
use super::spec::{Parity, TransportSpec};
use crate::sources::dtu::DtuHub;
use crate::sources::dtu::link::DtuLink;

/// Quiet time that ends a resync on a link without a baud rate (RTU over TCP), or the floor
/// on a serial line (OS scheduling makes shorter gaps unreliable to see).
const RESYNC_QUIET: Duration = Duration::from_millis(20);
/// Longest RTU answer: unit, function, byte count, 250 data bytes (125 registers), CRC.
const MAX_RTU_FRAME: usize = 256;

/// Why a connection could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The host name did not resolve.
    #[error("cannot resolve `{addr}`: {source}")]
    Resolve {
        /// Address as configured.
        addr: String,
        /// Resolver error.
        source: io::Error,
    },
    /// The host name resolved to nothing.
    #[error("`{addr}` resolves to no address")]
    NoAddress {
        /// Address as configured.
        addr: String,
    },
    /// The device refused or reset the connection.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// Address as configured.
        addr: String,
        /// Socket error.
        source: io::Error,
    },
    /// The serial port could not be opened or configured.
    #[error("cannot open serial port {port}: {source}")]
    Serial {
        /// Port as configured.
        port: String,
        /// Driver error.
        source: tokio_serial::Error,
    },
    /// A DTU station that the gateway does not serve (no `[dtu]` listener runs for it).
    #[error("no DTU station `{0}` is served")]
    NoStation(String),
    /// The device did not accept the connection in time.
    #[error("connecting to {addr} timed out after {timeout:?}")]
    Timeout {
        /// Address as configured.
        addr: String,
        /// The limit that passed.
        timeout: Duration,
    },
}

impl TransportError {
    /// Bounded outcome name for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            TransportError::Resolve { .. } | TransportError::NoAddress { .. } => "resolve_error",
            TransportError::Connect { .. } => "refused",
            TransportError::Serial { .. } => "serial_error",
            TransportError::Timeout { .. } => "timeout",
            TransportError::NoStation(_) => "no_station",
        }
    }
}

/// Why one request got no usable answer.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// No complete answer within the device timeout.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The stream failed or closed.
    #[error("link failed: {0}")]
    Io(#[from] io::Error),
    /// An answer arrived but is not a valid answer to the request.
    #[error("garbled answer: {0}")]
    Frame(#[from] FrameError),
}

impl LinkError {
    /// Bounded outcome name for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            LinkError::Timeout(_) => "timeout",
            LinkError::Io(_) => "io_error",
            LinkError::Frame(e) => e.kind(),
        }
    }
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// Framing of a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Tcp,
    Rtu,
}

/// What a link's bytes travel on.
enum Wire {
    /// A stream the link owns: TCP connection or serial port.
    Stream(Box<dyn Stream>),
    /// Whichever connection a dialled-in DTU has now.
    Dtu(DtuLink),
}

/// One open stream to a device or a bus.
pub struct Link {
    wire: Wire,
    framing: Framing,
    /// Minimum silence before an RTU request.
    silence: Duration,
    /// Quiet time that ends a resync.
    quiet: Duration,
    transaction: u16,
    last_io: Instant,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("framing", &self.framing)
            .field("silence", &self.silence)
            .finish_non_exhaustive()
    }
}

/// Opens a link, bounded by `limit`; a DTU station's link comes from `dtu`.
pub async fn connect(spec: &TransportSpec, limit: Duration, dtu: Option<&Arc<DtuHub>>) -> Result<Link, TransportError> {
    match spec {
        TransportSpec::Dtu(name) => {
            let hub = dtu.ok_or_else(|| TransportError::NoStation(name.clone()))?;
            let station = hub
                .station(name)
                .ok_or_else(|| TransportError::NoStation(name.clone()))?;
            Ok(Link {
                wire: Wire::Dtu(DtuLink::new(hub.clone(), station)),
                framing: Framing::Rtu,
                silence: Duration::ZERO,
                quiet: RESYNC_QUIET,
                transaction: 0,
                last_io: Instant::now(),
            })
        }
        TransportSpec::Tcp(addr) => Ok(Link::new(
            Box::new(tcp(addr, limit).await?),
            Framing::Tcp,
            Duration::ZERO,
        )),
        TransportSpec::RtuOverTcp(addr) => Ok(Link::new(
            Box::new(tcp(addr, limit).await?),
            Framing::Rtu,
            Duration::ZERO,
        )),
        TransportSpec::Rtu(s) => {
            let parity = match s.parity {
                Parity::None => tokio_serial::Parity::None,
                Parity::Even => tokio_serial::Parity::Even,
                Parity::Odd => tokio_serial::Parity::Odd,
            };
            let data_bits = if s.data_bits == 7 {
                tokio_serial::DataBits::Seven
            } else {
                tokio_serial::DataBits::Eight
            };
            let stop_bits = if s.stop_bits == 2 {
                tokio_serial::StopBits::Two
            } else {
                tokio_serial::StopBits::One
            };
            let port = tokio_serial::new(&s.port, s.baud)
                .parity(parity)
                .data_bits(data_bits)
                .stop_bits(stop_bits)
                .open_native_async()
                .map_err(|source| TransportError::Serial {
                    port: s.port.clone(),
                    source,
                })?;
            Ok(Link::new(Box::new(port), Framing::Rtu, s.inter_frame_silence()))
        }
    }
}

async fn tcp(addr: &str, limit: Duration) -> Result<TcpStream, TransportError> {
    let attempt = async {
        let socket_addr = tokio::net::lookup_host(addr)
            .await
            .map_err(|source| TransportError::Resolve {
                addr: addr.to_string(),
                source,
            })?
            .next()
            .ok_or_else(|| TransportError::NoAddress { addr: addr.to_string() })?;
        let stream = TcpStream::connect(socket_addr)
            .await
            .map_err(|source| TransportError::Connect {
                addr: addr.to_string(),
                source,
            })?;
        // Requests are small and each waits for its answer: never hold one back.
        let _ = stream.set_nodelay(true);
        Ok(stream)
    };
    timeout(limit, attempt).await.map_err(|_| TransportError::Timeout {
        addr: addr.to_string(),
        timeout: limit,
    })?
}

impl Link {
    fn new(stream: Box<dyn Stream>, framing: Framing, silence: Duration) -> Self {
        Self {
            wire: Wire::Stream(stream),
            framing,
            silence,
            quiet: RESYNC_QUIET.max(silence),
            transaction: 0,
            last_io: Instant::now(),
        }
    }

    /// True for RTU framing (serial or over TCP): after a failure, resync instead of reconnecting.
    pub fn is_rtu(&self) -> bool {
        self.framing == Framing::Rtu
    }

    /// True for a dialled-in DTU's link: it outlives the DTU's connections and is kept.
    pub fn is_dtu(&self) -> bool {
        matches!(self.wire, Wire::Dtu(_))
    }

    fn stream(&mut self) -> Result<&mut Box<dyn Stream>, LinkError> {
        match &mut self.wire {
            Wire::Stream(s) => Ok(s),
            Wire::Dtu(_) => Err(io::Error::from(io::ErrorKind::Unsupported).into()),
        }
    }

    /// Sends `req` to `unit` and waits at most `limit` for its answer.
    pub async fn exchange(&mut self, unit: u8, req: &ReadRequest, limit: Duration) -> Result<Answer, LinkError> {
        if let Wire::Dtu(d) = &mut self.wire {
            return d.exchange(unit, req, limit).await;
        }
        let result = match self.framing {
            Framing::Tcp => timeout(limit, self.exchange_tcp(unit, req)).await,
            Framing::Rtu => {
                sleep_until(self.last_io + self.silence).await;
                timeout(limit, self.exchange_rtu(unit, req)).await
            }
        };
        self.last_io = Instant::now();
        result.map_err(|_| LinkError::Timeout(limit))?
    }

    async fn exchange_tcp(&mut self, unit: u8, req: &ReadRequest) -> Result<Answer, LinkError> {
        self.transaction = self.transaction.wrapping_add(1);
        let transaction = self.transaction;
        let stream = self.stream()?;
        stream.write_all(&frame::encode_tcp(transaction, unit, req)).await?;
        let mut buf = [0u8; MBAP_LEN + 256];
        stream.read_exact(&mut buf[..MBAP_LEN]).await?;
        let body = frame::tcp_body_len(&buf[..MBAP_LEN])?;
        stream.read_exact(&mut buf[MBAP_LEN..MBAP_LEN + body]).await?;
        Ok(frame::parse_tcp(&buf[..MBAP_LEN + body], self.transaction, unit, req)?)
    }

    async fn exchange_rtu(&mut self, unit: u8, req: &ReadRequest) -> Result<Answer, LinkError> {
        let stream = self.stream()?;
        stream.write_all(&frame::encode_rtu(unit, req)).await?;
        stream.flush().await?;
        let mut buf = [0u8; MAX_RTU_FRAME];
        let mut len = 0;
        loop {
            let n = stream.read(&mut buf[len..]).await?;
            if n == 0 {
                return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into());
            }
            len += n;
            if let Some(total) = frame::rtu_frame_len(&buf[..len], req)? {
                if total > MAX_RTU_FRAME {
                    return Err(FrameError::WrongByteCount {
                        got: total,
                        expected: req.data_bytes(),
                    }
                    .into());
                }
                if len >= total {
                    return Ok(frame::parse_rtu(&buf[..total], unit, req)?);
                }
            }
        }
    }

    /// Reads and discards until the line has been quiet for the resync window, for at most
    /// `limit`; false if it never fell silent (a babbling device: reopen the link).
    pub async fn resync(&mut self, limit: Duration) -> bool {
        // A DTU's reader cuts frames itself; late ones are discarded by the next exchange.
        let quiet = self.quiet;
        let Wire::Stream(stream) = &mut self.wire else {
            return true;
        };
        let deadline = Instant::now() + limit;
        let mut sink = [0u8; 256];
        loop {
            match timeout(quiet, stream.read(&mut sink)).await {
                Err(_) => {
                    self.last_io = Instant::now();
                    return true;
                }
                Ok(Ok(0)) | Ok(Err(_)) => return false,
                Ok(Ok(_)) if Instant::now() >= deadline => return false,
                Ok(Ok(_)) => {}
            }
        }
    }
}

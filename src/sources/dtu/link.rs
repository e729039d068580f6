//! One request and its answer over a station's current connection.
//!
//! A cellular link delivers answers late: the gateway gave up on a request, sent the next,
//! and the old answer arrives. Every frame received is therefore checked against the request
//! in flight (unit id, function code, byte count; for TCP framing also the transaction id)
//! and an answer to anything else is discarded and counted, never decoded as this answer.
//! Answers queued before a request is sent are late by definition and discarded first.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::time::timeout;

use super::{DtuHub, Session, Station};
use crate::sources::dtu::spec::{DtuFraming, Matcher};
use crate::sources::modbus::frame::{self, Answer, MBAP_LEN, ReadRequest};
use crate::sources::modbus::transport::LinkError;

/// The line task's handle on a station: whichever connection the station has now.
#[derive(Debug)]
pub struct DtuLink {
    hub: Arc<DtuHub>,
    station: Arc<Station>,
    transaction: u16,
}

impl DtuLink {
    /// A handle on `station`.
    pub fn new(hub: Arc<DtuHub>, station: Arc<Station>) -> Self {
        Self {
            hub,
            station,
            transaction: 0,
        }
    }

    /// True if the station has a connection now.
    pub fn connected(&self) -> bool {
        self.station.session().is_some()
    }

    /// Sends `req` to `unit` and waits at most `limit` for its answer. Without a connection,
    /// waits up to `limit` for the DTU to dial in (after a gateway restart or a redial); if
    /// the connection is replaced mid-request, the request goes once more on the new one.
    pub async fn exchange(&mut self, unit: u8, req: &ReadRequest, limit: Duration) -> Result<Answer, LinkError> {
        let deadline = tokio::time::Instant::now() + limit;
        let mut tried: Option<u64> = None;
        loop {
            let session = match self.station.session() {
                Some(s) => s,
                None => {
                    let attached = self.station.attached.notified();
                    if let Some(s) = self.station.session() {
                        s
                    } else if tokio::time::timeout_at(deadline, attached).await.is_err() {
                        return Err(io::Error::new(io::ErrorKind::NotConnected, "the DTU is not connected").into());
                    } else {
                        continue;
                    }
                }
            };
            if tried == Some(session.serial) {
                return Err(io::Error::from(io::ErrorKind::ConnectionReset).into());
            }
            tried = Some(session.serial);
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.exchange_on(&session, unit, req, left).await {
                Err(LinkError::Io(e)) if self.station.session().is_some_and(|s| s.serial != session.serial) => {
                    tracing::debug!(station = %self.station.name(), error = %e, "DTU redialled mid-request; asking again");
                }
                Err(LinkError::Timeout(_)) => return Err(LinkError::Timeout(limit)),
                other => return other,
            }
        }
    }

    async fn exchange_on(
        &mut self,
        session: &Session,
        unit: u8,
        req: &ReadRequest,
        limit: Duration,
    ) -> Result<Answer, LinkError> {
        let mut frames = session.frames.lock().await;
        while frames.try_recv().is_ok() {
            self.hub.late_reply(&self.station);
        }
        self.transaction = next_transaction(self.transaction, self.station.spec.heartbeat.as_ref());
        let bytes: Vec<u8> = match session.framing {
            DtuFraming::Rtu => frame::encode_rtu(unit, req).to_vec(),
            DtuFraming::Tcp => frame::encode_tcp(self.transaction, unit, req).to_vec(),
        };
        {
            let mut w = session.writer.lock().await;
            let written = timeout(limit, async {
                w.write_all(&bytes).await?;
                w.flush().await
            })
            .await;
            match written {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    session.close();
                    return Err(e.into());
                }
                Err(_) => return Err(LinkError::Timeout(limit)),
            }
        }
        let answer = async {
            loop {
                let Some(f) = frames.recv().await else {
                    return Err(LinkError::Io(io::Error::from(io::ErrorKind::ConnectionReset)));
                };
                if self.answers(session.framing, &f, unit, req) {
                    return Ok(match session.framing {
                        DtuFraming::Rtu => frame::parse_rtu(&f, unit, req)?,
                        DtuFraming::Tcp => frame::parse_tcp(&f, self.transaction, unit, req)?,
                    });
                }
                tracing::debug!(station = %self.station.name(), unit, frame = %crate::sources::dtu::spec::hex(&f),
                                "Discarded a late answer to an earlier request");
                self.hub.late_reply(&self.station);
            }
        };
        timeout(limit, answer).await.map_err(|_| LinkError::Timeout(limit))?
    }

    /// True if frame `f` answers `req` to `unit` (and, for TCP, the transaction in flight).
    fn answers(&self, framing: DtuFraming, f: &[u8], unit: u8, req: &ReadRequest) -> bool {
        let (head, pdu) = match framing {
            DtuFraming::Rtu if f.len() >= 5 => (f[0], &f[1..f.len() - 2]),
            DtuFraming::Tcp if f.len() > MBAP_LEN => {
                if u16::from_be_bytes([f[0], f[1]]) != self.transaction {
                    return false;
                }
                (f[6], &f[MBAP_LEN..])
            }
            _ => return false,
        };
        matches_request(head, pdu, unit, req)
    }
}

/// The transaction id after `prev`, skipping ids an answer would open with the heartbeat's
/// bytes (or their start): such an answer reads as a heartbeat at a frame boundary and its
/// rest as garbage. With a one-byte heartbeat that is 256 ids of 65,536.
fn next_transaction(prev: u16, heartbeat: Option<&Matcher>) -> u16 {
    let opens_like_heartbeat = |t: u16| {
        let [hi, lo] = t.to_be_bytes();
        heartbeat.is_some_and(|hb| hb.could_complete(&[hi, lo]) || hb.match_len(&[hi, lo, 0, 0, 0]).is_some())
    };
    (1..=u16::MAX)
        .map(|step| prev.wrapping_add(step))
        .find(|&t| !opens_like_heartbeat(t))
        .unwrap_or_else(|| prev.wrapping_add(1))
}

/// Unit, function and byte count of an answer PDU agree with the request.
pub fn matches_request(answer_unit: u8, pdu: &[u8], unit: u8, req: &ReadRequest) -> bool {
    let fc = req.function.code();
    match pdu {
        [f, _] if answer_unit == unit && *f == fc | 0x80 => true,
        [f, bc, data @ ..] => {
            answer_unit == unit && *f == fc && usize::from(*bc) == req.data_bytes() && data.len() == req.data_bytes()
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::modbus::register::RegisterFunction;

    #[test]
    fn transaction_ids_never_open_like_the_heartbeat() {
        let fefe = Matcher::Bytes(vec![0xfe, 0xfe]);
        assert_eq!(next_transaction(0xfefd, Some(&fefe)), 0xfeff);
        assert_eq!(next_transaction(0xfefd, None), 0xfefe);
        assert_eq!(next_transaction(u16::MAX, Some(&fefe)), 0);
        // A one-byte heartbeat rules out every id whose high byte it is.
        let zero = Matcher::Bytes(vec![0x00]);
        assert_eq!(next_transaction(u16::MAX, Some(&zero)), 0x0100);
        // A heartbeat that starts like a whole MBAP header start: id 0x0102 would read as it.
        let long = Matcher::Bytes(vec![0x01, 0x02, 0x00, 0x00]);
        assert_eq!(next_transaction(0x0101, Some(&long)), 0x0103);
        let text = Matcher::Bytes(b"HB:1;".to_vec());
        assert_eq!(
            next_transaction(u16::from_be_bytes(*b"HA"), Some(&text)),
            u16::from_be_bytes(*b"HC")
        );
        // Every id is skipped at most once in a full turn.
        let mut t = 0;
        let mut seen = std::collections::HashSet::new();
        for _ in 0..65_536 - 256 {
            t = next_transaction(t, Some(&zero));
            assert!(t >> 8 != 0 && seen.insert(t), "{t:#06x}");
        }
    }

    #[test]
    fn an_answer_matches_only_its_unit_function_and_length() {
        let req = ReadRequest {
            function: RegisterFunction::Holding,
            start: 0,
            count: 2,
        };
        assert!(matches_request(1, &[3, 4, 0, 1, 0, 2], 1, &req));
        assert!(matches_request(1, &[0x83, 2], 1, &req), "an exception answers too");
        assert!(!matches_request(2, &[3, 4, 0, 1, 0, 2], 1, &req), "another unit");
        assert!(!matches_request(1, &[4, 4, 0, 1, 0, 2], 1, &req), "another function");
        assert!(!matches_request(1, &[3, 2, 0, 1], 1, &req), "an earlier, shorter read");
    }
}

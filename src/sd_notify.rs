//! The service manager's notification protocol (systemd's `sd_notify(3)`): tell it when the
//! gateway is ready, keep its watchdog fed while alarm evaluation is healthy, and say when it
//! is stopping or reloading.
//!
//! Design: the protocol is one datagram of `KEY=VALUE` lines sent to the `AF_UNIX` socket named
//! by `NOTIFY_SOCKET` (a path, or an abstract name written with a leading `@`). That is a few
//! lines over `std::os::unix::net::UnixDatagram`, so no crate (and no `libsystemd` link) is
//! needed and the binary stays static. The socket is non-blocking: a service manager that does
//! not read never stalls the gateway; a failed send is logged, never fatal. Without
//! `NOTIFY_SOCKET` (a shell, Docker, a test) every call is a no-op.
//!
//! The watchdog (`WatchdogSec=` in the unit, passed as `WATCHDOG_USEC`) is fed at half its
//! period, and only while the health check passes: when the rules engine stalls the pings stop
//! and systemd restarts the gateway, instead of keeping a process alive that would miss alarms.

use std::io;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

/// Why the notification socket named in the environment cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// `NOTIFY_SOCKET` is not a path or an `@abstract` name.
    #[error("NOTIFY_SOCKET `{0}` is neither an absolute path nor an @abstract name")]
    BadAddress(String),
    /// The client socket could not be made.
    #[error("cannot open a socket for NOTIFY_SOCKET `{addr}`: {source}")]
    Socket {
        /// The address given.
        addr: String,
        /// Cause.
        source: io::Error,
    },
    /// `WATCHDOG_USEC` is not a positive number of microseconds.
    #[error("WATCHDOG_USEC `{0}` is not a positive number of microseconds")]
    BadWatchdog(String),
}

/// A connection to the service manager.
#[derive(Debug)]
pub struct Notifier {
    socket: UnixDatagram,
    addr: SocketAddr,
    /// The watchdog period the service manager expects, if it runs one for this process.
    watchdog: Option<Duration>,
}

impl Notifier {
    /// The notifier the service manager asked for through the environment of this process,
    /// or `None` when it did not ask.
    pub fn from_env() -> Result<Option<Notifier>, NotifyError> {
        let var = |k: &str| std::env::var(k).ok();
        Self::from_vars(
            var("NOTIFY_SOCKET").as_deref(),
            var("WATCHDOG_USEC").as_deref(),
            var("WATCHDOG_PID").as_deref(),
            std::process::id(),
        )
    }

    /// The notifier for these environment values (`pid`: this process, since `WATCHDOG_PID`
    /// names the one process the watchdog is meant for).
    pub fn from_vars(
        notify_socket: Option<&str>,
        watchdog_usec: Option<&str>,
        watchdog_pid: Option<&str>,
        pid: u32,
    ) -> Result<Option<Notifier>, NotifyError> {
        let Some(name) = notify_socket.filter(|s| !s.is_empty()) else {
            return Ok(None);
        };
        let addr = socket_addr(name)?;
        let socket = UnixDatagram::unbound()
            .and_then(|s| s.set_nonblocking(true).map(|()| s))
            .map_err(|source| NotifyError::Socket {
                addr: name.to_string(),
                source,
            })?;
        let for_us = watchdog_pid.is_none_or(|p| p.trim() == pid.to_string());
        let watchdog = match watchdog_usec.filter(|_| for_us) {
            None => None,
            Some(text) => match text.trim().parse::<u64>() {
                Ok(us) if us > 0 => Some(Duration::from_micros(us)),
                _ => return Err(NotifyError::BadWatchdog(text.to_string())),
            },
        };
        Ok(Some(Notifier { socket, addr, watchdog }))
    }

    /// Sends one notification (`READY=1`, `STATUS=…`; several lines allowed).
    pub fn notify(&self, message: &str) -> io::Result<()> {
        self.socket.send_to_addr(message.as_bytes(), &self.addr).map(|_| ())
    }

    /// Sends `message`, logging (not returning) a failure: the service manager's attention is
    /// useful, never a reason to stop monitoring.
    pub fn send(&self, message: &str) {
        match self.notify(message) {
            Ok(()) => debug!(message, "Notified the service manager"),
            Err(e) => warn!(error = %e, message, "Cannot notify the service manager"),
        }
    }

    /// The watchdog period the service manager expects, if any.
    pub fn watchdog(&self) -> Option<Duration> {
        self.watchdog
    }
}

fn socket_addr(name: &str) -> Result<SocketAddr, NotifyError> {
    let bad = || NotifyError::BadAddress(name.to_string());
    if let Some(abstract_name) = name.strip_prefix('@') {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            use std::os::linux::net::SocketAddrExt;
            return SocketAddr::from_abstract_name(abstract_name.as_bytes()).map_err(|_| bad());
        }
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        {
            let _ = abstract_name;
            return Err(bad());
        }
    }
    if !name.starts_with('/') {
        return Err(bad());
    }
    SocketAddr::from_pathname(name).map_err(|_| bad())
}

/// Feeds the watchdog at half its period while `check` finds no problem, until `stop` fires.
/// Returns at once when the service manager runs no watchdog for this process.
pub async fn run_watchdog<F>(notifier: std::sync::Arc<Notifier>, check: F, stop: CancellationToken)
where
    F: Fn() -> Vec<String> + Send,
{
    let Some(period) = notifier.watchdog() else {
        return;
    };
    let mut tick = tokio::time::interval(period / 2);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut healthy = true;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let problems = check();
        if problems.is_empty() {
            if !healthy {
                info!("Gateway healthy again; feeding the service manager's watchdog");
            }
            healthy = true;
            notifier.send("WATCHDOG=1");
        } else {
            if healthy {
                warn!(problems = %problems.join("; "), "Gateway unhealthy; the service manager's watchdog is no longer fed and will restart it");
            }
            healthy = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    fn listener() -> (tempfile::TempDir, UnixDatagram, String) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let sock = UnixDatagram::bind(&path).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let name = path.to_str().unwrap().to_string();
        (dir, sock, name)
    }

    fn recv(sock: &UnixDatagram) -> String {
        let mut buf = [0u8; 512];
        let n = sock.recv(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[test]
    fn no_notify_socket_means_no_notifier() {
        assert!(Notifier::from_vars(None, Some("1000"), None, 1).unwrap().is_none());
        assert!(Notifier::from_vars(Some(""), None, None, 1).unwrap().is_none());
    }

    #[test]
    fn bad_environment_values_are_explained() {
        let e = Notifier::from_vars(Some("relative.sock"), None, None, 1).unwrap_err();
        assert_eq!(
            e.to_string(),
            "NOTIFY_SOCKET `relative.sock` is neither an absolute path nor an @abstract name"
        );
        let e = Notifier::from_vars(Some("/run/x.sock"), Some("soon"), None, 1).unwrap_err();
        assert_eq!(
            e.to_string(),
            "WATCHDOG_USEC `soon` is not a positive number of microseconds"
        );
    }

    #[test]
    fn a_watchdog_meant_for_another_process_is_ignored() {
        let n = Notifier::from_vars(Some("/run/x.sock"), Some("2000000"), Some("7"), 8)
            .unwrap()
            .unwrap();
        assert_eq!(n.watchdog(), None);
        let n = Notifier::from_vars(Some("/run/x.sock"), Some("2000000"), Some("8"), 8)
            .unwrap()
            .unwrap();
        assert_eq!(n.watchdog(), Some(Duration::from_secs(2)));
    }

    #[test]
    fn notifications_reach_a_path_socket() {
        let (_dir, sock, name) = listener();
        let n = Notifier::from_vars(Some(&name), None, None, 1).unwrap().unwrap();
        n.notify("READY=1\nSTATUS=up").unwrap();
        assert_eq!(recv(&sock), "READY=1\nSTATUS=up");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn notifications_reach_an_abstract_socket() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("hazard-gateway-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let sock = UnixDatagram::bind_addr(&addr).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let n = Notifier::from_vars(Some(&format!("@{name}")), None, None, 1)
            .unwrap()
            .unwrap();
        n.notify("STOPPING=1").unwrap();
        assert_eq!(recv(&sock), "STOPPING=1");
    }

    #[tokio::test]
    async fn the_watchdog_is_fed_only_while_healthy() {
        let (_dir, sock, name) = listener();
        sock.set_nonblocking(true).unwrap();
        let n = Arc::new(
            Notifier::from_vars(Some(&name), Some("40000"), None, 1)
                .unwrap()
                .unwrap(),
        );
        let healthy = Arc::new(AtomicBool::new(true));
        let stop = CancellationToken::new();
        let h = healthy.clone();
        let check = move || {
            if h.load(Ordering::SeqCst) {
                Vec::new()
            } else {
                vec!["rules engine silent for 6 s".to_string()]
            }
        };
        let task = tokio::spawn(run_watchdog(n, check, stop.clone()));
        let mut buf = [0u8; 64];
        let mut pings = 0;
        for _ in 0..200 {
            if let Ok(len) = sock.recv(&mut buf) {
                assert_eq!(&buf[..len], b"WATCHDOG=1");
                pings += 1;
                if pings == 2 {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(pings, 2, "a healthy gateway feeds the watchdog");
        healthy.store(false, Ordering::SeqCst);
        // One tick may have passed its check before the flip; after that, silence.
        tokio::time::sleep(Duration::from_millis(50)).await;
        while sock.recv(&mut buf).is_ok() {}
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(
            sock.recv(&mut buf).is_err(),
            "an unhealthy gateway starves the watchdog"
        );
        stop.cancel();
        task.await.unwrap();
    }
}

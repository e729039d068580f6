//! Shared helpers for whole-system tests: real servers on free loopback ports, private data
//! dirs, readiness by polling, and processes killed on `Drop`.

#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use hazard_gateway::clock;
use hazard_gateway::config::{GatewayConfig, ProfileSet};
use hazard_gateway::pipeline::Gateway;
use hazard_gateway::sources::sim::{Scenario, Simulator};

/// Generous bound for conditions that normally hold within a second or two.
pub const WAIT: Duration = Duration::from_secs(30);

/// Polls `check` every 50 ms until it returns `Some`, or panics with `what` after `limit`.
pub async fn wait_for<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A port that was free a moment ago, for servers that cannot bind port 0 themselves.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

/// A built-in profile by name.
pub fn profile(name: &str) -> hazard_gateway::config::Profile {
    ProfileSet::builtin()
        .expect("built-in profiles")
        .get(name)
        .cloned()
        .expect("profile exists")
}

/// Starts our simulator for a built-in profile on a free loopback port.
pub async fn simulator(name: &str, scenario: Option<Scenario>) -> Simulator {
    Simulator::start(profile(name), "127.0.0.1:0".parse().unwrap(), scenario)
        .await
        .expect("simulator starts")
}

/// A gateway started in-process from config text, with a private data dir.
pub struct TestGateway {
    pub gateway: Option<Gateway>,
    pub base: String,
    pub http: reqwest::Client,
    pub dir: tempfile::TempDir,
}

impl TestGateway {
    /// Validates `config` (its API should listen on port 0) and starts it.
    pub async fn start(config: &str) -> TestGateway {
        let dir = tempfile::tempdir().expect("temp dir");
        let cfg = GatewayConfig::parse(&dir.path().join("test.toml"), config).unwrap_or_else(|e| panic!("config: {e}"));
        let gateway = Gateway::start(cfg, dir.path(), clock::system())
            .await
            .expect("gateway starts");
        let base = format!("http://{}", gateway.api_addr);
        TestGateway {
            gateway: Some(gateway),
            base,
            http: reqwest::Client::new(),
            dir,
        }
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// GET a JSON document from the API.
    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("API answers");
        assert!(resp.status().is_success(), "GET {path}: {}", resp.status());
        resp.json().await.expect("JSON body")
    }

    /// The current view of one point from `/api/v1/points`.
    pub async fn point(&self, id: &str) -> serde_json::Value {
        let points = self.get_json("/api/v1/points").await;
        points
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("no point {id}"))
    }

    /// Stops the gateway in order (flushes history).
    pub async fn shutdown(&mut self) {
        if let Some(g) = self.gateway.take() {
            g.shutdown().await;
        }
    }
}

/// An independent Modbus TCP peer (pymodbus) serving fixed registers; killed on drop.
pub struct PyModbusPeer {
    child: Child,
    pub addr: SocketAddr,
    /// The spec file of a `start_spec` peer, removed on drop.
    spec: Option<tempfile::TempPath>,
}

impl PyModbusPeer {
    /// Serves `holding` and `input` words from address 0.
    pub fn start(holding: &[u16], input: &[u16]) -> PyModbusPeer {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/modbus_peer.py");
        let join = |w: &[u16]| w.iter().map(u16::to_string).collect::<Vec<_>>().join(",");
        for _ in 0..5 {
            let port = free_port();
            let child = Command::new("python3")
                .arg(&script)
                .arg(port.to_string())
                .arg(join(holding))
                .arg(join(input))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("python3 runs (install pymodbus: .ci/run does)");
            let mut peer = PyModbusPeer {
                child,
                addr: SocketAddr::from(([127, 0, 0, 1], port)),
                spec: None,
            };
            if peer.wait_ready() {
                return peer;
            }
        }
        panic!("pymodbus peer did not start; is pymodbus installed? (`.ci/run` installs it)");
    }

    fn wait_ready(&mut self) -> bool {
        for _ in 0..200 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if TcpStream::connect_timeout(&self.addr, Duration::from_millis(100)).is_ok() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }
}

impl Drop for PyModbusPeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Path of the built binary, for CLI tests.
pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_hazard-gateway"))
}

/// Counts rows matching `sql` (which must select one integer) in a SQLite file.
pub fn sqlite_count(db: &Path, sql: &str, params: impl rusqlite::Params) -> i64 {
    let conn = rusqlite::Connection::open(db).expect("open sqlite");
    conn.query_row(sql, params, |r| r.get(0)).expect("query")
}

impl PyModbusPeer {
    /// Serves a spec (see `modbus_peer.py --spec`): its `transport` is `tcp` or `rtu_over_tcp`
    /// (the port is filled in here) or `rtu` on `serial`. Over TCP, ready once it accepts;
    /// over a serial line, once the process has printed READY (callers then poll for data).
    pub fn start_spec(mut spec: serde_json::Value) -> PyModbusPeer {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/modbus_peer.py");
        let serial = spec["transport"] == "rtu";
        for _ in 0..5 {
            let port = free_port();
            spec["port"] = port.into();
            let file = tempfile::NamedTempFile::new().expect("temp file");
            std::fs::write(file.path(), spec.to_string()).expect("write spec");
            let path = file.into_temp_path();
            let mut child = Command::new("python3")
                .arg(&script)
                .arg("--spec")
                .arg(&path)
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("python3 runs (install pymodbus: .ci/run does)");
            if serial {
                use std::io::BufRead;
                let out = child.stdout.take().expect("stdout");
                let mut line = String::new();
                let _ = std::io::BufReader::new(out).read_line(&mut line);
                assert_eq!(line.trim(), "READY", "pymodbus serial peer did not start");
                return PyModbusPeer {
                    child,
                    addr: SocketAddr::from(([127, 0, 0, 1], 0)),
                    spec: Some(path),
                };
            }
            let mut peer = PyModbusPeer {
                child,
                addr: SocketAddr::from(([127, 0, 0, 1], port)),
                spec: Some(path),
            };
            if peer.wait_ready() {
                return peer;
            }
        }
        panic!("pymodbus peer did not start; is pymodbus installed? (`.ci/run` installs it)");
    }
}

/// A pseudo-terminal pair joined by socat: what one end writes the other reads, like two
/// devices on one serial cable. Killed on drop.
pub struct PtyPair {
    child: Child,
    /// The gateway's end.
    pub a: PathBuf,
    /// The device's end.
    pub b: PathBuf,
    _dir: tempfile::TempDir,
}

impl PtyPair {
    /// Starts socat (installed by `.ci/run`) and waits for both ends to exist.
    pub fn start() -> PtyPair {
        let dir = tempfile::tempdir().expect("temp dir");
        let (a, b) = (dir.path().join("gw"), dir.path().join("dev"));
        let child = Command::new("socat")
            .arg(format!("pty,raw,echo=0,link={}", a.display()))
            .arg(format!("pty,raw,echo=0,link={}", b.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("socat runs (.ci/run installs it)");
        let mut pair = PtyPair { child, a, b, _dir: dir };
        for _ in 0..200 {
            if pair.a.exists() && pair.b.exists() {
                return pair;
            }
            if let Ok(Some(status)) = pair.child.try_wait() {
                panic!("socat exited: {status}");
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("socat pty pair did not appear");
    }
}

impl Drop for PtyPair {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl TestGateway {
    /// The health of one device from `/api/v1/devices`.
    pub async fn device(&self, name: &str) -> serde_json::Value {
        let devices = self.get_json("/api/v1/devices").await;
        devices
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no device {name}"))
    }
}

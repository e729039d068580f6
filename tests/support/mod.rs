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

    /// POST a JSON body; returns the status and the JSON answer.
    pub async fn post_json(&self, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .expect("API answers");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// The visible alarm with this id, if any.
    pub async fn alarm(&self, id: &str) -> Option<serde_json::Value> {
        let alarms = self.get_json("/api/v1/alarms").await;
        alarms.as_array()?.iter().find(|a| a["alarm_id"] == id).cloned()
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

/// The gateway binary running as a child process on a free loopback port; SIGKILLed on drop.
pub struct GatewayProcess {
    child: Child,
    pub base: String,
    pub http: reqwest::Client,
}

impl GatewayProcess {
    /// Runs `hazard-gateway run --config <config>`; the config must listen on `port`.
    pub async fn start(config: &Path, port: u16) -> GatewayProcess {
        let args = [
            std::ffi::OsStr::new("--log-format"),
            "json".as_ref(),
            "run".as_ref(),
            "--config".as_ref(),
            config.as_os_str(),
        ];
        Self::spawn(&args, port).await
    }

    /// Runs the binary with `args`; its API must listen on `port`.
    pub async fn spawn(args: &[&std::ffi::OsStr], port: u16) -> GatewayProcess {
        let child = Command::new(binary())
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("gateway binary starts");
        let p = GatewayProcess {
            child,
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
        };
        wait_for("the gateway API", WAIT, || async {
            p.http
                .get(format!("{}/healthz", p.base))
                .send()
                .await
                .ok()
                .filter(|r| r.status().is_success())
        })
        .await;
        p
    }

    /// GET a JSON document.
    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("API answers");
        resp.json().await.expect("JSON body")
    }

    /// POST a JSON body; returns status and answer.
    pub async fn post_json(&self, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .expect("API answers");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// Sends a signal (`"TERM"`, `"KILL"`) and waits for the process to end.
    pub fn signal_and_wait(&mut self, signal: &str) -> std::process::ExitStatus {
        let ok = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status();
        assert!(ok.is_ok_and(|s| s.success()), "kill -{signal}");
        for _ in 0..400 {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("gateway did not exit within 20 s of SIG{signal}");
    }

    /// Everything the process wrote to stderr so far (after it has exited).
    pub fn stderr(&mut self) -> String {
        let mut out = String::new();
        if let Some(e) = self.child.stderr.as_mut() {
            let _ = std::io::Read::read_to_string(e, &mut out);
        }
        out
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

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

/// A simulated 4G DTU that dials in to the gateway.
pub mod alarms;
pub mod console;
pub mod dtu;
pub mod mqtt;
pub mod pair;

/// An independent reference for the uplink ciphers (Python `gmssl` and `cryptography`).
pub mod seal_ref;

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
        // A check that never returns (a request to a server that accepted but never answers)
        // must end the wait at its deadline, not hang the test.
        let checked = tokio::time::timeout_at(deadline, check()).await;
        let Ok(checked) = checked else {
            panic!("timed out after {limit:?} waiting for {what}: the last check had not returned");
        };
        if let Some(v) = checked {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The HTTP client of the test helpers: every request gives up when the server accepts but
/// never answers (a stopped process, a relay that holds the connection) instead of hanging the
/// test. Reads are bounded, not whole responses: the event feed streams for minutes and sends a
/// keep-alive every 15 s.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .read_timeout(Duration::from_secs(30))
        .build()
        .expect("an HTTP client")
}

/// A port for a server that cannot bind port 0 itself, or that a test stops and starts again
/// on the same port.
///
/// It comes from below the kernel's ephemeral range, so no outgoing connection of any test can
/// take it while its server is down for a restart (which made a restarted server fail to bind,
/// or a test talk to another test's server). A lock file per port under the temporary
/// directory reserves it across the test processes that run at once; the lock is held until
/// this process ends. Falls back to an ephemeral port when the range below is too small.
pub fn free_port() -> u16 {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU32, Ordering};
    static HELD: Mutex<Vec<std::fs::File>> = Mutex::new(Vec::new());
    static TRIES: AtomicU32 = AtomicU32::new(0);
    const LOW: u32 = 10_000;
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32_768);
    let dir = std::env::temp_dir().join("hazard-gateway-test-ports");
    if ephemeral_low >= LOW + 2_000 && std::fs::create_dir_all(&dir).is_ok() {
        let span = ephemeral_low - LOW;
        // Processes start from different places so that they rarely contend for a lock.
        let seed = std::process::id().wrapping_mul(7_919);
        for _ in 0..span {
            let port = LOW + seed.wrapping_add(TRIES.fetch_add(1, Ordering::Relaxed)) % span;
            let Ok(file) = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(dir.join(port.to_string()))
            else {
                continue;
            };
            if rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_err() {
                continue;
            }
            let port = port as u16;
            if TcpListener::bind(("127.0.0.1", port)).is_ok() {
                HELD.lock().unwrap_or_else(|e| e.into_inner()).push(file);
                return port;
            }
        }
    }
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

/// GET `base + path` and parse the JSON answer, which must be a success.
pub async fn api_get(http: &reqwest::Client, base: &str, path: &str) -> serde_json::Value {
    let resp = http.get(format!("{base}{path}")).send().await.expect("API answers");
    assert!(resp.status().is_success(), "GET {path}: {}", resp.status());
    resp.json().await.expect("JSON body")
}

/// POST a JSON body to `base + path`; returns the status and the JSON answer (null if none).
pub async fn api_post(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    let resp = http
        .post(format!("{base}{path}"))
        .json(&body)
        .send()
        .await
        .expect("API answers");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(serde_json::Value::Null))
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
            http: http_client(),
            dir,
        }
    }

    /// Starts `config` in `dir` (which may hold files from an earlier run) on `clock`.
    pub async fn start_with(config: &str, dir: tempfile::TempDir, clock: clock::SharedClock) -> TestGateway {
        let cfg = GatewayConfig::parse(&dir.path().join("test.toml"), config).unwrap_or_else(|e| panic!("config: {e}"));
        let gateway = Gateway::start(cfg, dir.path(), clock).await.expect("gateway starts");
        let base = format!("http://{}", gateway.api_addr);
        TestGateway {
            gateway: Some(gateway),
            base,
            http: http_client(),
            dir,
        }
    }

    /// The running gateway's metric handles.
    pub fn metric_handles(&self) -> &hazard_gateway::telemetry::Metrics {
        &self.gateway.as_ref().expect("gateway running").metrics
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// GET a JSON document from the API.
    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        api_get(&self.http, &self.base, path).await
    }

    /// POST a JSON body; returns the status and the JSON answer.
    pub async fn post_json(&self, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        api_post(&self.http, &self.base, path, body).await
    }

    /// The Prometheus text of `/metrics`.
    pub async fn metrics(&self) -> String {
        let resp = self
            .http
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .expect("API answers");
        resp.text().await.expect("metrics text")
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
        wait_tcp(&mut self.child, self.addr)
    }
}

impl Drop for PyModbusPeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls until `addr` accepts a TCP connection; false if `child` exits first or after ~10 s.
pub fn wait_tcp(child: &mut Child, addr: SocketAddr) -> bool {
    for _ in 0..200 {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
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
    /// What the process wrote to stderr so far, read as it comes by `stderr_reader` so a
    /// gateway that logs a lot never blocks on a full pipe.
    stderr_seen: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    stderr_reader: Option<std::thread::JoinHandle<()>>,
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
        Self::spawn_with_env(args, port, &[]).await
    }

    /// Like [`GatewayProcess::spawn`], with extra environment variables (secrets).
    pub async fn spawn_with_env(args: &[&std::ffi::OsStr], port: u16, env: &[(&str, &str)]) -> GatewayProcess {
        let mut p = Self::spawn_unchecked(args, port, env);
        p.wait_up().await;
        p
    }

    /// Starts the binary without waiting for its API (a test that holds the API's port
    /// first); [`GatewayProcess::wait_up`] waits for it.
    pub fn spawn_unchecked(args: &[&std::ffi::OsStr], port: u16, env: &[(&str, &str)]) -> GatewayProcess {
        let mut child = Command::new(binary())
            .args(args)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("gateway binary starts");
        let stderr_seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let stderr_reader = child.stderr.take().map(|mut pipe| {
            let seen = stderr_seen.clone();
            std::thread::spawn(move || {
                let mut chunk = [0u8; 8192];
                while let Ok(n @ 1..) = std::io::Read::read(&mut pipe, &mut chunk) {
                    seen.lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .extend_from_slice(&chunk[..n]);
                }
            })
        });
        GatewayProcess {
            child,
            base: format!("http://127.0.0.1:{port}"),
            http: http_client(),
            stderr_seen,
            stderr_reader,
        }
    }

    /// Waits until the API answers `/healthz`; fails with the log's end if the process exits
    /// or [`WAIT`] passes first.
    pub async fn wait_up(&mut self) {
        let p = self;
        let deadline = tokio::time::Instant::now() + WAIT;
        let failed = loop {
            // A gateway that exited (its port taken, a bad config) is reported at once: an
            // answer on its port would come from some other server.
            if let Ok(Some(status)) = p.child.try_wait() {
                break format!("the gateway exited ({status}) before its API on {} answered", p.base);
            }
            let probe = p.http.get(format!("{}/healthz", p.base)).send();
            let ok = tokio::time::timeout(Duration::from_secs(2), probe).await;
            if ok.is_ok_and(|r| r.is_ok_and(|r| r.status().is_success())) {
                if let Ok(Some(status)) = p.child.try_wait() {
                    break format!("the gateway exited ({status}) although {} answered", p.base);
                }
                return;
            }
            if tokio::time::Instant::now() >= deadline {
                break format!("timed out after {WAIT:?} waiting for the gateway API on {}", p.base);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let _ = p.child.kill();
        let _ = p.child.wait();
        let log = p.stderr();
        panic!("{failed}; its log ends:\n{}", tail(&log, 4000));
    }

    /// GET a JSON document.
    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        api_get(&self.http, &self.base, path).await
    }

    /// The Prometheus text of `/metrics`.
    pub async fn metrics(&self) -> String {
        self.try_metrics().await.expect("/metrics answers")
    }

    /// The Prometheus text of `/metrics`, or `None` while the API does not answer (for
    /// polling across a restart).
    pub async fn try_metrics(&self) -> Option<String> {
        let resp = self.http.get(format!("{}/metrics", self.base)).send().await.ok()?;
        resp.text().await.ok()
    }

    /// POST a JSON body; returns status and answer.
    pub async fn post_json(&self, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        api_post(&self.http, &self.base, path, body).await
    }

    /// Its process id (to send it signals).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends a signal (`"STOP"`, `"CONT"`, `"TERM"`) without waiting.
    pub fn signal(&self, signal: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status();
        assert!(ok.is_ok_and(|s| s.success()), "kill -{signal}");
    }

    /// Sends a signal (`"TERM"`, `"KILL"`) and waits for the process to end.
    pub fn signal_and_wait(&mut self, signal: &str) -> std::process::ExitStatus {
        self.signal(signal);
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
        if let Some(reader) = self.stderr_reader.take() {
            let _ = reader.join();
        }
        self.stderr_so_far()
    }

    /// What the process has written to stderr until now, while it runs.
    pub fn stderr_so_far(&self) -> String {
        String::from_utf8_lossy(&self.stderr_seen.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }
}

/// The last `bytes` of `log` (from a character boundary).
fn tail(log: &str, bytes: usize) -> &str {
    let from = log.len().saturating_sub(bytes);
    let from = (from..log.len())
        .find(|&i| log.is_char_boundary(i))
        .unwrap_or(log.len());
    &log[from..]
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // A failing test shows what each of its gateways said last: a flaky failure is then
        // explained by the run that failed, not by trying to reproduce it.
        if std::thread::panicking() {
            let log = self.stderr_so_far();
            eprintln!("--- the gateway at {} logged last:\n{}", self.base, tail(&log, 6000));
        }
    }
}

/// Polls a TCP/HTTP readiness check for a child process; false if it exited or timed out.
fn wait_http_ok(child: &mut Child, url: &str, limit: Duration) -> bool {
    let client = probe::blocking_probe();
    // Bounded by attempts (50 ms apart, plus at most 2 s of read timeout each).
    for _ in 0..(limit.as_millis() / 50).max(1) {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        if client(url) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

mod probe {
    /// A tiny blocking HTTP GET probe over std TCP: true when the answer is 2xx.
    pub fn blocking_probe() -> impl Fn(&str) -> bool {
        |url: &str| {
            use std::io::{Read, Write};
            let rest = url.trim_start_matches("http://");
            let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
            let Ok(mut s) = std::net::TcpStream::connect(host) else {
                return false;
            };
            let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(2)));
            let req = format!("GET /{path} HTTP/1.0\r\nHost: {host}\r\n\r\n");
            if s.write_all(req.as_bytes()).is_err() {
                return false;
            }
            let mut buf = [0u8; 16];
            let n = s.read(&mut buf).unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..n]);
            head.starts_with("HTTP/1.1 2") || head.starts_with("HTTP/1.0 2")
        }
    }
}

/// Debian's VictoriaMetrics on a free loopback port with a private data dir; killed on drop.
/// Keeps samples for 100 years (its default retention silently drops old samples) and
/// serves queries without its 30 s latency offset.
pub struct VictoriaMetrics {
    child: ServerChild,
    pub port: u16,
    pub dir: tempfile::TempDir,
    /// With HTTPS: the site CA (PEM) that signed its certificate (`cert.pem` beside it).
    pub tls_cert: Option<PathBuf>,
    /// A Prometheus-style scrape config it follows (`-promscrape.config`).
    scrape_config: Option<PathBuf>,
}

impl VictoriaMetrics {
    pub fn start() -> VictoriaMetrics {
        Self::start_with(false)
    }

    /// Also scrapes the targets of `config` (Prometheus `scrape_configs`), as a park's
    /// VictoriaMetrics scrapes each gateway's /metrics.
    pub fn start_scraping(config: &Path) -> VictoriaMetrics {
        Self::start_from(false, Some(config.to_path_buf()))
    }

    /// Serves HTTPS with a certificate for 127.0.0.1 from a test site CA made by `openssl`.
    pub fn start_tls() -> VictoriaMetrics {
        Self::start_with(true)
    }

    fn start_with(tls: bool) -> VictoriaMetrics {
        Self::start_from(tls, None)
    }

    fn start_from(tls: bool, scrape_config: Option<PathBuf>) -> VictoriaMetrics {
        for _ in 0..5 {
            let dir = tempfile::tempdir().expect("temp dir");
            let tls_cert = tls.then(|| self_signed_cert(dir.path()));
            let mut vm = VictoriaMetrics {
                child: ServerChild::default(),
                port: free_port(),
                dir,
                tls_cert,
                scrape_config: scrape_config.clone(),
            };
            if vm.spawn() {
                return vm;
            }
        }
        panic!("victoria-metrics did not start; is it installed? (`.ci/run` installs it)");
    }

    fn spawn(&mut self) -> bool {
        let mut cmd = Command::new("victoria-metrics");
        if let Some(ca) = &self.tls_cert {
            let dir = ca.parent().expect("cert dir");
            cmd.arg("-tls")
                .arg(format!("-tlsCertFile={}", dir.join("cert.pem").display()))
                .arg(format!("-tlsKeyFile={}", dir.join("cert.key").display()));
        }
        if let Some(config) = &self.scrape_config {
            cmd.arg(format!("-promscrape.config={}", config.display()));
        }
        let mut child = cmd
            .arg(format!("-storageDataPath={}", self.dir.path().display()))
            .arg(format!("-httpListenAddr=127.0.0.1:{}", self.port))
            .arg("-retentionPeriod=100y")
            .arg("-search.latencyOffset=0s")
            .arg("-loggerLevel=ERROR")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("victoria-metrics runs (`.ci/run` installs it)");
        let ok = if self.tls_cert.is_some() {
            wait_tcp(&mut child, SocketAddr::from(([127, 0, 0, 1], self.port)))
        } else {
            wait_http_ok(&mut child, &format!("http://127.0.0.1:{}/health", self.port), WAIT)
        };
        self.child.set(child);
        ok
    }

    /// Base URL.
    pub fn url(&self) -> String {
        let scheme = if self.tls_cert.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    fn client(&self) -> reqwest::Client {
        let mut b = reqwest::Client::builder();
        if let Some(cert) = &self.tls_cert {
            let pem = std::fs::read(cert).expect("read certificate");
            b = b.add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("PEM certificate"));
        }
        b.build().expect("HTTP client")
    }

    /// Kills the server (the store goes away abruptly, as in a real outage).
    pub fn kill(&mut self) {
        self.child.kill();
    }

    /// Stops the server the orderly way (SIGTERM), so it flushes what it acknowledged.
    /// (SIGKILL loses VictoriaMetrics' last second of acknowledged samples, which are still
    /// in its memory: a fault of the store, not of the gateway.)
    pub fn stop(&mut self) {
        self.child.terminate();
    }

    /// Starts it again on the same port and data dir.
    pub fn restart(&mut self) {
        self.stop();
        respawn("victoria-metrics", self.port, || self.spawn());
    }

    /// Every series matching `selector`: (labels, timestamps in ms, values), after a flush.
    pub async fn export(&self, selector: &str) -> Vec<(serde_json::Value, Vec<i64>, Vec<f64>)> {
        let http = self.client();
        let _ = http.get(format!("{}/internal/force_flush", self.url())).send().await;
        let text = http
            .post(format!("{}/api/v1/export", self.url()))
            .form(&[("match[]", selector)])
            .send()
            .await
            .expect("export answers")
            .text()
            .await
            .expect("export body");
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).expect("export line is JSON");
                let ts = v["timestamps"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|t| t.as_i64().unwrap())
                    .collect();
                let vals = v["values"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|t| t.as_f64().unwrap_or(f64::NAN))
                    .collect();
                (v["metric"].clone(), ts, vals)
            })
            .collect()
    }
}

/// Debian's InfluxDB 1.x on free loopback ports with a private data dir; killed on drop.
pub struct InfluxV1 {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

impl InfluxV1 {
    pub fn start() -> InfluxV1 {
        for _ in 0..5 {
            let dir = tempfile::tempdir().expect("temp dir");
            let (port, rpc) = (free_port(), free_port());
            let d = dir.path().display();
            let conf = format!(
                "reporting-disabled = true\nbind-address = \"127.0.0.1:{rpc}\"\n[meta]\n  dir = \"{d}/meta\"\n\
                 [data]\n  dir = \"{d}/data\"\n  wal-dir = \"{d}/wal\"\n  query-log-enabled = false\n\
                 [http]\n  bind-address = \"127.0.0.1:{port}\"\n  log-enabled = false\n[monitor]\n  store-enabled = false\n"
            );
            let file = dir.path().join("influxdb.conf");
            std::fs::write(&file, conf).expect("write influxdb.conf");
            let mut child = Command::new("influxd")
                .arg("run")
                .arg("-config")
                .arg(&file)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("influxd runs (`.ci/run` installs influxdb)");
            if wait_http_ok(&mut child, &format!("http://127.0.0.1:{port}/ping"), WAIT) {
                return InfluxV1 { child, port, dir };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("influxd did not start; is influxdb installed? (`.ci/run` installs it)");
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Runs an InfluxQL statement and returns the JSON answer (times in ns).
    pub async fn query(&self, db: &str, q: &str) -> serde_json::Value {
        http_client()
            .post(format!("{}/query", self.url()))
            .form(&[("db", db), ("q", q), ("epoch", "ns")])
            .send()
            .await
            .expect("query answers")
            .json()
            .await
            .expect("query JSON")
    }
}

impl Drop for InfluxV1 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads one metric's value from the Prometheus text of `/metrics` (summed over series
/// whose labels contain every `labels` fragment).
pub fn metric(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.split(['{', ' ']).next() == Some(name))
        .filter(|l| labels.iter().all(|f| l.contains(f)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

impl TestGateway {
    /// Like [`TestGateway::start`], with extra files (e.g. profiles) written into the data dir
    /// first, relative to the config file.
    pub async fn start_with_files(config: &str, files: &[(&str, &str)]) -> TestGateway {
        let dir = tempfile::tempdir().expect("temp dir");
        for (name, text) in files {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        let cfg = GatewayConfig::parse(&dir.path().join("test.toml"), config).unwrap_or_else(|e| panic!("config: {e}"));
        let gateway = Gateway::start(cfg, dir.path(), clock::system())
            .await
            .expect("gateway starts");
        let base = format!("http://{}", gateway.api_addr);
        TestGateway {
            gateway: Some(gateway),
            base,
            http: http_client(),
            dir,
        }
    }
}

/// A real Mosquitto broker on a free loopback port with a private data dir; killed on drop.
/// Persistence is on, so a subscriber's QoS 1 session survives a broker restart.
pub struct Mosquitto {
    child: ServerChild,
    pub port: u16,
    dir: tempfile::TempDir,
    /// Extra listener lines (the TLS listener of [`Mosquitto::start_tls`]).
    extra: String,
    /// Port of the TLS listener, if any.
    pub tls_port: Option<u16>,
}

impl Mosquitto {
    pub fn start() -> Mosquitto {
        Self::start_with(|| (String::new(), None))
    }

    /// A broker that queues up to a million QoS 1 messages for an absent persistent
    /// subscriber (its default, 1,000, drops the rest of a fast stream during a restart).
    pub fn start_deep_queue() -> Mosquitto {
        Self::start_with(|| ("max_queued_messages 1000000\n".to_string(), None))
    }

    /// Starts a broker with `listeners()` (extra config lines and a second port to wait for),
    /// trying fresh ports a few times in case another test took one meanwhile.
    fn start_with(listeners: impl Fn() -> (String, Option<u16>)) -> Mosquitto {
        for _ in 0..5 {
            let (extra, tls_port) = listeners();
            let mut m = Mosquitto {
                child: ServerChild::default(),
                port: free_port(),
                dir: tempfile::tempdir().expect("temp dir"),
                extra,
                tls_port,
            };
            if m.spawn() {
                return m;
            }
        }
        panic!("mosquitto did not start; is it installed? (`.ci/run` installs it)");
    }

    fn spawn(&mut self) -> bool {
        let conf = self.dir.path().join("mosquitto.conf");
        let text = format!(
            "per_listener_settings false\nlistener {} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location {}/\nlog_type none\n{}",
            self.port,
            self.dir.path().display(),
            self.extra
        );
        std::fs::write(&conf, text).expect("write mosquitto.conf");
        // Started as root, mosquitto drops to the `mosquitto` user: without this it could not
        // write its persistence file, and sessions would not survive a restart.
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(self.dir.path(), std::fs::Permissions::from_mode(0o777));
        }
        let bin = ["/usr/sbin/mosquitto", "mosquitto"]
            .into_iter()
            .find(|b| Path::new(b).exists())
            .unwrap_or("mosquitto");
        let mut child = Command::new(bin)
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto runs (`.ci/run` installs it)");
        let tls_ready = self
            .tls_port
            .is_none_or(|p| wait_tcp(&mut child, SocketAddr::from(([127, 0, 0, 1], p))));
        if tls_ready && wait_tcp(&mut child, SocketAddr::from(([127, 0, 0, 1], self.port))) {
            self.child.set(child);
            return true;
        }
        let _ = child.kill();
        let _ = child.wait();
        false
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Stops it the orderly way (SIGTERM), so it saves its sessions.
    pub fn stop(&mut self) {
        self.child.terminate();
    }

    /// Starts it again on the same port and data dir.
    pub fn restart(&mut self) {
        self.stop();
        self.resume();
    }

    /// Starts it again after [`Mosquitto::stop`], on the same port and data dir.
    pub fn resume(&mut self) {
        respawn("mosquitto", self.port, || self.spawn());
    }
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

/// Kills a child process on drop, so a failing test leaves nothing behind.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A site CA and a server certificate for 127.0.0.1 signed by it, made by `openssl`:
/// returns the CA (`ca.pem`); the server's are `cert.pem` and `cert.key` beside it. (A lone
/// self-signed certificate is a CA used as an end entity, which rustls rightly refuses.)
pub fn self_signed_cert(dir: &Path) -> PathBuf {
    openssl(
        dir,
        &[
            &["req", "-x509"][..],
            &EC_KEY,
            &[
                "-days",
                "2",
                "-subj",
                "/CN=test site CA",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
            ],
        ]
        .concat(),
    );
    signed_by_ca(
        dir,
        "cert",
        "/CN=127.0.0.1",
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    );
    dir.join("ca.pem")
}

/// A fresh P-256 key, unencrypted, for `openssl req`.
const EC_KEY: [&str; 5] = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

/// Runs `openssl` in `dir`; panics naming the arguments if it fails.
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

/// `<stem>.pem` and `<stem>.key` for `subject`, with `extensions`, signed by `ca.pem` in `dir`.
pub fn signed_by_ca(dir: &Path, stem: &str, subject: &str, extensions: &str) {
    let (key, csr, ext, pem) = (
        format!("{stem}.key"),
        format!("{stem}.csr"),
        format!("{stem}.cnf"),
        format!("{stem}.pem"),
    );
    openssl(
        dir,
        &[
            &["req"][..],
            &EC_KEY,
            &["-subj", subject, "-keyout", &key, "-out", &csr],
        ]
        .concat(),
    );
    std::fs::write(dir.join(&ext), extensions).expect("extension file");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &ext,
            "-out",
            &pem,
        ],
    );
}

/// The console flow of `tests/browser/console_flow.mjs`: node driving Debian's headless
/// Chromium through playwright-core. Talks over lines: the script prints `READY` and `DONE`,
/// the test writes a line to let it go on. Killed on drop.
pub struct ConsoleBrowser {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
    stdin: Option<std::process::ChildStdin>,
}

impl ConsoleBrowser {
    /// Starts the flow against `url`; `env` adds ALARM_ID, COMMENT, TOKEN or ACK_USER, ….
    /// Screenshots go to `target/`.
    pub fn start(url: &str, env: &[(&str, &str)]) -> ConsoleBrowser {
        Self::start_script("console_flow.mjs", url, env)
    }

    /// Starts `script` (in `tests/browser`) against `url` with `env`; screenshots go to `target/`.
    pub fn start_script(script: &str, url: &str, env: &[(&str, &str)]) -> ConsoleBrowser {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
        assert!(
            dir.join("node_modules/playwright-core").is_dir(),
            "playwright-core is not installed in tests/browser (`.ci/run` runs npm ci there)"
        );
        assert!(
            Path::new("/usr/bin/chromium").exists(),
            "Debian's chromium is not installed (`.ci/run` installs it)"
        );
        let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
        let mut child = Command::new("node")
            .arg(script)
            .current_dir(&dir)
            .env("CONSOLE_URL", url)
            .env("SCREENSHOT_DIR", &shots)
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node runs (`.ci/run` installs nodejs)");
        let stdout = child.stdout.take().expect("piped stdout");
        let stdin = child.stdin.take();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        ConsoleBrowser { child, lines, stdin }
    }

    /// Waits (off the async runtime) for the script to print `word`; panics if it ends first
    /// or `limit` passes.
    pub async fn expect_line(&mut self, word: &str, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            match self.lines.try_recv() {
                Ok(line) if line.trim() == word => return,
                Ok(other) => eprintln!("console flow: {other}"),
                Err(std::sync::mpsc::TryRecvError::Empty) => {}
                Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                    let status = self.child.wait().ok();
                    panic!("the console flow ended ({status:?}) before printing {word}; see its stderr above");
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out after {limit:?} waiting for the console flow to print {word}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits for a line starting with `prefix` and returns the rest of it; panics if the
    /// script ends first or `limit` passes.
    pub async fn expect_prefix(&mut self, prefix: &str, limit: Duration) -> String {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            match self.lines.try_recv() {
                Ok(line) if line.starts_with(prefix) => return line[prefix.len()..].trim().to_string(),
                Ok(other) => eprintln!("console flow: {other}"),
                Err(std::sync::mpsc::TryRecvError::Empty) => {}
                Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                    let status = self.child.wait().ok();
                    panic!("the console flow ended ({status:?}) before printing {prefix}; see its stderr above");
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out after {limit:?} waiting for the console flow to print {prefix}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Lets the script go on past `READY`.
    pub fn proceed(&mut self) {
        use std::io::Write as _;
        if let Some(stdin) = self.stdin.as_mut() {
            let _ = stdin.write_all(b"go\n");
            let _ = stdin.flush();
        }
    }

    /// Waits for the script to exit and asserts it succeeded.
    pub fn finish(mut self) {
        drop(self.stdin.take());
        for _ in 0..600 {
            if let Ok(Some(status)) = self.child.try_wait() {
                assert!(status.success(), "the console flow failed: {status}");
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the console flow did not exit within 30 s after DONE");
    }
}

impl Drop for ConsoleBrowser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Stops a server the orderly way (SIGTERM) and waits for it, so it can save what it holds.
pub fn terminate(mut child: Child) {
    let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    let _ = child.wait();
}

/// The process of a server that tests stop and start again: at most one runs, and it is
/// killed when its owner is dropped, so a failing test leaves nothing behind.
#[derive(Default)]
pub struct ServerChild(Option<Child>);

impl ServerChild {
    /// Takes `child` as the running process (killing one still held).
    pub fn set(&mut self, child: Child) {
        self.kill();
        self.0 = Some(child);
    }

    /// Kills it (an abrupt outage) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stops it the orderly way (SIGTERM) and reaps it.
    pub fn terminate(&mut self) {
        if let Some(c) = self.0.take() {
            terminate(c);
        }
    }
}

impl Drop for ServerChild {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Starts a stopped server again on its port: `spawn` reports whether it came up (killing
/// what it started if not). The port was just freed, so the first tries may find it briefly
/// busy; bounded at 50 tries, 100 ms apart.
pub fn respawn(what: &str, port: u16, mut spawn: impl FnMut() -> bool) {
    for _ in 0..50 {
        if spawn() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{what} did not restart on port {port}");
}

impl Mosquitto {
    /// A broker with its plain listener (for test clients) and a TLS listener that presents
    /// `certs/cert.pem` (from [`self_signed_cert`]) and requires a client certificate signed by
    /// `certs/ca.pem`.
    pub fn start_tls(certs: &Path) -> Mosquitto {
        Self::start_with(|| {
            let tls_port = free_port();
            // `user root`: run as root (CI), mosquitto would switch to its own user, which
            // cannot read the key in our private temp dir; as anyone else it is ignored.
            let extra = format!(
                "user root\nlistener {tls_port} 127.0.0.1\ncafile {0}/ca.pem\ncertfile {0}/cert.pem\nkeyfile {0}/cert.key\n\
                 require_certificate true\n",
                certs.display()
            );
            (extra, Some(tls_port))
        })
    }
}

/// A client certificate (`client.pem`, `client.key`) signed by the CA that
/// [`self_signed_cert`] made in `dir`.
pub fn client_cert(dir: &Path) {
    signed_by_ca(
        dir,
        "client",
        "/CN=gateway",
        "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
    );
}

/// (topic, JSON payload) of every message an [`MqttCollector`] received, in arrival order.
pub type Messages = std::sync::Arc<std::sync::Mutex<Vec<(String, serde_json::Value)>>>;

/// A plain-TCP MQTT subscriber to one filter, collecting what arrives. With `persistent`
/// (clean session off) the broker keeps its subscription and queue across a restart.
pub struct MqttCollector {
    /// What arrived; a payload that is not JSON is `null`.
    pub got: Messages,
    /// Set once the broker acknowledged the subscription.
    pub subscribed: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl MqttCollector {
    /// Connects as `client_id` to the broker on `port` and subscribes to `filter` (again after
    /// every reconnect); runs until the test's runtime ends.
    pub fn start(port: u16, client_id: &str, filter: &'static str, persistent: bool) -> Self {
        use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
        use std::sync::atomic::Ordering;
        let collector = Self {
            got: Messages::default(),
            subscribed: Default::default(),
        };
        let mut opts = MqttOptions::new(client_id, "127.0.0.1", port);
        opts.set_clean_session(!persistent);
        opts.set_keep_alive(Duration::from_secs(5));
        let (client, mut eventloop) = AsyncClient::new(opts, 64);
        let (got, subscribed) = (collector.got.clone(), collector.subscribed.clone());
        tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        let _ = client.subscribe(filter, QoS::AtLeastOnce).await;
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => subscribed.store(true, Ordering::SeqCst),
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let v = serde_json::from_slice(&p.payload).unwrap_or(serde_json::Value::Null);
                        got.lock().unwrap().push((p.topic.clone(), v));
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        });
        collector
    }

    /// Waits until the broker acknowledged the subscription.
    pub async fn wait_subscribed(&self) {
        let flag = self.subscribed.clone();
        wait_for("the MQTT subscription", WAIT, || {
            let flag = flag.clone();
            async move { flag.load(std::sync::atomic::Ordering::SeqCst).then_some(()) }
        })
        .await;
    }
}

/// One time-series store output run on its own, outside a gateway, feeding one point.
pub struct LoneStore {
    /// The running output; send it `SinkItem`s.
    pub store: hazard_gateway::sinks::tsdb::Store,
    /// The point it knows.
    pub point: hazard_gateway::model::PointId,
    /// Its metrics.
    pub metrics: hazard_gateway::telemetry::Metrics,
    /// Its data directory (buffer, dead-letter file).
    pub dir: tempfile::TempDir,
}

impl LoneStore {
    /// Starts the first `[[tsdb]]` of `config` for gateway `gw` with the one point `point`.
    pub fn start(config: &str, point: hazard_gateway::model::PointMeta) -> Self {
        let cfg = GatewayConfig::parse(Path::new("t.toml"), config).unwrap_or_else(|e| panic!("{e}"));
        let spec = cfg.tsdb.into_iter().next().expect("a [[tsdb]] section");
        let mut table = hazard_gateway::model::PointTable::default();
        let point = table.insert(point).expect("a new point");
        let dir = tempfile::tempdir().expect("temp dir");
        let metrics = hazard_gateway::telemetry::Metrics::new();
        let store = hazard_gateway::sinks::tsdb::Store::start(
            &spec,
            "gw",
            &table,
            dir.path(),
            clock::system(),
            metrics.tsdb.clone(),
        )
        .expect("the store output starts");
        Self {
            store,
            point,
            metrics,
            dir,
        }
    }
}

/// One request an [`HttpReceiver`] took.
#[derive(Debug, Clone)]
pub struct TakenRequest {
    /// Path and query.
    pub path: String,
    /// Headers, names lower case.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

/// What an [`HttpReceiver`] got, and how it answers.
#[derive(Debug)]
pub struct Received {
    /// Every request answered with `status`, in arrival order.
    pub requests: Vec<TakenRequest>,
    /// Status it answers with (default 200).
    pub status: u16,
    /// Body it answers with (default `{"code":0}`).
    pub answer: String,
}

/// A small HTTP server on a loopback port that records every request and answers with a
/// settable status and body. [`HttpReceiver::down`] closes the port (connections included)
/// and [`HttpReceiver::up`] opens it again, for outage tests.
pub struct HttpReceiver {
    pub port: u16,
    pub state: std::sync::Arc<std::sync::Mutex<Received>>,
    server: Option<(tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<()>)>,
}

impl HttpReceiver {
    /// Starts on a free port.
    pub async fn start() -> HttpReceiver {
        let mut r = HttpReceiver {
            port: free_port(),
            state: std::sync::Arc::new(std::sync::Mutex::new(Received {
                requests: Vec::new(),
                status: 200,
                answer: "{\"code\":0}".into(),
            })),
            server: None,
        };
        r.up().await;
        r
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Opens the port (again).
    pub async fn up(&mut self) {
        use axum::body::Bytes;
        use axum::extract::State;
        use axum::http::{HeaderMap, StatusCode, Uri};
        type Shared = std::sync::Arc<std::sync::Mutex<Received>>;
        async fn take(State(st): State<Shared>, uri: Uri, headers: HeaderMap, body: Bytes) -> (StatusCode, String) {
            let mut st = st.lock().unwrap();
            let status = StatusCode::from_u16(st.status).unwrap();
            if status.is_success() {
                st.requests.push(TakenRequest {
                    path: uri.to_string(),
                    headers: headers
                        .iter()
                        .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
                        .collect(),
                    body: body.to_vec(),
                });
            }
            (status, st.answer.clone())
        }
        let listener = wait_for("the receiver's port to bind", WAIT, || async {
            tokio::net::TcpListener::bind(("127.0.0.1", self.port)).await.ok()
        })
        .await;
        let app = axum::Router::new().fallback(take).with_state(self.state.clone());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = rx.await;
                })
                .await;
        });
        self.server = Some((tx, task));
    }

    /// Closes the port; returns once nothing listens any more.
    pub async fn down(&mut self) {
        if let Some((tx, task)) = self.server.take() {
            let _ = tx.send(());
            let _ = task.await;
        }
    }

    /// Bodies of every accepted request, in arrival order.
    pub fn bodies(&self) -> Vec<Vec<u8>> {
        self.state
            .lock()
            .unwrap()
            .requests
            .iter()
            .map(|r| r.body.clone())
            .collect()
    }

    /// Every accepted body parsed as JSON.
    pub fn json(&self) -> Vec<serde_json::Value> {
        self.bodies()
            .iter()
            .map(|b| serde_json::from_slice(b).expect("JSON body"))
            .collect()
    }
}

/// A real FTP server (pyftpdlib) on a free loopback port serving a private directory; killed
/// on drop. `received()` lists the files renamed into place, in order, one line per delivery.
pub struct FtpServer {
    child: ServerChild,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl FtpServer {
    /// Login of the test server.
    pub const USER: &'static str = "coal";
    /// Password of the test server.
    pub const PASSWORD: &'static str = "coal-secret";

    pub fn start() -> FtpServer {
        for _ in 0..5 {
            let mut s = FtpServer {
                child: ServerChild::default(),
                port: free_port(),
                dir: tempfile::tempdir().expect("temp dir"),
            };
            std::fs::create_dir_all(s.root()).expect("ftp root");
            if s.spawn() {
                return s;
            }
        }
        panic!("pyftpdlib did not start; is it installed? (`.ci/run` installs it)");
    }

    fn spawn(&mut self) -> bool {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/ftp_server.py");
        let mut child = Command::new("python3")
            .arg(&script)
            .arg(self.port.to_string())
            .arg(self.root())
            .arg(Self::USER)
            .arg(Self::PASSWORD)
            .arg(self.dir.path().join("received.log"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 runs (`.ci/run` installs pyftpdlib)");
        if wait_tcp(&mut child, SocketAddr::from(([127, 0, 0, 1], self.port))) {
            self.child.set(child);
            return true;
        }
        let _ = child.kill();
        let _ = child.wait();
        false
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The directory the server stores uploads in.
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// Names of the files renamed into place, in order (a name twice = delivered twice).
    pub fn received(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("received.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Kills the server (an outage): connections drop, the port refuses.
    pub fn stop(&mut self) {
        self.child.kill();
    }

    /// Starts it again on the same port and directory.
    pub fn restart(&mut self) {
        self.stop();
        respawn("pyftpdlib", self.port, || self.spawn());
    }
}

/// An independent OPC UA server (asyncua, `tests/support/opcua_server.py`) on a free loopback
/// port, with a private state dir; killed on drop. `restart` kills it and starts it again on
/// the same port and state (its counter continues).
pub struct OpcuaServer {
    child: ServerChild,
    pub port: u16,
    pub state: tempfile::TempDir,
    args: Vec<String>,
}

impl OpcuaServer {
    /// Starts the server with extra arguments (`--secure DIR`, `--load N`, `--period MS`).
    pub fn start(args: &[&str]) -> OpcuaServer {
        let state = tempfile::tempdir().expect("temp dir");
        let mut s = OpcuaServer {
            child: ServerChild::default(),
            port: 0,
            state,
            args: args.iter().map(|a| a.to_string()).collect(),
        };
        for _ in 0..5 {
            s.port = free_port();
            if s.spawn() {
                return s;
            }
        }
        panic!("asyncua server did not start; is asyncua installed? (`.ci/run` installs it)");
    }

    /// `opc.tcp://127.0.0.1:PORT/test/`.
    pub fn url(&self) -> String {
        format!("opc.tcp://127.0.0.1:{}/test/", self.port)
    }

    /// The server's certificate (DER) of a `--secure` server.
    pub fn certificate(&self) -> PathBuf {
        self.state.path().join("server.der")
    }

    /// Creates or removes a control file (`pause`, `level-go`) the server polls.
    pub fn control(&self, name: &str, on: bool) {
        let p = self.state.path().join(name);
        if on {
            std::fs::write(p, b"").expect("control file");
        } else {
            let _ = std::fs::remove_file(p);
        }
    }

    fn spawn(&mut self) -> bool {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/opcua_server.py");
        let child = Command::new("python3")
            .arg(&script)
            .arg(self.port.to_string())
            .arg(self.state.path())
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 runs");
        let mut child = child;
        // asyncua takes seconds to import and build its address space, more when several
        // tests start servers at once on a busy machine: poll for up to a minute.
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let mut ok = false;
        for _ in 0..600 {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
                ok = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.child.set(child);
        ok
    }

    /// Kills the server (as a crash or power loss would).
    pub fn kill(&mut self) {
        self.child.kill();
    }

    /// Kills the server and starts it again on the same port and state.
    pub fn restart(&mut self) {
        self.kill();
        respawn("asyncua server", self.port, || self.spawn());
    }
}

/// A self-signed RSA 2048 certificate and key for OPC UA X.509 user authentication, made by
/// `openssl` in `dir` as `NAME.pem` and `NAME.key` (OPC UA signs the user token with RSA, so
/// not the P-256 keys of the TLS helpers); returns (certificate, key).
pub fn opcua_user_cert(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let (cert, key) = (format!("{name}.pem"), format!("{name}.key"));
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN={name}"),
            "-keyout",
            &key,
            "-out",
            &cert,
        ],
    );
    (dir.join(cert), dir.join(key))
}

/// A size-limited tmpfs mounted on a private directory (the tests run as root, as in CI);
/// unmounted on drop. Panics, saying why, if it cannot be mounted: a disk-full test must
/// not pass without a disk that fills.
pub struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    /// Mounts a tmpfs of `kib` KiB.
    pub fn mount(kib: u64) -> SmallDisk {
        let dir = tempfile::tempdir().expect("temp dir");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={kib}k"), "tmpfs"])
            .arg(dir.path())
            .output()
            .expect("run mount(8)");
        assert!(
            out.status.success(),
            "cannot mount a {kib} KiB tmpfs at {} (the disk-full tests need root, as CI has): {}",
            dir.path().display(),
            String::from_utf8_lossy(&out.stderr)
        );
        SmallDisk { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

/// A TCP relay on loopback that a test can cut and restore, recording when each chunk of
/// client-to-server bytes passed: a link between two components that fails on command (the
/// network cut of a fault test) and tells who talked to the server, and when.
pub struct CutProxy {
    pub addr: SocketAddr,
    state: std::sync::Arc<CutState>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Default)]
struct CutState {
    cut: std::sync::atomic::AtomicBool,
    /// Bumped at each cut: relays of an older generation end.
    generation: std::sync::atomic::AtomicU64,
    sent: std::sync::Mutex<Vec<tokio::time::Instant>>,
}

impl CutProxy {
    /// Relays a fresh loopback port to `upstream`.
    pub async fn start(upstream: SocketAddr) -> CutProxy {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind relay");
        let addr = listener.local_addr().expect("relay address");
        let state = std::sync::Arc::new(CutState::default());
        let s = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if s.cut.load(Ordering::Acquire) {
                    continue; // dropped: the connection is refused the hard way
                }
                let s = s.clone();
                tokio::spawn(async move {
                    let generation = s.generation.load(Ordering::Acquire);
                    let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await else {
                        return;
                    };
                    let (mut cr, mut cw) = client.split();
                    let (mut sr, mut sw) = server.split();
                    let up = async {
                        let mut buf = [0u8; 16384];
                        loop {
                            let n = match tokio::io::AsyncReadExt::read(&mut cr, &mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => n,
                            };
                            if s.generation.load(Ordering::Acquire) != generation {
                                return;
                            }
                            s.sent
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .push(tokio::time::Instant::now());
                            if tokio::io::AsyncWriteExt::write_all(&mut sw, &buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    };
                    let down = async {
                        let mut buf = [0u8; 16384];
                        loop {
                            let n = match tokio::io::AsyncReadExt::read(&mut sr, &mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => n,
                            };
                            if s.generation.load(Ordering::Acquire) != generation {
                                return;
                            }
                            if tokio::io::AsyncWriteExt::write_all(&mut cw, &buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    };
                    let cut = async {
                        // Bounded by the test's life; checks the cut ten times a second.
                        loop {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            if s.generation.load(Ordering::Acquire) != generation {
                                return;
                            }
                        }
                    };
                    tokio::select! {
                        () = up => {}
                        () = down => {}
                        () = cut => {}
                    }
                });
            }
        });
        CutProxy { addr, state, task }
    }

    /// Cuts every open connection and refuses new ones until [`CutProxy::restore`].
    pub fn cut(&self) {
        use std::sync::atomic::Ordering;
        self.state.cut.store(true, Ordering::Release);
        self.state.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Lets connections through again.
    pub fn restore(&self) {
        use std::sync::atomic::Ordering;
        self.state.cut.store(false, Ordering::Release);
    }

    /// When each chunk of client-to-server bytes passed, in order.
    pub fn sent(&self) -> Vec<tokio::time::Instant> {
        self.state.sent.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Drop for CutProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

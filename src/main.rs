//! `hazard-gateway`: command-line entry point.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use hazard_gateway::config::{GatewayConfig, ProfileSet};
use hazard_gateway::pipeline::Gateway;
use hazard_gateway::sources::sim::signal::Leak;
use hazard_gateway::sources::sim::{Scenario, ScenarioKind, SimTransport, Simulator};
use hazard_gateway::{clock, demo};
use tokio_util::sync::CancellationToken;
use tracing::{error, info};
use tracing_subscriber::EnvFilter;

/// Resident memory must stay flat over months on an IPC; see Cargo.toml for why not glibc's.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Edge gateway for real-time monitoring of major hazard sources (重大危险源).
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Log format: human-readable text or one JSON object per line.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway from a config file.
    Run {
        /// Config file (TOML).
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Run the built-in demo plant: simulators and gateway in one process.
    Demo {
        /// Address of the API and console.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Where to keep history and the alarm journal (default: a fresh temporary directory).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Serve a device profile with simulated values over Modbus TCP, RTU over TCP or RTU.
    Simulate {
        /// Profile name (see `profiles list`).
        #[arg(long)]
        profile: String,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:5020")]
        listen: SocketAddr,
        /// Frame as RTU over TCP, like a serial server / DTU, instead of Modbus TCP.
        #[arg(long, conflicts_with = "serial")]
        rtu_over_tcp: bool,
        /// Serve Modbus RTU on this serial port instead (e.g. one end of a socat pty pair).
        #[arg(long)]
        serial: Option<PathBuf>,
        /// Baud rate on `--serial` (8 data bits, no parity, 1 stop bit).
        #[arg(long, default_value_t = 9600)]
        baud: u32,
        /// Answer only this unit id (default: every unit).
        #[arg(long)]
        unit: Option<u8>,
        /// Play the demo leak on this profile point (e.g. `ch1`).
        #[arg(long, conflicts_with = "scenario")]
        leak: Option<String>,
        /// Play one of the profile's drills: leak, slow_rise, sensor_fault or comm_loss
        /// (`profiles show NAME` lists each drill's timing and points).
        #[arg(long)]
        scenario: Option<String>,
        /// Only these points take part in the drill (repeat the flag; default: the profile's).
        #[arg(long = "point", requires = "scenario")]
        points: Vec<String>,
        /// Replay the drill with this period (e.g. `10m`); default: play it once.
        #[arg(long, requires = "scenario")]
        repeat: Option<String>,
        /// Extra profile directory.
        #[arg(long)]
        profile_dir: Option<PathBuf>,
    },
    /// Copy the alarm journal, the history and the delivery cursors consistently into a new
    /// directory while the gateway runs (restore: deploy/README.md).
    Backup {
        /// The gateway's config file (TOML), to find its data directory.
        #[arg(long, short)]
        config: PathBuf,
        /// Where to write the backup: a new or empty directory.
        dir: PathBuf,
    },
    /// Validate a config file and print a summary, or every error with file, line and key.
    CheckConfig {
        /// Config file (TOML).
        file: PathBuf,
    },
    /// Print the hash of an API token for `[[api.tokens]]`. Reads the token from standard
    /// input, or with `--generate` makes a new random one and prints both.
    HashToken {
        /// Generate a new random token (256 bits) instead of reading one.
        #[arg(long)]
        generate: bool,
    },
    /// Regulator uplinks (`[[uplinks]]`).
    Uplink {
        #[command(subcommand)]
        action: UplinkAction,
    },
    /// List or show device profiles.
    Profiles {
        #[command(subcommand)]
        action: ProfilesAction,
    },
    /// OPC UA commissioning: browse a server, show the gateway's application certificate.
    Opcua {
        #[command(subcommand)]
        action: OpcuaAction,
    },
}

#[derive(Debug, Subcommand)]
enum OpcuaAction {
    /// List the nodes below a node: node id, browse name, class, data type and value.
    Browse {
        /// Endpoint URL, e.g. `opc.tcp://10.0.0.5:4840`.
        endpoint: String,
        /// Start node (default: the Objects folder, `i=85`).
        #[arg(long, default_value = "i=85")]
        node: String,
        /// Levels to descend.
        #[arg(long, default_value_t = 2)]
        depth: usize,
        /// `none`, or policy/mode such as `basic256sha256/sign_and_encrypt` or
        /// `aes128_sha256_rsa_oaep/sign`.
        #[arg(long, default_value = "none")]
        security: String,
        /// Server certificate to trust (DER or PEM).
        #[arg(long)]
        trust_server_cert: Option<PathBuf>,
        /// User name; the password is read from the variable named by `--password-env`.
        #[arg(long, requires = "password_env")]
        username: Option<String>,
        /// Environment variable holding the password.
        #[arg(long)]
        password_env: Option<String>,
        /// The gateway's data dir (its application certificate is kept under `opcua/pki`).
        #[arg(long, default_value = ".")]
        data_dir: PathBuf,
        /// The gateway id of the config (part of the certificate's application URI).
        #[arg(long, default_value = "hazard-gateway")]
        gateway_id: String,
    },
    /// Print the path of the gateway's application certificate (made if missing), to give
    /// to the server's administrator.
    Cert {
        /// The gateway's data dir.
        #[arg(long, default_value = ".")]
        data_dir: PathBuf,
        /// The gateway id of the config.
        #[arg(long, default_value = "hazard-gateway")]
        gateway_id: String,
    },
}

#[derive(Debug, Subcommand)]
enum UplinkAction {
    /// Print the next payloads an uplink would send, plain and sealed (cipher and envelope),
    /// with values from the profiles' simulators; nothing is sent.
    Preview {
        /// Uplink name.
        name: String,
        /// Config file (TOML).
        #[arg(long, short, default_value = "/etc/hazard-gateway/gateway.toml")]
        config: PathBuf,
        /// How many payloads.
        #[arg(long, default_value_t = 5)]
        count: usize,
    },
}

#[derive(Debug, Subcommand)]
enum ProfilesAction {
    /// List every known profile.
    List {
        /// Also load (and check) the profiles in this directory; they override built-in ones.
        #[arg(long)]
        profile_dir: Option<PathBuf>,
    },
    /// Show a profile's register map, default set-points, simulator model and drills.
    Show {
        /// Profile name.
        name: String,
        /// Also load (and check) the profiles in this directory; they override built-in ones.
        #[arg(long)]
        profile_dir: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            error!(error = %e, "Cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cli.command)) {
        Ok(code) => code,
        Err(e) => {
            error!(error = format!("{e:#}"), "Stopped with an error");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn dispatch(command: Command) -> Result<ExitCode> {
    match command {
        Command::Run { config } => run(&config).await,
        Command::Demo { listen, data_dir } => run_demo(listen, data_dir).await,
        Command::Simulate {
            profile,
            listen,
            rtu_over_tcp,
            serial,
            baud,
            unit,
            leak,
            scenario,
            points,
            repeat,
            profile_dir,
        } => {
            let transport = match (serial, rtu_over_tcp) {
                (Some(port), _) => SimTransport::Rtu(port, baud),
                (None, true) => SimTransport::RtuOverTcp(listen),
                (None, false) => SimTransport::Tcp(listen),
            };
            let scenario = match (leak, scenario) {
                (Some(point), _) => Some(Scenario::Leak {
                    point,
                    leak: Leak::demo(),
                }),
                (None, Some(name)) => Some(drill(&name, points, repeat.as_deref())?),
                (None, None) => None,
            };
            simulate(&profile, (transport, unit), scenario, profile_dir).await
        }
        Command::CheckConfig { file } => Ok(check_config(&file)),
        Command::Backup { config, dir } => backup(&config, &dir).await,
        Command::HashToken { generate } => hash_token(generate),
        Command::Profiles { action } => profiles(action),
        Command::Uplink {
            action: UplinkAction::Preview { name, config, count },
        } => uplink_preview(&name, &config, count),
        Command::Opcua { action } => opcua(action).await,
    }
}

fn uplink_preview(name: &str, file: &Path, count: usize) -> Result<ExitCode> {
    let cfg = match GatewayConfig::load(file) {
        Ok(c) => c,
        Err(errors) => {
            eprintln!("{errors}");
            return Ok(ExitCode::from(2));
        }
    };
    match cfg.preview_uplink(name, count, clock::system()) {
        Ok(items) => {
            print!("{}", hazard_gateway::sinks::uplink::preview::render(&items));
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("{e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

async fn opcua(action: OpcuaAction) -> Result<ExitCode> {
    use hazard_gateway::sources::opcua::{browse, client, config};
    match action {
        OpcuaAction::Cert { data_dir, gateway_id } => {
            let path = client::own_certificate(&gateway_id, &data_dir)?;
            println!("{}", path.display());
            Ok(ExitCode::SUCCESS)
        }
        OpcuaAction::Browse {
            endpoint,
            node,
            depth,
            security,
            trust_server_cert,
            username,
            password_env,
            data_dir,
            gateway_id,
        } => {
            let (policy, mode) = config::parse_security(&security).map_err(anyhow::Error::msg)?;
            let auth = match (username, password_env) {
                (Some(name), Some(var)) => config::Auth::User {
                    name,
                    password: config::PasswordSource::Env(var),
                },
                _ => config::Auth::Anonymous,
            };
            let spec = config::EndpointSpec {
                name: "browse".into(),
                url: endpoint,
                policy,
                mode,
                auth,
                trusted_dir: None,
                trust_server_cert,
                publishing_interval: std::time::Duration::from_secs(1),
                request_timeout: std::time::Duration::from_secs(10),
                reconnect_max: std::time::Duration::from_secs(5),
            };
            let start = node
                .parse()
                .map_err(|_| anyhow::anyhow!("`{node}` is not a node id like ns=2;s=Plant or i=85"))?;
            let lines = browse::browse(&spec, &gateway_id, &data_dir, start, depth).await?;
            print!("{}", browse::render(&lines));
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn check_config(file: &Path) -> ExitCode {
    match GatewayConfig::load(file) {
        Ok(cfg) => {
            for w in &cfg.warnings {
                eprintln!("{w}");
            }
            print!("{}", cfg.summary());
            ExitCode::SUCCESS
        }
        Err(errors) => {
            eprintln!("{errors}");
            eprintln!("{} error(s) in {}", errors.0.len(), file.display());
            ExitCode::FAILURE
        }
    }
}

/// The data directory `run` uses for `config`.
fn data_dir_of(config: &GatewayConfig) -> PathBuf {
    config
        .data_dir
        .clone()
        .or_else(|| std::env::var_os("STATE_DIRECTORY").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("data"))
}

async fn backup(path: &Path, dest: &Path) -> Result<ExitCode> {
    use hazard_gateway::sinks::backup::{self, BackupMeta};
    let config = match GatewayConfig::load(path) {
        Ok(c) => c,
        Err(errors) => {
            eprintln!("{errors}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let data_dir = data_dir_of(&config);
    let now = clock::system().now();
    let meta = BackupMeta {
        gateway_version: env!("CARGO_PKG_VERSION").to_string(),
        created: hazard_gateway::api::rfc3339(now),
        created_unix_ms: now.as_millis(),
        data_dir: data_dir.clone(),
    };
    let to = dest.to_path_buf();
    let manifest = tokio::task::spawn_blocking(move || backup::backup(&data_dir, &to, meta))
        .await
        .context("backup task")?
        .with_context(|| format!("backup into {}", dest.display()))?;
    for f in &manifest.files {
        println!("{:>12} B  {}  ({})", f.bytes, f.path, f.kind);
    }
    println!(
        "backup of {} written to {} (alarm journal up to #{}); manifest: {}",
        manifest.meta.data_dir.display(),
        dest.display(),
        manifest.journal_last_seq,
        backup::MANIFEST_FILE
    );
    Ok(ExitCode::SUCCESS)
}

async fn run(path: &Path) -> Result<ExitCode> {
    let config = match GatewayConfig::load(path) {
        Ok(c) => c,
        Err(errors) => {
            eprintln!("{errors}");
            return Ok(ExitCode::FAILURE);
        }
    };
    for w in &config.warnings {
        tracing::warn!(warning = %w, "Config warning");
    }
    let data_dir = data_dir_of(&config);
    if config.redundancy.is_some() {
        return run_pair(config, &data_dir).await;
    }
    let gateway = Gateway::start(config, &data_dir, clock::system()).await?;
    let service = Service::started(&gateway);
    run_until_stopped(&gateway, &service).await;
    service.stopping();
    gateway.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

/// One node of a hot-standby pair (`[redundancy]`): standby or active as the lease decides,
/// until SIGINT or SIGTERM (an active node hands the lease over as it stops).
async fn run_pair(config: GatewayConfig, data_dir: &Path) -> Result<ExitCode> {
    let stop = CancellationToken::new();
    let watchdog_stop = CancellationToken::new();
    #[cfg(unix)]
    match hazard_gateway::sd_notify::Notifier::from_env() {
        Ok(Some(n)) => {
            let n = std::sync::Arc::new(n);
            n.send("READY=1\nSTATUS=Pair node running; its role is at /api/v1/pair");
            // Fed while the runtime runs the role loop; a standby has no rules engine to check.
            tokio::spawn(hazard_gateway::sd_notify::run_watchdog(
                n,
                Vec::new,
                watchdog_stop.clone(),
            ));
        }
        Ok(None) => {}
        Err(e) => error!(error = %e, "Cannot talk to the service manager; running without its watchdog"),
    }
    let signal = stop.clone();
    tokio::spawn(async move {
        wait_for_shutdown_signal().await;
        signal.cancel();
    });
    hazard_gateway::pair::run(config, data_dir, clock::system(), stop).await?;
    watchdog_stop.cancel();
    Ok(ExitCode::SUCCESS)
}

async fn run_demo(listen: SocketAddr, data_dir: Option<PathBuf>) -> Result<ExitCode> {
    let temp;
    let dir = match data_dir {
        Some(d) => d,
        None => {
            temp = tempfile::Builder::new().prefix("hazard-gateway-demo-").tempdir()?;
            temp.path().to_path_buf()
        }
    };
    let demo = demo::start(listen, &dir, clock::system()).await?;
    info!(console = %format!("http://{}/", demo.gateway.api_addr), data_dir = %dir.display(),
          "Demo plant running; a gas leak on MHS-001/GT-101 starts in 5 s. Ctrl-C to stop");
    let service = Service::started(&demo.gateway);
    wait_for_shutdown_signal().await;
    service.stopping();
    demo.gateway.shutdown().await;
    drop(demo.simulators);
    Ok(ExitCode::SUCCESS)
}

/// The `--scenario` drill, checked before anything is served.
fn drill(name: &str, points: Vec<String>, repeat: Option<&str>) -> Result<Scenario> {
    let kind = ScenarioKind::parse(name).with_context(|| {
        let known: Vec<&str> = ScenarioKind::ALL.iter().map(|k| k.as_str()).collect();
        format!("no scenario `{name}`; known: {}", known.join(", "))
    })?;
    let repeat_every = repeat
        .map(hazard_gateway::spec::units::parse_duration)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--repeat: {e}"))?;
    Ok(Scenario::Drill {
        kind,
        points: (!points.is_empty()).then_some(points),
        repeat_every,
    })
}

async fn simulate(
    name: &str,
    (transport, unit): (SimTransport, Option<u8>),
    scenario: Option<Scenario>,
    dir: Option<PathBuf>,
) -> Result<ExitCode> {
    let set = load_profiles(dir.as_deref())?;
    let profile = set
        .get(name)
        .cloned()
        .with_context(|| format!("no profile `{name}`; known: {}", set.names().join(", ")))?;
    let shown = format!("{transport:?}");
    let scenario_shown = scenario.clone();
    let sim = Simulator::serve(profile, transport, unit, scenario).await?;
    info!(profile = name, transport = %shown, listen = %sim.local_addr(), ?unit, scenario = ?scenario_shown,
          "Simulator serving; Ctrl-C to stop");
    wait_for_shutdown_signal().await;
    sim.stop();
    Ok(ExitCode::SUCCESS)
}

fn hash_token(generate: bool) -> Result<ExitCode> {
    let token = if generate {
        let bytes: [u8; 32] = rand::random();
        let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        println!("token: {token}");
        token
    } else {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .context("reading the token from standard input")?;
        let token = line.trim().to_string();
        anyhow::ensure!(
            token.len() >= 16,
            "a token should be at least 16 characters; try --generate"
        );
        token
    };
    println!("{}", hazard_gateway::api::auth::hash_token(&token));
    Ok(ExitCode::SUCCESS)
}

/// The built-in profiles plus those of `dir`; every error names its file, line and key.
fn load_profiles(dir: Option<&Path>) -> Result<ProfileSet> {
    let mut set = ProfileSet::builtin().map_err(|e| anyhow::anyhow!("{}", hazard_gateway::config::ConfigErrors(e)))?;
    if let Some(dir) = dir {
        set.load_dir(dir)
            .map_err(|e| anyhow::anyhow!("{}", hazard_gateway::config::ConfigErrors(e)))?;
    }
    Ok(set)
}

fn profiles(action: ProfilesAction) -> Result<ExitCode> {
    let dir = match &action {
        ProfilesAction::List { profile_dir } | ProfilesAction::Show { profile_dir, .. } => profile_dir.clone(),
    };
    let set = match load_profiles(dir.as_deref()) {
        Ok(set) => set,
        Err(e) => {
            eprintln!("{e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    match action {
        ProfilesAction::List { .. } => {
            for p in set.iter() {
                let drills: Vec<&str> = p.scenarios.keys().map(|k| k.as_str()).collect();
                println!("{:<24} {:<90} drills: {}", p.name, p.description, drills.join(", "));
            }
        }
        ProfilesAction::Show { name, .. } => {
            let p = set
                .get(&name)
                .with_context(|| format!("no profile `{name}`; known: {}", set.names().join(", ")))?;
            print!("{}", p.describe());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// This process's link to the service manager (systemd `Type=notify`): readiness, the
/// watchdog fed while the gateway is healthy, and the stop notice. Inert outside systemd.
struct Service {
    #[cfg(unix)]
    notifier: Option<std::sync::Arc<hazard_gateway::sd_notify::Notifier>>,
    watchdog_stop: CancellationToken,
}

impl Service {
    /// Tells the service manager that `gateway` is up and starts feeding its watchdog.
    fn started(gateway: &Gateway) -> Service {
        let watchdog_stop = CancellationToken::new();
        #[cfg(unix)]
        {
            use hazard_gateway::sd_notify::{Notifier, run_watchdog};
            let notifier = match Notifier::from_env() {
                Ok(n) => n.map(std::sync::Arc::new),
                Err(e) => {
                    error!(error = %e, "Cannot talk to the service manager; running without its watchdog");
                    None
                }
            };
            if let Some(n) = &notifier {
                n.send(&format!(
                    "READY=1\nSTATUS=Monitoring {} points; API on {}",
                    gateway.state.points.len(),
                    gateway.api_addr
                ));
                let state = gateway.state.clone();
                let clock = clock::system();
                let check = move || {
                    hazard_gateway::health::rules_problem(clock.now(), state.rules_heartbeat())
                        .into_iter()
                        .collect()
                };
                tokio::spawn(run_watchdog(n.clone(), check, watchdog_stop.clone()));
            }
            Service {
                notifier,
                watchdog_stop,
            }
        }
        #[cfg(not(unix))]
        {
            let _ = gateway;
            Service { watchdog_stop }
        }
    }

    /// Tells the service manager that a config reload has begun.
    fn reloading(&self) {
        #[cfg(unix)]
        if let Some(n) = &self.notifier {
            n.send("RELOADING=1\nSTATUS=Reloading the config");
        }
    }

    /// Tells the service manager that the reload is over (applied or refused: it runs on).
    fn reloaded(&self) {
        #[cfg(unix)]
        if let Some(n) = &self.notifier {
            n.send("READY=1\nSTATUS=Monitoring; config reload handled (see the log)");
        }
    }

    /// Tells the service manager that an orderly stop has begun.
    fn stopping(&self) {
        self.watchdog_stop.cancel();
        #[cfg(unix)]
        if let Some(n) = &self.notifier {
            n.send("STOPPING=1\nSTATUS=Stopping: draining rules, flushing history and buffers");
        }
    }
}

/// Serves until SIGINT or SIGTERM; on SIGHUP re-reads and applies the config file, logging
/// what changed or every error (a refused config leaves the running one in place).
async fn run_until_stopped(gateway: &Gateway, service: &Service) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hup = match signal(SignalKind::hangup()) {
            Ok(h) => h,
            Err(e) => {
                error!(error = %e, "Cannot watch SIGHUP; reload through the API only");
                wait_for_shutdown_signal().await;
                return;
            }
        };
        let stop = wait_for_shutdown_signal();
        tokio::pin!(stop);
        loop {
            tokio::select! {
                () = &mut stop => return,
                _ = hup.recv() => {
                    info!("SIGHUP: reloading the config");
                    service.reloading();
                    let outcome = gateway.reload().await;
                    hazard_gateway::pipeline::log_reload("sighup", None, &outcome);
                    service.reloaded();
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (gateway, service);
        wait_for_shutdown_signal().await;
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn wait_for_shutdown_signal() {
    let token = CancellationToken::new();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(e) => {
                error!(error = %e, "Cannot watch SIGTERM; stopping on Ctrl-C only");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
    token.cancel();
    info!("Shutting down");
}

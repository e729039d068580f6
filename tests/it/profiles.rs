//! Every built-in device profile, end to end: it loads, our simulator serves it, an in-process
//! gateway polls it, and each of its drills raises the default alarms it is meant to show and
//! clears them afterwards. Time is a manual clock shared by the simulators and the gateway, so
//! hours-long drills (a seepage line rising over two hours) take a few real polls.
//!
//! Also: profile validation errors name file, line and key; every example site config runs
//! against simulators of its devices with good readings.

use crate::support;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hazard_gateway::clock::{ManualClock, SharedClock};
use hazard_gateway::config::{GatewayConfig, Profile, ProfileSet};
use hazard_gateway::model::{Quality, Timestamp};
use hazard_gateway::pipeline::Gateway;
use hazard_gateway::sources::sim::scenario::StatusLink;
use hazard_gateway::sources::sim::{Drill, Scenario, ScenarioKind, SimTransport, Simulator};
use support::{TestGateway, wait_for};

/// How long the gateway may take to reflect a change it has already polled.
const SETTLE: Duration = Duration::from_secs(40);

/// 2026-01-01T00:00:00Z.
fn epoch() -> Timestamp {
    Timestamp::from_nanos(1_767_225_600 * 1_000_000_000)
}

/// `epoch()` plus `d`.
fn at(d: Duration) -> Timestamp {
    Timestamp::from_nanos(epoch().as_nanos() + i64::try_from(d.as_nanos()).unwrap())
}

/// What one drill must show, on one device named after the drill.
#[derive(Debug)]
struct Expectation {
    kind: ScenarioKind,
    /// Alarm ids that must be active during the drill and inactive after it.
    alarms: Vec<String>,
    /// Status points that must read 1 during the drill.
    bits_set: Vec<String>,
    /// When to look for the raised alarms, and when for the cleared ones.
    raised_at: Duration,
    cleared_at: Duration,
    /// Moments to poll at on the way (entering the hold, leaving the drill).
    steps: Vec<Duration>,
}

fn expectation(p: &Profile, kind: ScenarioKind, d: &Drill) -> Expectation {
    let device = kind.as_str().to_string();
    let id = |key: &str| format!("{device}/{key}");
    let mut alarms = Vec::new();
    let mut bits_set = Vec::new();
    let mut on_delay = Duration::ZERO;
    let mut off_delay = Duration::ZERO;
    for &i in &d.targets {
        let pt = &p.points[i];
        let sp = pt.setpoints.as_ref();
        let value = match kind {
            ScenarioKind::Leak | ScenarioKind::SlowRise => pt.drill.excursion,
            ScenarioKind::SensorFault if pt.register.range.is_some() => {
                alarms.push(format!("{}:sensor_fault", id(&pt.key)));
                None
            }
            ScenarioKind::SensorFault => pt.drill.fault,
            ScenarioKind::CommLoss => None,
        };
        if let (Some(v), Some(sp)) = (value, sp) {
            for l in sp.limits() {
                if (l.falling && v <= l.value) || (!l.falling && v >= l.value) {
                    alarms.push(format!("{}:{}", id(&pt.key), l.level.as_str()));
                    on_delay = on_delay.max(sp.on_delay);
                    off_delay = off_delay.max(sp.off_delay);
                }
            }
        }
        for (j, other) in p.points.iter().enumerate() {
            let set = match (other.drill.status, kind, pt.drill.excursion) {
                (Some(StatusLink::Follows { index, on, .. }), ScenarioKind::Leak | ScenarioKind::SlowRise, Some(x)) => {
                    index == i && x >= on
                }
                (Some(StatusLink::FaultOf { index }), ScenarioKind::SensorFault, _) => index == i,
                _ => false,
            };
            if set && j != i {
                bits_set.push(id(&other.key));
            }
        }
    }
    if kind == ScenarioKind::CommLoss {
        alarms.push(format!("{device}:communication"));
    }
    let e = &d.episode;
    let hold_start = e.start + e.rise + Duration::from_secs(1);
    let raised_at = hold_start + on_delay + Duration::from_secs(1);
    assert!(
        raised_at < e.start + e.rise + e.hold,
        "{}: the {kind} drill's hold is too short for its on-delays",
        p.name
    );
    let end = e.end() + Duration::from_secs(1);
    let cleared_at = end + off_delay + Duration::from_secs(1);
    Expectation {
        kind,
        alarms,
        bits_set,
        raised_at,
        cleared_at,
        steps: vec![hold_start, end],
    }
}

/// Waits until the gateway has evaluated a poll of every point begun at or after `at`.
async fn settle(gw: &Gateway, at: Timestamp, what: &str) {
    wait_for(what, SETTLE, || async {
        gw.state
            .readings()
            .iter()
            .all(|(_, r)| r.is_some_and(|r| r.ts >= at))
            .then_some(())
    })
    .await;
}

fn active_ids(gw: &Gateway) -> BTreeMap<String, &'static str> {
    gw.state
        .active_alarms()
        .into_iter()
        .map(|a| (a.alarm_id.clone(), a.state.as_str()))
        .collect()
}

fn is_active(state: &str) -> bool {
    matches!(state, "unack_active" | "ack_active")
}

/// Runs every drill of `profile` on one gateway: one simulated device per drill.
async fn drill_profile(profile: Profile) {
    let clock = Arc::new(ManualClock::new(epoch()));
    let shared: SharedClock = clock.clone();
    let mut sims = Vec::new();
    let mut devices = String::new();
    let mut expectations = Vec::new();
    for (kind, d) in &profile.scenarios {
        let scenario = Scenario::Drill {
            kind: *kind,
            points: None,
            repeat_every: None,
        };
        let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let sim = Simulator::serve_on(
            profile.clone(),
            SimTransport::Tcp(listen),
            None,
            Some(scenario),
            shared.clone(),
        )
        .await
        .expect("simulator starts");
        devices.push_str(&format!(
            "[[devices]]\nname = \"{}\"\nprofile = \"{}\"\ntransport = {{ tcp = \"{}\" }}\ninterval = \"100ms\"\ntimeout = \"300ms\"\nretries = 0\n\n",
            kind.as_str(),
            profile.name,
            sim.local_addr()
        ));
        sims.push(sim);
        expectations.push(expectation(&profile, *kind, d));
    }
    for kind in ScenarioKind::ALL {
        assert!(
            profile.scenarios.contains_key(&kind),
            "{} offers no {kind} drill",
            profile.name
        );
    }
    // Each default set-point level of every point is shown by the leak drill.
    let leak = expectations.iter().find(|e| e.kind == ScenarioKind::Leak).unwrap();
    for pt in &profile.points {
        for l in pt.setpoints.iter().flat_map(|s| s.limits()) {
            let id = format!("leak/{}:{}", pt.key, l.level.as_str());
            let by_fault = pt.register.range.is_none() && pt.drill.fault.is_some();
            assert!(
                by_fault || leak.alarms.contains(&id),
                "{}: no drill raises {id}",
                profile.name
            );
        }
    }
    let config = format!(
        "[gateway]\nid = \"drill-{}\"\n[api]\nlisten = \"127.0.0.1:0\"\n\n{devices}",
        profile.name
    );
    let mut tg = TestGateway::start_with(&config, tempfile::tempdir().unwrap(), shared).await;
    let name = profile.name.clone();
    {
        let gw = tg.gateway.as_ref().unwrap();
        // Everyday values raise nothing.
        let quiet = at(Duration::from_secs(1));
        clock.set(quiet);
        settle(gw, quiet, &format!("{name}: first polls")).await;
        let active = active_ids(gw);
        assert!(active.is_empty(), "{name}: alarms before any drill: {active:?}");

        let mut moments: BTreeSet<Duration> = BTreeSet::new();
        for e in &expectations {
            moments.extend(e.steps.iter().copied());
            moments.insert(e.raised_at);
            moments.insert(e.cleared_at);
        }
        for t in moments {
            let now = at(t);
            clock.set(now);
            settle(gw, now, &format!("{name}: polls at +{t:?}")).await;
            for e in expectations.iter().filter(|e| e.raised_at == t) {
                wait_for(
                    &format!("{name}: {} drill raises {:?}", e.kind, e.alarms),
                    SETTLE,
                    || async {
                        let active = active_ids(gw);
                        e.alarms
                            .iter()
                            .all(|a| active.get(a).is_some_and(|s| is_active(s)))
                            .then_some(())
                    },
                )
                .await;
                let readings = gw.state.readings();
                for bit in &e.bits_set {
                    let id = gw.state.points.id_of(bit).expect("bit point");
                    let r = readings[id.index()].1.expect("bit read");
                    assert_eq!(
                        (r.value, r.quality),
                        (1.0, Quality::Good),
                        "{name}: {bit} during the {} drill",
                        e.kind
                    );
                }
            }
            for e in expectations.iter().filter(|e| e.cleared_at == t) {
                wait_for(
                    &format!("{name}: {} drill clears {:?}", e.kind, e.alarms),
                    SETTLE,
                    || async {
                        let active = active_ids(gw);
                        e.alarms
                            .iter()
                            .all(|a| !active.get(a).is_some_and(|s| is_active(s)))
                            .then_some(())
                    },
                )
                .await;
            }
        }
    }
    tg.shutdown().await;
    drop(sims);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_profile_drill_raises_and_clears_its_default_alarms() {
    let set = ProfileSet::builtin().expect("built-in profiles are valid");
    let profiles: Vec<Profile> = set.iter().cloned().collect();
    assert!(profiles.len() >= 14, "only {} profiles", profiles.len());
    // A few profiles at a time keep the shared machine responsive.
    for chunk in profiles.chunks(6) {
        futures::future::join_all(chunk.iter().cloned().map(drill_profile)).await;
    }
}

/// Writes `profile` as `profiles/bad.toml` beside a config that uses it; returns every
/// error line of the load, formatted as `check-config` prints them.
fn profile_errors(profile: &str) -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("profiles")).unwrap();
    let file = dir.path().join("profiles/bad.toml");
    std::fs::write(&file, profile).unwrap();
    let config = dir.path().join("site.toml");
    std::fs::write(&config, "[gateway]\nid = \"gw\"\nprofile_dirs = [\"profiles\"]\n").unwrap();
    let errors = GatewayConfig::load(&config).expect_err("the profile is refused");
    (errors.to_string(), file.display().to_string())
}

const HEADER: &str = "[profile]\ndescription = \"test\"\n\n";

#[test]
fn overlapping_registers_are_refused_with_their_place() {
    let text = format!(
        "{HEADER}[points.a]\nfunction = \"holding\"\naddress = 10\ntype = \"f32\"\nunit = \"m\"\nkind = \"level\"\n\n[points.b]\nfunction = \"holding\"\naddress = 11\ntype = \"u16\"\nunit = \"m\"\nkind = \"level\"\n\n[points.c]\nfunction = \"holding\"\naddress = 12\ntype = \"bit\"\nbit = 0\nunit = \"\"\nkind = \"state\"\n\n[points.d]\nfunction = \"holding\"\naddress = 12\ntype = \"bit\"\nbit = 1\nunit = \"\"\nkind = \"state\"\n"
    );
    let (errors, file) = profile_errors(&text);
    assert!(
        errors.contains(&format!(
            "{file}:11:1: points.b.address: holding u16 at 11 overlaps point `a` (f32 at 10)"
        )),
        "{errors}"
    );
    assert_eq!(
        errors.lines().count(),
        1,
        "bits 0 and 1 of one register may share it: {errors}"
    );
}

#[test]
fn an_unknown_type_is_refused_with_its_line_and_key() {
    let text = format!(
        "{HEADER}[points.a]\nfunction = \"holding\"\naddress = 0\ntype = \"float\"\nunit = \"m\"\nkind = \"level\"\n"
    );
    let (errors, file) = profile_errors(&text);
    assert!(
        errors.starts_with(&format!("{file}:7:8: points.a.type: unknown variant `float`")),
        "{errors}"
    );
}

#[test]
fn set_points_outside_the_range_are_refused() {
    let text = format!(
        "{HEADER}[points.gas]\nfunction = \"input\"\naddress = 0\ntype = \"u16\"\nraw_range = [4000, 20000]\nrange = [0.0, 100.0]\nunit = \"%LEL\"\nkind = \"gas\"\nsetpoints = {{ high = 25.0, high_high = 120.0 }}\n"
    );
    let (errors, file) = profile_errors(&text);
    assert!(
        errors.contains(&format!(
            "{file}:12:13: points.gas.setpoints: high_high set-point 120 lies outside the instrument's range 0..100"
        )),
        "{errors}"
    );
}

#[test]
fn drill_values_that_would_not_show_the_alarms_are_refused() {
    let text = format!(
        "{HEADER}[points.gas]\nfunction = \"input\"\naddress = 0\ntype = \"u16\"\nraw_range = [4000, 20000]\nrange = [0.0, 100.0]\nunit = \"%LEL\"\nkind = \"gas\"\nsetpoints = {{ high = 25.0, high_high = 50.0, deadband = 2.0 }}\nsim = {{ base = 24.0, excursion = 40.0, fault = 50.0 }}\n\n[points.relay]\nfunction = \"input\"\naddress = 1\ntype = \"bit\"\nbit = 0\nunit = \"\"\nkind = \"state\"\nsim = {{ follows = \"nope\", on = 25.0 }}\n"
    );
    let (errors, file) = profile_errors(&text);
    let at = format!("{file}:4:1: points.gas.sim: ");
    for msg in [
        "the everyday signal (24..24) reaches the high set-point 25 (clearing at 23): a nuisance alarm",
        "excursion 40 does not pass the high_high set-point 50; a drill would not show it",
        "fault value 50 reads back as a good value; use one outside the measuring range",
    ] {
        assert!(errors.contains(&format!("{at}{msg}")), "{msg}\n{errors}");
    }
    assert!(
        errors.contains("points.relay.sim: follows `nope`, which is not another point of this profile"),
        "{errors}"
    );
}

/// Starts a simulator for every device of an example config and runs the config against
/// them (transports pointed at the simulators, API on a free port, a private data dir).
async fn run_example(path: &std::path::Path) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut doc: toml::Table = toml::from_str(&text).unwrap();
    let set = ProfileSet::builtin().unwrap();
    let mut sims = Vec::new();
    let devices = doc.get_mut("devices").and_then(|d| d.as_array_mut()).expect("devices");
    for dev in devices.iter_mut() {
        let t = dev.as_table_mut().unwrap();
        let profile = set.get(t["profile"].as_str().unwrap()).unwrap().clone();
        let sim = Simulator::serve(profile, SimTransport::Tcp("127.0.0.1:0".parse().unwrap()), None, None)
            .await
            .unwrap();
        let mut transport = toml::Table::new();
        transport.insert("tcp".into(), sim.local_addr().to_string().into());
        t.insert("transport".into(), transport.into());
        t.insert("interval".into(), "200ms".into());
        sims.push(sim);
    }
    let gateway = doc["gateway"].as_table_mut().unwrap();
    gateway.remove("data_dir");
    let mut api = toml::Table::new();
    api.insert("listen".into(), "127.0.0.1:0".into());
    doc.insert("api".into(), api.into());
    doc.remove("tsdb");
    doc.remove("webhooks");
    doc.remove("mqtt_north");
    // Regulator platforms are outside too (their secrets come from the site's environment).
    doc.remove("uplinks");
    let config = toml::to_string(&doc).unwrap();
    let mut tg = TestGateway::start(&config).await;
    let gw = tg.gateway.as_ref().unwrap();
    let name = path.display().to_string();
    wait_for(&format!("{name}: good readings from every point"), SETTLE, || async {
        let readings = gw.state.readings();
        readings
            .iter()
            .all(|(_, r)| r.is_some_and(|r| r.quality == Quality::Good))
            .then_some(())
    })
    .await;
    let comm: Vec<String> = gw
        .state
        .active_alarms()
        .into_iter()
        .filter(|a| a.condition.as_str() != "threshold")
        .map(|a| a.alarm_id)
        .collect();
    assert!(comm.is_empty(), "{name}: fault alarms on healthy simulators: {comm:?}");
    tg.shutdown().await;
    drop(sims);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_site_examples_run_against_simulators() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/examples");
    for name in [
        "chemical-tank-farm.toml",
        "tailings-pond.toml",
        "coal-mine-working-face.toml",
    ] {
        let path = dir.join(name);
        GatewayConfig::load(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        run_example(&path).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulate_plays_a_profile_drill_from_the_command_line() {
    let out = std::process::Command::new(support::binary())
        .args(["simulate", "--profile", "mine-ch4", "--scenario", "flood"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no scenario `flood`; known: leak, slow_rise, sensor_fault, comm_loss"),
        "{stderr}"
    );

    let port = support::free_port();
    let child = std::process::Command::new(support::binary())
        .args([
            "simulate",
            "--profile",
            "mine-ch4",
            "--scenario",
            "sensor-fault",
            "--listen",
        ])
        .arg(format!("127.0.0.1:{port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let _child = support::KillOnDrop(child);
    let mut gw = TestGateway::start(&format!(
        "[gateway]\nid = \"gw\"\n[api]\nlisten = \"127.0.0.1:0\"\n[[devices]]\nname = \"T0\"\nprofile = \"mine-ch4\"\ntransport = {{ tcp = \"127.0.0.1:{port}\" }}\ninterval = \"200ms\"\n"
    ))
    .await;
    wait_for("good methane readings before the drill", SETTLE, || async {
        (gw.point("T0/ch4").await["quality"] == "good").then_some(())
    })
    .await;
    // The drill starts 5 s after the simulator: the sensor reports its fault code and fault bit.
    wait_for("the sensor-fault alarm of the drill", SETTLE, || async {
        gw.alarm("T0/ch4:sensor_fault").await.map(|_| ())
    })
    .await;
    assert_eq!(gw.point("T0/ch4").await["quality"], "out_of_range");
    assert_eq!(gw.point("T0/fault").await["value"], 1.0);
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_methane_power_cut_alarm_clears_only_below_the_restore_value() {
    let sim = support::simulator("mine-ch4", None).await;
    let mut gw = TestGateway::start(&format!(
        "[gateway]\nid = \"gw\"\n[api]\nlisten = \"127.0.0.1:0\"\n[[devices]]\nname = \"T0\"\nprofile = \"mine-ch4\"\ntransport = {{ tcp = \"{}\" }}\ninterval = \"100ms\"\n",
        sim.local_addr()
    ))
    .await;
    let state = |id: &'static str| {
        let gw = &gw;
        async move {
            gw.alarm(id)
                .await
                .map(|a| a["state"].as_str().unwrap_or_default().to_string())
        }
    };
    let reads = |v: f64| {
        let gw = &gw;
        async move { (gw.point("T0/ch4").await["value"] == v).then_some(()) }
    };
    sim.pin("ch4", 1.6);
    wait_for("the power-cut alarm at 1.6 %", SETTLE, || async {
        (state("T0/ch4:high_high").await.as_deref() == Some("unack_active")).then_some(())
    })
    .await;
    // Down through the band between restore and cut; readings are evaluated in order, so once
    // the last value shows, the earlier ones have had their say.
    for v in [1.2, 1.1, 1.05] {
        sim.pin("ch4", v);
        wait_for(&format!("the gateway to read {v} %"), SETTLE, || reads(v)).await;
    }
    assert_eq!(state("T0/ch4:high_high").await.as_deref(), Some("unack_active"));
    assert_eq!(
        gw.point("T0/power_cut").await["value"],
        1.0,
        "the substation keeps the power cut"
    );
    sim.pin("ch4", 0.99);
    wait_for("power restored below 1.0 %", SETTLE, || async {
        (state("T0/ch4:high_high").await.as_deref() == Some("unack_rtn")).then_some(())
    })
    .await;
    assert_eq!(state("T0/ch4:high").await.as_deref(), Some("unack_rtn"));
    gw.shutdown().await;
}

#[test]
fn a_clear_value_past_its_set_point_is_refused_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("site.toml");
    std::fs::write(
        &config,
        "[gateway]\nid = \"gw\"\n\n[[devices]]\nname = \"T0\"\nprofile = \"mine-ch4\"\ntransport = { tcp = \"10.0.0.1:502\" }\n\n[[rules]]\npoints = \"T0/ch4\"\nthreshold = { high_high = 1.0, clear = { high_high = 1.2 } }\n",
    )
    .unwrap();
    let errors = GatewayConfig::load(&config).expect_err("refused").to_string();
    assert!(
        errors.contains(&format!(
            "{}:11:13: rules[0].threshold: clear.high_high (1.2) must not be above the high_high set-point (1) (point `T0/ch4`)",
            config.display()
        )),
        "{errors}"
    );
}

#[test]
fn profiles_show_prints_the_register_table_and_checks_a_site_profile_dir() {
    let out = std::process::Command::new(support::binary())
        .args(["profiles", "show", "mine-ch4"])
        .output()
        .unwrap();
    let show = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{show}");
    for line in [
        "power_cut          holding      1.1 bit",
        "ch4              high=1 [high]  high_high=1.5 (clears below 1) [critical]",
        "comm_loss      start 5s rise 0s hold 1m fall 0s; on the whole device",
    ] {
        assert!(show.contains(line), "{line}\n{show}");
    }

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("site-gauge.toml");
    std::fs::write(
        &file,
        format!("{HEADER}[points.level]\nfunction = \"holding\"\naddress = 0\ntype = \"f32\"\nrange = [0.0, 10.0]\nunit = \"m\"\nkind = \"level\"\nsetpoints = {{ high = 12.0 }}\n"),
    )
    .unwrap();
    let out = std::process::Command::new(support::binary())
        .args(["profiles", "list", "--profile-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "{}:11:13: points.level.setpoints: high set-point 12 lies outside the instrument's range 0..10",
            file.display()
        )),
        "{stderr}"
    );
}

//! Imports between the top-level modules of `src/` run one way (docs/architecture.md): no two
//! modules import each other, directly or round a longer loop, and none of the wrong-way arrows
//! below exists. Reads the source text, as `crate::<module>` references, so it needs no tool.
//! Code after a file's first `#[cfg(test)]` and test-only files (`tests.rs`, files under a
//! `tests/` folder) are skipped: tests may import anything.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Where a reference was seen: file and 1-based line.
type Seen = (PathBuf, usize);

/// Every arrow `from -> to` between top-level modules, with the first place that makes it.
type Graph = BTreeMap<(String, String), Seen>;

/// Arrows that must not exist, whatever else is true.
const FORBIDDEN: &[(&str, &str)] = &[
    ("sources", "sinks"),
    ("sources", "rules"),
    ("sources", "api"),
    ("rules", "sinks"),
    ("rules", "api"),
    ("sinks", "sources"),
    ("api", "sources"),
    ("telemetry", "sinks"),
    ("telemetry", "sources"),
];

/// Modules that import nothing of ours but the ones listed: the model is the shared
/// vocabulary, `spec` the config building blocks every component uses; the KPI engine is a
/// pure function of journaled alarm events.
const LEAVES: &[(&str, &[&str])] = &[("model", &[]), ("spec", &["model"]), ("kpi", &["model", "spec"])];

#[test]
fn imports_between_top_level_modules_run_one_way() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files = read_sources(&src);
    assert!(
        files.len() > 50,
        "found only {} source files under {}",
        files.len(),
        src.display()
    );
    let graph = import_graph(&files);
    for (from, to) in [("pipeline", "sources"), ("sinks", "model"), ("config", "sources")] {
        assert!(
            graph.contains_key(&(from.to_string(), to.to_string())),
            "the scan missed {from} -> {to}; it reads no imports"
        );
    }
    let problems = layer_problems(&graph);
    assert!(problems.is_empty(), "layer problems:\n{}", problems.join("\n"));
}

#[test]
fn a_cycle_and_a_wrong_way_import_are_reported_with_file_and_line() {
    let file = |path: &str, text: &str| (PathBuf::from(path), text.to_string());
    let files = vec![
        file("src/lib.rs", "pub mod api;\n"),
        file("src/config/mod.rs", "use crate::sinks::tsdb::TsdbSpec;\n"),
        file("src/sinks/tsdb/config.rs", "// spec\nuse crate::state::X;\n"),
        file("src/state.rs", "fn f(_: crate::config::GatewayConfig) {}\n"),
        file("src/model/mod.rs", "use crate::model::Reading;\n"),
        file(
            "src/api/mod.rs",
            "\n\nuse crate::sources::modbus::health::HealthBoard;\n",
        ),
        file(
            "src/api/auth.rs",
            "#[cfg(test)]\nmod tests { use crate::sinks::journal::Journal; }\n",
        ),
        file("src/sinks/tests.rs", "use crate::api::Anything;\n"),
        file("src/spec/units.rs", "use crate::model::Timestamp;\n"),
        file("src/sources/mod.rs", "pub mod modbus;\n"),
    ];
    let graph = import_graph(&files);
    let arrows: BTreeSet<String> = graph.keys().map(|(a, b)| format!("{a}->{b}")).collect();
    let expected: BTreeSet<String> = [
        "api->sources",
        "config->sinks",
        "sinks->state",
        "spec->model",
        "state->config",
    ]
    .map(String::from)
    .into();
    assert_eq!(
        arrows, expected,
        "lib.rs, self-references, cfg(test) tails and tests.rs are skipped"
    );
    let problems = layer_problems(&graph);
    assert_eq!(problems.len(), 2, "{problems:#?}");
    assert!(
        problems[0].starts_with("cycle config -> sinks -> state -> config")
            && problems[0].contains("src/sinks/tsdb/config.rs:2"),
        "{}",
        problems[0]
    );
    assert_eq!(problems[1], "forbidden api -> sources at src/api/mod.rs:3");

    let leaf = import_graph(&[
        file("src/model/mod.rs", "use crate::clock::Clock;\n"),
        file("src/clock.rs", "pub struct Clock;\n"),
    ]);
    assert_eq!(
        layer_problems(&leaf),
        ["model imports nothing of ours but [], yet model -> clock at src/model/mod.rs:1"]
    );
}

/// Every `.rs` file under `src`, with its text.
fn read_sources(src: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
        for entry in entries {
            let path = entry
                .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
                .path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|x| x == "rs") {
                let text =
                    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
                let rel = path
                    .strip_prefix(src.parent().unwrap_or(src))
                    .unwrap_or(&path)
                    .to_path_buf();
                out.push((rel, text));
            }
        }
    }
    out.sort();
    out
}

/// The top-level module a file under `src/` belongs to (`None` for the crate roots).
fn top_module(path: &Path) -> Option<String> {
    let mut parts = path.components().map(|c| c.as_os_str().to_string_lossy().into_owned());
    let first = parts.next()?;
    let top = if first == "src" { parts.next()? } else { first };
    let top = top.strip_suffix(".rs").unwrap_or(&top).to_string();
    (top != "lib" && top != "main").then_some(top)
}

/// True for files only tests compile.
fn test_only(path: &Path) -> bool {
    path.file_name().is_some_and(|f| f == "tests.rs") || path.components().any(|c| c.as_os_str() == "tests")
}

/// The arrows between top-level modules that `files` make, each with its first place.
fn import_graph(files: &[(PathBuf, String)]) -> Graph {
    let tops: BTreeSet<String> = files.iter().filter_map(|(p, _)| top_module(p)).collect();
    let mut graph = Graph::new();
    for (path, text) in files {
        let Some(from) = top_module(path) else { continue };
        if test_only(path) {
            continue;
        }
        let text = text.find("#[cfg(test)]").map_or(text.as_str(), |cut| &text[..cut]);
        for (i, line) in text.lines().enumerate() {
            for (at, _) in line.match_indices("crate::") {
                let name: String = line[at + "crate::".len()..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if name != from && tops.contains(&name) {
                    graph
                        .entry((from.clone(), name))
                        .or_insert_with(|| (path.clone(), i + 1));
                }
            }
        }
    }
    graph
}

/// Cycles (any length), forbidden arrows and imports out of the leaf modules, each naming the
/// file and line that makes the arrow.
fn layer_problems(graph: &Graph) -> Vec<String> {
    let at = |a: &str, b: &str| {
        let (file, line) = &graph[&(a.to_string(), b.to_string())];
        format!("{}:{line}", file.display())
    };
    let mut out = Vec::new();
    for cycle in cycles(graph) {
        let steps: Vec<String> = cycle
            .windows(2)
            .map(|w| format!("{} -> {} ({})", w[0], w[1], at(&w[0], &w[1])))
            .collect();
        out.push(format!("cycle {}: {}", cycle.join(" -> "), steps.join(", ")));
    }
    for (a, b) in FORBIDDEN {
        if graph.contains_key(&(a.to_string(), b.to_string())) {
            out.push(format!("forbidden {a} -> {b} at {}", at(a, b)));
        }
    }
    for (leaf, allowed) in LEAVES {
        for (a, b) in graph.keys() {
            if a == leaf && !allowed.contains(&b.as_str()) {
                out.push(format!(
                    "{leaf} imports nothing of ours but {allowed:?}, yet {a} -> {b} at {}",
                    at(a, b)
                ));
            }
        }
    }
    out
}

/// One cycle per strongly connected group of modules, as a closed path (`a, b, .., a`),
/// starting from its alphabetically first module.
fn cycles(graph: &Graph) -> Vec<Vec<String>> {
    let mut next: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (a, b) in graph.keys() {
        next.entry(a.as_str()).or_default().push(b.as_str());
    }
    let reach = |start: &str| {
        let mut seen = BTreeSet::new();
        let mut todo = vec![start];
        while let Some(n) = todo.pop() {
            for &m in next.get(n).into_iter().flatten() {
                if seen.insert(m) {
                    todo.push(m);
                }
            }
        }
        seen
    };
    let mut reported: BTreeSet<&str> = BTreeSet::new();
    let mut out = Vec::new();
    for &start in next.keys() {
        if reported.contains(start) || !reach(start).contains(start) {
            continue;
        }
        // Shortest way round from `start` back to itself (breadth first).
        let mut prev: BTreeMap<&str, &str> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([start]);
        'search: while let Some(n) = queue.pop_front() {
            for &m in next.get(n).into_iter().flatten() {
                if m == start {
                    prev.insert(start, n);
                    break 'search;
                }
                if !prev.contains_key(m) {
                    prev.insert(m, n);
                    queue.push_back(m);
                }
            }
        }
        let mut path = vec![start];
        let mut n = prev[start];
        while n != start {
            path.push(n);
            n = prev[n];
        }
        path.push(start);
        path.reverse();
        // Every module on a loop with `start` is reported with it.
        let group: BTreeSet<&str> = reach(start).into_iter().filter(|m| reach(m).contains(start)).collect();
        reported.extend(group);
        out.push(path.into_iter().map(String::from).collect());
    }
    out
}

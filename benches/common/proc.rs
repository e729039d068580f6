//! What the load harnesses read about a process from `/proc`: CPU time, memory, open files.
//! Shared by the harnesses through `#[path]`; each uses a part, hence the allowance.
#![allow(dead_code)]

/// User + system CPU seconds of a process (`self` or a pid), from /proc/<pid>/stat.
pub(crate) fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the full line: 12 and 13 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

/// A `kB` line of /proc/<pid>/status (`VmRSS:`, `VmHWM:`), in KiB; 0 if unreadable.
pub(crate) fn status_kib(pid: &str, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

/// A `kB` line of /proc/<pid>/status, in MiB.
pub(crate) fn status_mib(pid: &str, key: &str) -> f64 {
    status_kib(pid, key) as f64 / 1024.0
}

/// Peak resident set (VmHWM) of this process, in MiB.
pub(crate) fn peak_rss_mib() -> f64 {
    status_mib("self", "VmHWM:")
}

/// Open file descriptors of a process.
pub(crate) fn open_files(pid: &str) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

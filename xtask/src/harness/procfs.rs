//! CPU time and memory of a process under test, from /proc. A proxy may be
//! several processes (nginx's master and worker), so figures are summed
//! over the process and its descendants.

use std::collections::HashMap;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context;

/// How often memory is read while load runs.
const RSS_SAMPLE_EVERY: Duration = Duration::from_millis(100);

pub fn clock_ticks_per_second() -> anyhow::Result<f64> {
    let output = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .context("running getconf CLK_TCK")?;
    let text = String::from_utf8_lossy(&output.stdout);
    text.trim()
        .parse()
        .with_context(|| format!("getconf CLK_TCK printed {text:?}"))
}

/// User and system CPU time, in clock ticks.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CpuTicks {
    pub user: u64,
    pub system: u64,
}

impl CpuTicks {
    pub fn since(self, earlier: Self) -> Self {
        Self {
            user: self.user.saturating_sub(earlier.user),
            system: self.system.saturating_sub(earlier.system),
        }
    }

    pub fn total(self) -> u64 {
        self.user + self.system
    }
}

/// utime and stime of `pid` and every live descendant.
pub fn tree_cpu_ticks(pid: u32) -> anyhow::Result<CpuTicks> {
    let mut sum = cpu_ticks(pid)?;
    for child in descendants(pid) {
        // A descendant may exit between the scan and the read.
        if let Ok(ticks) = cpu_ticks(child) {
            sum.user += ticks.user;
            sum.system += ticks.system;
        }
    }
    Ok(sum)
}

/// User time of this process and of the children it has waited for (the
/// load generators it ran), in clock ticks.
pub fn own_user_ticks() -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").context("reading /proc/self/stat")?;
    parse_own_user_ticks(&stat).with_context(|| format!("cannot read /proc/self/stat: {stat:?}"))
}

fn parse_own_user_ticks(stat: &str) -> Option<u64> {
    // utime and cutime are fields 14 and 16 of the whole line.
    let fields = fields_after_name(stat)?;
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let cutime: u64 = fields.get(13)?.parse().ok()?;
    Some(utime + cutime)
}

fn cpu_ticks(pid: u32) -> anyhow::Result<CpuTicks> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse_cpu_ticks(&stat).with_context(|| format!("cannot read {path}: {stat:?}"))
}

/// The fields after the command name. It may hold spaces and parentheses:
/// count from the last `)`; the first field after it is the state (field 3).
fn fields_after_name(stat: &str) -> Option<Vec<&str>> {
    let (_, fields) = stat.rsplit_once(')')?;
    Some(fields.split_whitespace().collect())
}

fn parse_cpu_ticks(stat: &str) -> Option<CpuTicks> {
    // utime and stime are fields 14 and 15 of the whole line.
    let fields = fields_after_name(stat)?;
    Some(CpuTicks {
        user: fields.get(11)?.parse().ok()?,
        system: fields.get(12)?.parse().ok()?,
    })
}

/// The parent pid, field 4.
fn parse_parent(stat: &str) -> Option<u32> {
    fields_after_name(stat)?.get(1)?.parse().ok()
}

/// Every live descendant of `pid`, from one scan of /proc.
pub fn descendants(pid: u32) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    let entries = std::fs::read_dir("/proc").into_iter().flatten().flatten();
    for entry in entries {
        let Some(child) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        if let Some(parent) = parse_parent(&stat) {
            children.entry(parent).or_default().push(child);
        }
    }
    let mut found = Vec::new();
    let mut next = vec![pid];
    while let Some(parent) = next.pop() {
        for &child in children.get(&parent).into_iter().flatten() {
            found.push(child);
            next.push(child);
        }
    }
    found
}

/// User-space time (user + nice) CPU `cpu` has run, in clock ticks, from
/// /proc/stat: minus the proxy's own utime, what other processes took from
/// the proxy's CPU.
pub fn cpu_user_ticks(cpu: &str) -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
    parse_cpu_user_ticks(&stat, cpu).with_context(|| format!("no cpu{cpu} in /proc/stat"))
}

fn parse_cpu_user_ticks(stat: &str, cpu: &str) -> Option<u64> {
    let name = format!("cpu{cpu}");
    let line = stat
        .lines()
        .find(|line| line.split_whitespace().next() == Some(name.as_str()))?;
    let mut fields = line.split_whitespace().skip(1);
    let user: u64 = fields.next()?.parse().ok()?;
    let nice: u64 = fields.next()?.parse().ok()?;
    Some(user + nice)
}

/// A `kB` field of `/proc/PID/status`, e.g. `VmRSS`.
pub fn proc_status_kb(pid: u32, field: &str) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse_status_kb(&status, field).with_context(|| format!("no {field} in {path}"))
}

fn parse_status_kb(status: &str, field: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|value| value.trim().strip_suffix("kB")?.trim().parse().ok())
}

/// Resident memory of `pid` and its descendants.
pub fn tree_rss_kb(pid: u32) -> anyhow::Result<u64> {
    let own = proc_status_kb(pid, "VmRSS")?;
    Ok(own + rss_sum_kb(&descendants(pid)))
}

/// Resident memory of `pids`, skipping those that are gone.
fn rss_sum_kb(pids: &[u32]) -> u64 {
    pids.iter()
        .filter_map(|&pid| proc_status_kb(pid, "VmRSS").ok())
        .sum()
}

/// The largest resident memory of process trees seen while they run (one
/// proxy, or both of a pair, summed): a tree has no high-water mark of its
/// own, and one process's VmHWM includes start-up. The trees are scanned
/// once: proxies start their workers before they serve.
pub struct RssSampler {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<u64>,
}

impl RssSampler {
    pub fn start(roots: &[u32]) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let mut pids: Vec<u32> = roots.iter().flat_map(|&root| descendants(root)).collect();
        pids.extend_from_slice(roots);
        let thread = std::thread::spawn(move || {
            let mut max = 0;
            while !stopped.load(Ordering::Relaxed) {
                max = max.max(rss_sum_kb(&pids));
                std::thread::sleep(RSS_SAMPLE_EVERY);
            }
            max.max(rss_sum_kb(&pids))
        });
        Self { stop, thread }
    }

    pub fn max_kb(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str =
        "4242 (weft (x) y) S 17 4242 4242 0 -1 4194560 900 0 0 0 1234 567 0 0 20 0 2 0";

    #[test]
    fn reads_cpu_ticks_past_odd_command_names() {
        let ticks = CpuTicks {
            user: 1234,
            system: 567,
        };
        assert_eq!(parse_cpu_ticks(STAT), Some(ticks));
        assert_eq!(parse_cpu_ticks("4242 (short) S 1"), None);
    }

    #[test]
    fn reads_one_cpus_user_time() {
        let stat = "cpu  10 1 5 100\ncpu0 4 0 2 50\ncpu1 6 1 3 50\ncpu10 9 9 9 9\nintr 1\n";
        assert_eq!(parse_cpu_user_ticks(stat, "1"), Some(7));
        assert_eq!(parse_cpu_user_ticks(stat, "0"), Some(4));
        assert_eq!(parse_cpu_user_ticks(stat, "2"), None);
    }

    #[test]
    fn adds_waited_childrens_user_time_to_its_own() {
        let stat = "7 (xtask) R 1 7 7 0 -1 0 0 0 0 0 300 20 45 6 20 0 9 0";
        assert_eq!(parse_own_user_ticks(stat), Some(345));
        assert_eq!(parse_own_user_ticks("7 (xtask) R 1"), None);
    }

    #[test]
    fn reads_the_parent_pid() {
        assert_eq!(parse_parent(STAT), Some(17));
    }

    #[test]
    fn reads_status_fields_in_kb() {
        let status = "Name:\tnginx\nVmHWM:\t   13000 kB\nVmRSS:\t   12624 kB\n";
        assert_eq!(parse_status_kb(status, "VmRSS"), Some(12_624));
        assert_eq!(parse_status_kb(status, "VmHWM"), Some(13_000));
        assert_eq!(parse_status_kb(status, "VmSwap"), None);
    }

    #[test]
    fn finds_its_own_children() {
        let mut child = Command::new("sleep").arg("5").spawn().unwrap();
        let found = descendants(std::process::id());
        let _ = child.kill();
        let _ = child.wait();
        assert!(found.contains(&child.id()));
    }
}

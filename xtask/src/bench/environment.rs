//! What a reader needs to weigh the figures: when, on what machine, and
//! which version of every program measured.

use std::process::Command;
use std::time::Duration;

use crate::harness::processes::output_within;

const DATE_LIMIT: Duration = Duration::from_secs(10);

pub struct Environment {
    /// UTC, to the minute.
    pub date: String,
    /// What `nproc` counts.
    pub cpus: usize,
    pub cpu_model: String,
    pub memory_kb: u64,
    pub os: String,
    pub kernel: String,
    /// /proc/loadavg's 1, 5 and 15 minute figures when measuring began:
    /// other work on the machine skews every figure.
    pub load_average: String,
    /// Program and the first line its version option prints.
    pub versions: Vec<(&'static str, String)>,
}

impl Environment {
    pub fn read(versions: Vec<(&'static str, String)>) -> Self {
        let file = |path| std::fs::read_to_string(path).unwrap_or_default();
        let mut date = Command::new("date");
        date.args(["-u", "+%Y-%m-%d %H:%M UTC"]);
        Self {
            date: output_within(&mut date, DATE_LIMIT)
                .map(|text| text.trim().to_string())
                .unwrap_or_else(|_| "unknown".into()),
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu_model: cpu_model(&file("/proc/cpuinfo")).unwrap_or_else(|| "unknown".into()),
            memory_kb: memory_kb(&file("/proc/meminfo")).unwrap_or_default(),
            os: os_name(&file("/etc/os-release")).unwrap_or_else(|| "unknown".into()),
            kernel: file("/proc/sys/kernel/osrelease").trim().to_string(),
            load_average: load_average(&file("/proc/loadavg")),
            versions,
        }
    }
}

fn load_average(loadavg: &str) -> String {
    let figures: Vec<&str> = loadavg.split_whitespace().take(3).collect();
    figures.join(" ")
}

/// The first line of a program's version output, without the project URL
/// or copyright notice some append.
pub fn tidy_version(line: &str) -> &str {
    let end = [" - http", " Copyright"]
        .iter()
        .filter_map(|marker| line.find(marker))
        .min()
        .unwrap_or(line.len());
    line[..end].trim()
}

/// The first `model name` of /proc/cpuinfo.
fn cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        (key.trim() == "model name").then(|| value.trim().to_string())
    })
}

/// `MemTotal` of /proc/meminfo, in kB.
fn memory_kb(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|line| line.starts_with("MemTotal:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// `PRETTY_NAME` of /etc/os-release.
fn os_name(os_release: &str) -> Option<String> {
    let value = os_release
        .lines()
        .find_map(|line| line.strip_prefix("PRETTY_NAME="))?;
    Some(value.trim_matches('"').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_machine() {
        let cpuinfo = "processor\t: 0\nvendor_id\t: GenuineIntel\n\
                       model name\t: Intel(R) Xeon(R) CPU @ 2.20GHz\nprocessor\t: 1\n";
        assert_eq!(
            cpu_model(cpuinfo).as_deref(),
            Some("Intel(R) Xeon(R) CPU @ 2.20GHz")
        );
        assert_eq!(
            memory_kb("MemTotal:       24683496 kB\nMemFree: 1 kB\n"),
            Some(24_683_496)
        );
        let os = "NAME=\"Debian GNU/Linux\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n";
        assert_eq!(
            os_name(os).as_deref(),
            Some("Debian GNU/Linux 12 (bookworm)")
        );
        assert_eq!(cpu_model(""), None);
        assert_eq!(
            load_average("0.52 1.10 1.61 2/345 6789\n"),
            "0.52 1.10 1.61"
        );
    }

    #[test]
    fn tidies_version_lines() {
        assert_eq!(
            tidy_version("HAProxy version 2.6.12-1+deb12u4 2026/10/17 - https://haproxy.org/"),
            "HAProxy version 2.6.12-1+deb12u4 2026/10/17"
        );
        assert_eq!(
            tidy_version("wrk debian/4.1.0-3+b2 [epoll] Copyright (C) 2012 Will Glozer"),
            "wrk debian/4.1.0-3+b2 [epoll]"
        );
        assert_eq!(
            tidy_version("h2load nghttp2/1.52.0"),
            "h2load nghttp2/1.52.0"
        );
    }
}

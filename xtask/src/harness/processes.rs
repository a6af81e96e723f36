//! Starting the processes under test and making sure none outlives us:
//! each runs in a process group of its own, killed whole (nginx's workers
//! too) when the guard drops — after success, on error, and after Ctrl-C,
//! which the wait loops notice and turn into an error.

use std::ffi::OsStr;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use super::POLL;

/// Set by SIGINT/SIGTERM; the wait loops notice it and return an error,
/// so the process guards run and stop every child.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

pub fn catch_stop_signals() -> anyhow::Result<()> {
    crate::stop_signal::on_stop(|| INTERRUPTED.store(true, Ordering::Relaxed))
}

pub fn ensure_not_interrupted() -> anyhow::Result<()> {
    ensure!(!INTERRUPTED.load(Ordering::Relaxed), "interrupted");
    Ok(())
}

/// `program` run by taskset on one CPU; taskset execs it, so the pid is
/// the program's.
pub fn pinned(cpu: &str, program: impl AsRef<OsStr>) -> Command {
    let mut command = Command::new("taskset");
    command.args(["-c", cpu]).arg(program);
    command
}

/// Moves every thread of this process to `cpu`, and so the threads it
/// starts later: the orchestration (polls, memory sampling) then stays off
/// the proxy's CPU.
pub fn pin_this_process(cpu: &str) -> anyhow::Result<()> {
    let mut command = Command::new("taskset");
    command
        .args(["-a", "-p", "-c", cpu])
        .arg(std::process::id().to_string());
    output_within(&mut command, Duration::from_secs(10)).map(drop)
}

/// Every process one measurement starts, killed when dropped, so an error
/// anywhere leaves nothing running.
#[derive(Default)]
pub struct Processes {
    running: Vec<(&'static str, Child)>,
}

impl Processes {
    /// Starts `command` in a process group of its own. Call this from the
    /// thread that stays up: Envoy exits when the thread that started it
    /// does.
    pub fn spawn(
        &mut self,
        name: &'static str,
        command: &mut Command,
    ) -> anyhow::Result<&mut Child> {
        let child = command
            .stdin(Stdio::null())
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        self.running.push((name, child));
        Ok(&mut self.running.last_mut().expect("just pushed").1)
    }

    pub fn ensure_running(&mut self) -> anyhow::Result<()> {
        for (name, child) in &mut self.running {
            if let Some(status) = child.try_wait()? {
                bail!("{name} exited unexpectedly ({status})");
            }
        }
        Ok(())
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        for (_, child) in &mut self.running {
            // The group is the child's pid; it cannot be reused while the
            // child is unreaped or any of its own children live.
            if let Ok(pid) = i32::try_from(child.id()) {
                let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs `command` to the end and returns its stdout, killing it past `limit`.
pub fn output_within(command: &mut Command, limit: Duration) -> anyhow::Result<String> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {:?}", command.get_program()))?;
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let waited = wait_within(&mut child, limit);
    if !matches!(waited, Ok(Some(_))) {
        let _ = child.kill();
        let _ = child.wait();
    }
    let status = match waited {
        Ok(Some(status)) => status,
        Ok(None) => bail!(
            "{:?} did not finish within {limit:?}",
            command.get_program()
        ),
        Err(error) => return Err(error),
    };
    let text = reader.join().unwrap_or_default();
    ensure!(
        status.success(),
        "{:?} failed ({status}):\n{text}",
        command.get_program()
    );
    Ok(text)
}

fn wait_within(child: &mut Child, limit: Duration) -> anyhow::Result<Option<ExitStatus>> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        ensure_not_interrupted()?;
        std::thread::sleep(POLL);
    }
    Ok(None)
}

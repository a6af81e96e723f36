//! The demo's processes: started in order, watched while they run, and
//! stopped in reverse order (load first, apps last) so nothing logs errors
//! about a peer that went away first. Dropping `Services` stops them too,
//! so an error in xtask never leaves processes behind.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Enough of a failing proxy's log to explain it, without flooding.
const STDERR_TAIL_LINES: usize = 200;
/// How often to look for services that exited on their own.
const WATCH_INTERVAL: Duration = Duration::from_millis(250);
/// A service still running this long after SIGTERM gets SIGKILL.
const STOP_LIMIT: Duration = Duration::from_secs(10);
/// Ctrl-C in a terminal signals the services as well as xtask; one may exit
/// before our signal thread reports the Ctrl-C.
const CTRL_C_RACE: Duration = Duration::from_millis(500);

pub enum Event {
    /// A line a service printed on stdout.
    Line { service: &'static str, line: String },
    /// SIGINT or SIGTERM reached xtask.
    Stop,
}

/// What to do with a service's stderr.
pub enum Stderr {
    /// Straight to the terminal.
    Inherit,
    /// To the terminal, keeping the last lines to quote in errors.
    Tee,
}

struct Service {
    name: &'static str,
    child: Child,
    stderr_tail: Option<Arc<Mutex<VecDeque<String>>>>,
}

pub struct Services {
    running: Vec<Service>,
    events_sender: Sender<Event>,
    events: Receiver<Event>,
    /// Lines that arrived while we waited for something else.
    unread: VecDeque<(&'static str, String)>,
}

impl Services {
    pub fn new() -> anyhow::Result<Self> {
        let (events_sender, events) = mpsc::channel();
        let stop = events_sender.clone();
        crate::stop_signal::on_stop(move || {
            let _ = stop.send(Event::Stop);
        })?;
        Ok(Self {
            running: Vec::new(),
            events_sender,
            events,
            unread: VecDeque::new(),
        })
    }

    pub fn start(
        &mut self,
        name: &'static str,
        mut command: Command,
        stderr: Stderr,
    ) -> anyhow::Result<()> {
        command.stdin(Stdio::null()).stdout(Stdio::piped());
        if let Stderr::Tee = stderr {
            command.stderr(Stdio::piped());
        }
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {name} ({:?})", command.get_program()))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let events = self.events_sender.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if events
                    .send(Event::Line {
                        service: name,
                        line,
                    })
                    .is_err()
                {
                    return;
                }
            }
        });
        let stderr_tail = child.stderr.take().map(tee_to_stderr);
        self.running.push(Service {
            name,
            child,
            stderr_tail,
        });
        Ok(())
    }

    /// The next line `name` prints on stdout, e.g. `listening on ADDR`.
    pub fn wait_for_line(&mut self, name: &'static str, limit: Duration) -> anyhow::Result<String> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(at) = self.unread.iter().position(|(service, _)| *service == name) {
                return Ok(self.unread.remove(at).expect("position is in range").1);
            }
            self.ensure_all_running()?;
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                bail!("{name} printed nothing within {limit:?}");
            };
            self.idle(left.min(WATCH_INTERVAL))?;
        }
    }

    /// Waits up to `pause`, keeping lines for later; fails on SIGINT/SIGTERM.
    pub fn idle(&mut self, pause: Duration) -> anyhow::Result<()> {
        match self.events.recv_timeout(pause) {
            Ok(Event::Line { service, line }) => self.unread.push_back((service, line)),
            Ok(Event::Stop) => bail!("interrupted"),
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {}
        }
        Ok(())
    }

    /// Until SIGINT/SIGTERM, showing what services print on stdout; fails
    /// if any service exits on its own.
    pub fn run_until_stopped(&mut self) -> anyhow::Result<()> {
        for (service, line) in std::mem::take(&mut self.unread) {
            println!("[{service}] {line}");
        }
        loop {
            match self.events.recv_timeout(WATCH_INTERVAL) {
                Ok(Event::Line { service, line }) => println!("[{service}] {line}"),
                Ok(Event::Stop) => return Ok(()),
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {}
            }
            if let Err(exited) = self.ensure_all_running() {
                return if self.stop_arrives_within(CTRL_C_RACE) {
                    Ok(())
                } else {
                    Err(exited)
                };
            }
        }
    }

    fn stop_arrives_within(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.events.recv_timeout(left) {
                Ok(Event::Stop) => return true,
                Ok(Event::Line { .. }) => {}
                Err(_) => return false,
            }
        }
        false
    }

    pub fn ensure_all_running(&mut self) -> anyhow::Result<()> {
        for service in &mut self.running {
            if let Some(status) = service.child.try_wait()? {
                let mut message = format!("{} exited unexpectedly ({status})", service.name);
                if let Some(tail) = &service.stderr_tail {
                    message.push_str(&format!("; its stderr:\n{}", join(tail)));
                }
                bail!(message);
            }
        }
        Ok(())
    }

    /// The last lines `name` wrote to stderr, if it was started with `Stderr::Tee`.
    pub fn stderr_of(&self, name: &str) -> String {
        self.running
            .iter()
            .find(|service| service.name == name)
            .and_then(|service| service.stderr_tail.as_ref())
            .map_or_else(String::new, join)
    }

    /// SIGTERM to each service, last started first, waiting for each to exit.
    pub fn stop(&mut self) {
        while let Some(mut service) = self.running.pop() {
            if let Err(error) = stop(&mut service.child) {
                eprintln!("stopping {}: {error}", service.name);
            }
        }
    }
}

impl Drop for Services {
    fn drop(&mut self) {
        self.stop();
    }
}

fn stop(child: &mut Child) -> anyhow::Result<()> {
    // An exited child is reaped here, so its pid cannot have been reused
    // by the time we signal it.
    if child.try_wait()?.is_some() {
        return Ok(());
    }
    let pid = Pid::from_raw(i32::try_from(child.id())?);
    kill(pid, Signal::SIGTERM)?;
    let deadline = Instant::now() + STOP_LIMIT;
    while Instant::now() < deadline {
        if child.try_wait()?.is_some() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!("pid {pid} still running {STOP_LIMIT:?} after SIGTERM; killing it");
    child.kill()?;
    child.wait()?;
    Ok(())
}

/// Copies a service's stderr to ours line by line, keeping the last lines.
fn tee_to_stderr(stderr: impl Read + Send + 'static) -> Arc<Mutex<VecDeque<String>>> {
    let tail = Arc::new(Mutex::new(VecDeque::new()));
    let kept = tail.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("{line}");
            let mut kept = kept.lock().unwrap_or_else(|e| e.into_inner());
            if kept.len() == STDERR_TAIL_LINES {
                kept.pop_front();
            }
            kept.push_back(line);
        }
    });
    tail
}

fn join(tail: &Arc<Mutex<VecDeque<String>>>) -> String {
    let lines = tail.lock().unwrap_or_else(|e| e.into_inner());
    lines.iter().map(|line| format!("{line}\n")).collect()
}

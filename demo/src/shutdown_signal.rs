//! SIGTERM (how tests and `cargo xtask demo` stop us) or SIGINT (a terminal's
//! Ctrl-C). Both handlers are installed up front, before the process reports
//! itself ready, so a signal sent right after readiness is never lost to the
//! default action.

use tokio::signal::unix::{Signal, SignalKind, signal};

pub struct ShutdownSignal {
    terminate: Signal,
    interrupt: Signal,
}

impl ShutdownSignal {
    pub fn install() -> std::io::Result<Self> {
        Ok(Self {
            terminate: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
        })
    }

    /// Completes when either signal arrives; safe to use in `select!`.
    pub async fn recv(&mut self) {
        tokio::select! {
            _ = self.terminate.recv() => {}
            _ = self.interrupt.recv() => {}
        }
    }
}

//! SIGINT and SIGTERM, caught so xtask stops its child processes instead
//! of dying and leaving them behind. tokio's handlers are the safe way to
//! catch signals; blocking them and calling sigwait would not do, because
//! children would inherit the blocked mask and ignore SIGTERM.

use anyhow::Context;
use tokio::signal::unix::{SignalKind, signal};

/// Calls `on_stop` (on a thread of its own) at the first SIGINT or SIGTERM;
/// a second one means "stop waiting" and exits at once.
pub fn on_stop(on_stop: impl FnOnce() + Send + 'static) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .context("starting the signal runtime")?;
    // Installed before returning, so no signal after this is lost.
    let (mut interrupt, mut terminate) = {
        let _runtime = runtime.enter();
        (
            signal(SignalKind::interrupt())?,
            signal(SignalKind::terminate())?,
        )
    };
    std::thread::Builder::new()
        .name("stop-signal".into())
        .spawn(move || {
            runtime.block_on(async {
                tokio::select! {
                    _ = interrupt.recv() => {}
                    _ = terminate.recv() => {}
                }
                on_stop();
                tokio::select! {
                    _ = interrupt.recv() => {}
                    _ = terminate.recv() => {}
                }
                eprintln!("signalled again: exiting without waiting for child processes");
                std::process::exit(130);
            });
        })
        .context("starting the signal thread")?;
    Ok(())
}

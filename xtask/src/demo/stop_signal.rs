//! Turning SIGINT and SIGTERM into an event, so xtask stops its services
//! instead of dying and leaving them behind. tokio's handlers are the safe
//! way to catch signals; blocking them and calling sigwait would not do,
//! because services would inherit the blocked mask and ignore SIGTERM.

use std::sync::mpsc::Sender;

use anyhow::Context;
use tokio::signal::unix::{SignalKind, signal};

use super::services::Event;

pub fn forward_to(events: Sender<Event>) -> anyhow::Result<()> {
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
                if events.send(Event::Stop).is_err() {
                    return;
                }
                // A second Ctrl-C means "stop waiting for the services".
                tokio::select! {
                    _ = interrupt.recv() => {}
                    _ = terminate.recv() => {}
                }
                eprintln!("signalled again: exiting without waiting for the services");
                std::process::exit(130);
            });
        })
        .context("starting the signal thread")?;
    Ok(())
}

//! The one wasmtime `Engine` and its settings, and the epoch ticker that
//! bounds every hook call in time.

use std::time::Duration;

use wasmtime::{Config, Engine};

/// How often the epoch advances; hook deadlines are counted in these ticks.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);

pub fn new_engine() -> wasmtime::Result<Engine> {
    let mut config = Config::new();
    config.wasm_component_model(true);
    // Checked at loop back-edges and calls: a plugin that spins forever is
    // stopped at its deadline instead of stalling the proxy.
    config.epoch_interruption(true);
    let engine = Engine::new(&config)?;
    start_ticker(&engine);
    Ok(engine)
}

/// Ticks until the engine is gone.
fn start_ticker(engine: &Engine) {
    let weak = engine.weak();
    let spawned = std::thread::Builder::new()
        .name("weft-plugin-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        });
    if let Err(error) = spawned {
        tracing::error!(%error, "cannot start the plugin epoch ticker; hook deadlines will not fire");
    }
}

/// Ticks to allow for `timeout`: rounded up, plus one because the first
/// tick may come at once.
pub fn deadline_ticks(timeout: Duration) -> u64 {
    timeout.as_micros().div_ceil(EPOCH_TICK.as_micros()) as u64 + 1
}

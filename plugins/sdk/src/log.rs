//! Logging into the proxy's log, which puts the plugin's name on every line.
//!
//! Use the macros — [`trace!`](crate::trace), [`debug!`](crate::debug),
//! [`info!`](crate::info), [`warn!`](crate::warn), [`error!`](crate::error) —
//! with `format!` syntax. They check whether the level is enabled before
//! formatting, so a disabled `debug!` in a hot hook costs no allocation, and
//! no call into the proxy either: the proxy's log filter is set when it
//! starts, so an instance asks once per level and remembers the answer.

use std::cell::Cell;
use std::fmt;

use crate::bindings::weft::plugin::log as host;
pub use crate::bindings::weft::plugin::log::Level;

/// Whether a message at `level` would be written.
pub fn enabled(level: Level) -> bool {
    thread_local! {
        // An instance runs one call at a time: one cache per instance.
        static ENABLED: Cell<[Option<bool>; 5]> = const { Cell::new([None; 5]) };
    }
    let index = match level {
        Level::Trace => 0,
        Level::Debug => 1,
        Level::Info => 2,
        Level::Warn => 3,
        Level::Error => 4,
    };
    ENABLED.with(|cache| {
        let mut known = cache.get();
        if let Some(enabled) = known[index] {
            return enabled;
        }
        let enabled = host::enabled(level);
        known[index] = Some(enabled);
        cache.set(known);
        enabled
    })
}

/// Writes `message` at `level` (unconditionally; the proxy still filters).
pub fn write(level: Level, message: &str) {
    host::log(level, message);
}

/// Formats and writes `args` if `level` is enabled. The macros call this.
pub fn write_fmt(level: Level, args: fmt::Arguments<'_>) {
    if !enabled(level) {
        return;
    }
    match args.as_str() {
        Some(message) => write(level, message),
        None => write(level, &fmt::format(args)),
    }
}

/// Logs at trace level: `trace!("saw {} headers", n)`.
#[macro_export]
macro_rules! trace {
    ($($arg:tt)+) => {
        $crate::log::write_fmt($crate::log::Level::Trace, ::core::format_args!($($arg)+))
    };
}

/// Logs at debug level: `debug!("routing {} to {}", path, backend)`.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)+) => {
        $crate::log::write_fmt($crate::log::Level::Debug, ::core::format_args!($($arg)+))
    };
}

/// Logs at info level: `info!("configured with {} rules", n)`.
#[macro_export]
macro_rules! info {
    ($($arg:tt)+) => {
        $crate::log::write_fmt($crate::log::Level::Info, ::core::format_args!($($arg)+))
    };
}

/// Logs at warn level: `warn!("metric series refused: {}", err)`.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)+) => {
        $crate::log::write_fmt($crate::log::Level::Warn, ::core::format_args!($($arg)+))
    };
}

/// Logs at error level: `error!("cannot parse {}: {}", header, err)`.
#[macro_export]
macro_rules! error {
    ($($arg:tt)+) => {
        $crate::log::write_fmt($crate::log::Level::Error, ::core::format_args!($($arg)+))
    };
}

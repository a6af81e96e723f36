//! Logging into the proxy's log, which puts the plugin's name on every line.
//!
//! Use the macros — [`trace!`](crate::trace), [`debug!`](crate::debug),
//! [`info!`](crate::info), [`warn!`](crate::warn), [`error!`](crate::error) —
//! with `format!` syntax. They ask the proxy whether the level is enabled
//! before formatting, so a disabled `debug!` in a hot hook costs one call and
//! no allocation.

use std::fmt;

use crate::bindings::weft::plugin::log as host;
pub use crate::bindings::weft::plugin::log::Level;

/// Whether a message at `level` would be written.
pub fn enabled(level: Level) -> bool {
    host::enabled(level)
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

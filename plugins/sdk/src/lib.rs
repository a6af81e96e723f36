//! Write Weft proxy plugins in Rust.
//!
//! A plugin is a WebAssembly component of the `weft:plugin/plugin` world
//! (`wit/` at the repository root). This crate hides the generated bindings
//! behind a [`Plugin`] trait and the [`export_plugin!`] macro, and wraps the
//! proxy's imports ([`log`], [`metrics`], [`clock`], [`random`], [`shared`])
//! in small safe functions. A hook's [`Request`] fetches the facts most
//! plugins read (direction, method, authority, path, peer, backend, attempt)
//! in one crossing into the proxy, on the first read of any of them.
//! [`route_match`] holds the request match that
//! routing plugins share (methods, authority, path prefix and regex), and
//! [`path`] its whole-segment path prefix.
//!
//! A complete plugin:
//!
//! ```no_run
//! use weft_plugin_sdk::{Hooks, Plugin, Request, RequestAction, export_plugin};
//!
//! struct Greeter {
//!     greeting: String,
//! }
//!
//! impl Plugin for Greeter {
//!     fn init(config: &str) -> Result<Self, String> {
//!         Ok(Greeter { greeting: config.trim().to_string() })
//!     }
//!
//!     fn hooks() -> Hooks {
//!         Hooks::REQUEST
//!     }
//!
//!     fn on_request(&self, req: &Request) -> RequestAction {
//!         req.set_header("x-greeting", &self.greeting);
//!         weft_plugin_sdk::debug!("greeted {}", req.path());
//!         RequestAction::Continue
//!     }
//! }
//!
//! export_plugin!(Greeter);
//! ```
//!
//! Build it as a `cdylib` with `cargo build --release --target wasm32-wasip2`:
//! the output `.wasm` is already a component.

#![deny(missing_docs)]

/// The bindings `wit-bindgen` generates for the `plugin` world. Plugin code
/// uses the re-exports below; [`export_plugin!`] uses this module.
#[doc(hidden)]
#[allow(missing_docs, unsafe_code)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "plugin",
        pub_export_macro: true,
        export_macro_name: "__export_weft_plugin_world",
    });
}

mod enum_names;
mod export;
pub mod log;
pub mod metrics;
pub mod path;
mod plugin;
mod request;
pub mod route_match;
pub mod shared;

pub use bindings::weft::plugin::types::{
    Completion, Connection, ConnectionAction, Direction, Hooks, LocalResponse, Method, Protocol,
    RequestAction, Response, ResponseAction,
};
pub use plugin::Plugin;
pub use request::Request;

#[doc(hidden)]
pub mod __private {
    pub use crate::export::Slot;
}

/// The proxy's clocks.
pub mod clock {
    pub use crate::bindings::weft::plugin::clock::{monotonic_us, now_ms};
}

/// Randomness from the proxy.
pub mod random {
    pub use crate::bindings::weft::plugin::random::random_u64;
}

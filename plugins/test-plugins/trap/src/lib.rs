//! Test plugin for the proxy's failure handling: `on_request` traps (a panic
//! is a trap under `panic = "abort"`). The proxy must fail the request, not
//! itself.

use weft_plugin_sdk::{Hooks, Plugin, Request, RequestAction, export_plugin};

struct Trap;

impl Plugin for Trap {
    fn init(_config: &str) -> Result<Self, String> {
        Ok(Trap)
    }

    fn hooks() -> Hooks {
        Hooks::REQUEST
    }

    fn on_request(&self, _req: &Request) -> RequestAction {
        panic!("trap: on_request traps by design")
    }
}

export_plugin!(Trap);

//! Test plugin for the proxy's time limits: `on_request` never returns. The
//! proxy must interrupt it (epochs or fuel) and fail the request.

use weft_plugin_sdk::{Hooks, Plugin, Request, RequestAction, export_plugin};

struct Spin;

impl Plugin for Spin {
    fn init(_config: &str) -> Result<Self, String> {
        Ok(Spin)
    }

    fn hooks() -> Hooks {
        Hooks::REQUEST
    }

    fn on_request(&self, _req: &Request) -> RequestAction {
        // `black_box` keeps the loop a real loop rather than something the
        // optimiser may reason away.
        loop {
            core::hint::black_box(());
        }
    }
}

export_plugin!(Spin);

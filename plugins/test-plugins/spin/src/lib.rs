//! Test plugin for the proxy's time limits: `on_request` never returns, nor
//! does `init` when configured with `init`. The proxy must interrupt it
//! (epochs or fuel) and fail the request, or refuse the chain.

use weft_plugin_sdk::{Hooks, Plugin, Request, RequestAction, export_plugin};

struct Spin;

impl Plugin for Spin {
    fn init(config: &str) -> Result<Self, String> {
        if config == "init" {
            spin();
        }
        Ok(Spin)
    }

    fn hooks() -> Hooks {
        Hooks::REQUEST
    }

    fn on_request(&self, _req: &Request) -> RequestAction {
        spin()
    }
}

fn spin() -> ! {
    // `black_box` keeps the loop a real loop rather than something the
    // optimiser may reason away.
    loop {
        core::hint::black_box(());
    }
}

export_plugin!(Spin);

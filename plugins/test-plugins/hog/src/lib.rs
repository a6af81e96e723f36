//! Test plugin for the proxy's memory limits: `on_request` allocates and
//! writes 1 MiB blocks forever, keeping them all. The proxy's limit must stop
//! it (the failed allocation traps) and fail the request.

use std::cell::RefCell;

use weft_plugin_sdk::{Hooks, Plugin, Request, RequestAction, export_plugin};

const BLOCK: usize = 1 << 20;

struct Hog {
    hoard: RefCell<Vec<Vec<u8>>>,
}

impl Plugin for Hog {
    fn init(_config: &str) -> Result<Self, String> {
        Ok(Hog {
            hoard: RefCell::new(Vec::new()),
        })
    }

    fn hooks() -> Hooks {
        Hooks::REQUEST
    }

    fn on_request(&self, _req: &Request) -> RequestAction {
        loop {
            // Non-zero bytes so every page is written, not just reserved;
            // `black_box` so the never-read blocks are not optimised away.
            let block = core::hint::black_box(vec![0xa5u8; BLOCK]);
            self.hoard.borrow_mut().push(block);
        }
    }
}

export_plugin!(Hog);

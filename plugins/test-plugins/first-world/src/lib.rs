//! Test plugin for compatibility: built with its own copy of the first
//! `weft:plugin@0.1.0` WIT (`wit/`, frozen as the first plugins saw it), not
//! the SDK. Its request hook reads every fact through the one-fact
//! accessors and writes them into `x-first-world`, and counts the request
//! with `counter-add`: a proxy that still runs it unchanged serves both.

#![allow(unsafe_code)] // the generated bindings and export

wit_bindgen::generate!({
    path: "wit",
    world: "plugin",
});

use std::cell::Cell;

use exports::weft::plugin::filter::Guest;
use weft::plugin::metrics;
use weft::plugin::types::{
    Completion, Connection, ConnectionAction, Direction, Hooks, Request, RequestAction, Response,
    ResponseAction,
};

thread_local! {
    static SERIES: Cell<Option<u32>> = const { Cell::new(None) };
}

struct FirstWorld;

impl Guest for FirstWorld {
    fn init(_config: String) -> Result<Hooks, String> {
        let family = metrics::register_counter("first_world_requests", "Requests seen.", &[])?;
        SERIES.set(Some(metrics::series(family, &[])?));
        Ok(Hooks::REQUEST)
    }

    fn on_connection(_conn: Connection) -> ConnectionAction {
        ConnectionAction::Allow
    }

    fn on_request(req: &Request) -> RequestAction {
        let direction = match req.direction() {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        };
        let facts = [
            direction.to_string(),
            req.method_name(),
            req.authority().unwrap_or_default(),
            req.path(),
            req.client_addr(),
            req.local_port().to_string(),
            req.peer_identity().unwrap_or_default(),
            req.tls().to_string(),
            req.backend().unwrap_or_default(),
            req.attempt().to_string(),
            req.replayable().to_string(),
        ];
        req.set_header("x-first-world", &facts.join(" "));
        if let Some(series) = SERIES.get() {
            metrics::counter_add(series, 1);
        }
        RequestAction::Continue
    }

    fn on_response(_req: &Request, _rsp: &Response) -> ResponseAction {
        ResponseAction::Continue
    }

    fn on_complete(_req: &Request, _info: Completion) {}
}

export!(FirstWorld);

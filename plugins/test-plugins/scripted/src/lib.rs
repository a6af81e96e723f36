//! Test plugin for the plugin boundary: it does what a script says, with
//! whatever names, values, statuses and backends the script holds, so a
//! fuzzer can hand the proxy anything a plugin could. The script is its
//! config, or, per request, the hex in the request's `x-weft-script` header
//! (which lets one loaded chain run a new script per request). The format is
//! in `script.rs`.

// The writing half of the format serves the fuzz target that includes it.
#[allow(dead_code)]
mod script;

use script::Action;
use weft_plugin_sdk::{
    Hooks, LocalResponse, Plugin, Request, RequestAction, Response, ResponseAction, export_plugin,
};

/// The header a request's own script travels in.
const SCRIPT_HEADER: &str = "x-weft-script";

struct Scripted {
    actions: Vec<Action>,
}

impl Scripted {
    /// The request's own script if it carries one that reads, else the config's.
    fn actions(&self, req: &Request) -> Vec<Action> {
        req.header(SCRIPT_HEADER)
            .and_then(|hex| script::from_hex(&hex))
            .and_then(|text| script::parse(&text).ok())
            .unwrap_or_else(|| self.actions.clone())
    }
}

impl Plugin for Scripted {
    fn init(config: &str) -> Result<Self, String> {
        Ok(Scripted {
            actions: script::parse(config)?,
        })
    }

    fn hooks() -> Hooks {
        Hooks::REQUEST | Hooks::RESPONSE
    }

    fn on_request(&self, req: &Request) -> RequestAction {
        let mut respond: Option<LocalResponse> = None;
        for action in self.actions(req) {
            match action {
                Action::ReqSet(name, value) => req.set_header(&name, &value),
                Action::ReqRemove(name) => req.remove_header(&name),
                Action::Backend(backend) => req.set_backend(&backend),
                Action::Timeout(ms) => req.set_timeout_ms(ms),
                Action::Respond(status, body) => {
                    respond = Some(LocalResponse {
                        status,
                        headers: respond.map(|r| r.headers).unwrap_or_default(),
                        body,
                    });
                }
                Action::RespondHeader(name, value) => {
                    let local = respond.get_or_insert_with(|| LocalResponse {
                        status: 200,
                        headers: Vec::new(),
                        body: String::new(),
                    });
                    local.headers.push((name, value));
                }
                Action::RspSet(..) | Action::RspRemove(_) | Action::Retry => {}
            }
        }
        match respond {
            Some(local) => RequestAction::Respond(local),
            None => RequestAction::Continue,
        }
    }

    fn on_response(&self, req: &Request, rsp: &Response) -> ResponseAction {
        let mut retry = false;
        for action in self.actions(req) {
            match action {
                Action::RspSet(name, value) => rsp.set_header(&name, &value),
                Action::RspRemove(name) => rsp.remove_header(&name),
                Action::Retry => retry = true,
                _ => {}
            }
        }
        if retry {
            ResponseAction::Retry
        } else {
            ResponseAction::Continue
        }
    }
}

export_plugin!(Scripted);

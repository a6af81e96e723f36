//! Test plugin for local responses and connection policy: answers every
//! request 403 itself, and with `{"connections": true}` also closes every
//! connection once its protocol is detected. An empty config means `{}`.

use serde::Deserialize;
use weft_plugin_sdk::{
    Connection, ConnectionAction, Hooks, LocalResponse, Plugin, Request, RequestAction,
    export_plugin,
};

#[derive(Deserialize, Default)]
struct DenyAll {
    #[serde(default)]
    connections: bool,
}

impl Plugin for DenyAll {
    fn init(config: &str) -> Result<Self, String> {
        if config.trim().is_empty() {
            return Ok(DenyAll::default());
        }
        serde_json::from_str(config).map_err(|e| e.to_string())
    }

    fn hooks() -> Hooks {
        Hooks::CONNECTION | Hooks::REQUEST
    }

    fn on_connection(&self, _conn: &Connection) -> ConnectionAction {
        if self.connections {
            ConnectionAction::Deny
        } else {
            ConnectionAction::Allow
        }
    }

    fn on_request(&self, _req: &Request) -> RequestAction {
        RequestAction::Respond(LocalResponse {
            status: 403,
            headers: vec![("content-type".to_string(), "text/plain".to_string())],
            body: "denied by deny-all\n".to_string(),
        })
    }
}

export_plugin!(DenyAll);

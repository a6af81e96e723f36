//! The guide's example filter: adds one configured header to every request
//! and every response. Configure it with
//! `{"name": "x-weft-example", "value": "hello"}`.

use serde::Deserialize;
use weft_plugin_sdk::{
    Hooks, Plugin, Request, RequestAction, Response, ResponseAction, export_plugin,
};

#[derive(Deserialize)]
struct AddHeader {
    name: String,
    value: String,
}

impl Plugin for AddHeader {
    fn init(config: &str) -> Result<Self, String> {
        let plugin: AddHeader = serde_json::from_str(config).map_err(|e| e.to_string())?;
        // Refuse a bad header at startup rather than on every request.
        if plugin.name.is_empty() || !plugin.name.bytes().all(is_header_name_byte) {
            return Err(format!("invalid header name {:?}", plugin.name));
        }
        if plugin
            .value
            .bytes()
            .any(|b| b.is_ascii_control() && b != b'\t')
        {
            return Err(format!("invalid header value {:?}", plugin.value));
        }
        Ok(plugin)
    }

    fn hooks() -> Hooks {
        Hooks::REQUEST | Hooks::RESPONSE
    }

    fn on_request(&self, req: &Request) -> RequestAction {
        req.set_header(&self.name, &self.value);
        RequestAction::Continue
    }

    fn on_response(&self, _req: &Request, rsp: &Response) -> ResponseAction {
        rsp.set_header(&self.name, &self.value);
        ResponseAction::Continue
    }
}

export_plugin!(AddHeader);

/// A header name is an RFC 9110 token.
fn is_header_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

// Plugin logic that does not call the proxy runs natively:
// `cargo test --target x86_64-unknown-linux-gnu`.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_guide_config() {
        let plugin = AddHeader::init(r#"{"name": "x-weft-example", "value": "hello"}"#).unwrap();
        assert_eq!(
            (plugin.name.as_str(), plugin.value.as_str()),
            ("x-weft-example", "hello")
        );
    }

    #[test]
    fn rejects_headers_the_proxy_could_not_send() {
        assert!(AddHeader::init(r#"{"name": "bad name", "value": "x"}"#).is_err());
        assert!(AddHeader::init(r#"{"name": "x-ok", "value": "a\r\nb"}"#).is_err());
    }
}

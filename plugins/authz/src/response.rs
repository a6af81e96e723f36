//! What a denied request is answered with, as Linkerd answers it: a 403, or
//! for gRPC a `PERMISSION_DENIED` status that gRPC clients understand.

use weft_plugin_sdk::LocalResponse;

/// gRPC's `PERMISSION_DENIED`.
const GRPC_PERMISSION_DENIED: &str = "7";

/// Whether the request's `content-type` makes it gRPC (`application/grpc`,
/// `application/grpc+proto`, ...). Media types are case-insensitive.
pub fn is_grpc(content_type: Option<&str>) -> bool {
    content_type
        .and_then(|ct| ct.get(.."application/grpc".len()))
        .is_some_and(|ct| ct.eq_ignore_ascii_case("application/grpc"))
}

/// The answer to a request denied by `authz` (a rule's name or
/// `default:<policy>`).
pub fn forbidden(authz: &str, grpc: bool) -> LocalResponse {
    let message = format!("forbidden: denied by authorization policy `{authz}`");
    let header = |name: &str, value: &str| (name.to_string(), value.to_string());
    if grpc {
        // gRPC clients read the status from headers and ignore HTTP's: a
        // trailers-only response with HTTP 200.
        return LocalResponse {
            status: 200,
            headers: vec![
                header("content-type", "application/grpc"),
                header("grpc-status", GRPC_PERMISSION_DENIED),
                header("grpc-message", &grpc_message(&message)),
            ],
            body: String::new(),
        };
    }
    LocalResponse {
        status: 403,
        headers: vec![
            header("x-weft-proxy-error", "unauthorized"),
            header("content-type", "text/plain"),
        ],
        body: message + "\n",
    }
}

/// `grpc-message` is percent-encoded: everything outside printable ASCII,
/// and `%` itself (a rule name may hold either).
fn grpc_message(message: &str) -> String {
    let mut encoded = String::with_capacity(message.len());
    for byte in message.bytes() {
        match byte {
            b' '..=b'~' if byte != b'%' => encoded.push(byte as char),
            _ => encoded.push_str(&format!("%{byte:02X}")),
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header<'a>(response: &'a LocalResponse, name: &str) -> Option<&'a str> {
        response
            .headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn http_denials_are_403_with_the_policy_named() {
        let response = forbidden("web-reads", false);
        assert_eq!(response.status, 403);
        assert_eq!(
            header(&response, "x-weft-proxy-error"),
            Some("unauthorized")
        );
        assert_eq!(header(&response, "content-type"), Some("text/plain"));
        assert_eq!(
            response.body,
            "forbidden: denied by authorization policy `web-reads`\n"
        );
    }

    #[test]
    fn grpc_denials_are_permission_denied() {
        let response = forbidden("default:deny", true);
        assert_eq!(response.status, 200);
        assert_eq!(header(&response, "content-type"), Some("application/grpc"));
        assert_eq!(header(&response, "grpc-status"), Some("7"));
        assert_eq!(
            header(&response, "grpc-message"),
            Some("forbidden: denied by authorization policy `default:deny`")
        );
        assert!(response.body.is_empty());
    }

    #[test]
    fn grpc_messages_are_percent_encoded() {
        assert_eq!(grpc_message("100% ok"), "100%25 ok");
        assert_eq!(grpc_message("é\n"), "%C3%A9%0A");
    }

    #[test]
    fn grpc_is_recognised_by_content_type() {
        for ct in [
            "application/grpc",
            "application/grpc+proto",
            "Application/GRPC",
        ] {
            assert!(is_grpc(Some(ct)), "{ct}");
        }
        for ct in ["application/json", "application/grp", "text/plain"] {
            assert!(!is_grpc(Some(ct)), "{ct}");
        }
        assert!(!is_grpc(None));
    }
}

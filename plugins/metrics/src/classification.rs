//! How a completed request is labelled: Linkerd's `classification` and
//! `status_code` values. Which requests failed is the response classes'
//! call (`response_class`).

/// `"failure"` or `"success"`.
pub fn classification(failure: bool) -> &'static str {
    if failure { "failure" } else { "success" }
}

/// The status as digits, or empty when no response came.
pub fn status_code_label(status: Option<u16>) -> String {
    status.map(|status| status.to_string()).unwrap_or_default()
}

/// `"true"` or `"false"`.
pub fn tls_label(tls: bool) -> &'static str {
    if tls { "true" } else { "false" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifications_are_linkerds() {
        assert_eq!(classification(true), "failure");
        assert_eq!(classification(false), "success");
    }

    #[test]
    fn a_missing_response_has_an_empty_status_code() {
        assert_eq!(status_code_label(Some(503)), "503");
        assert_eq!(status_code_label(None), "");
    }

    #[test]
    fn tls_is_true_or_false() {
        assert_eq!(tls_label(true), "true");
        assert_eq!(tls_label(false), "false");
    }
}

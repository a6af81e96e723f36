//! How a completed request is labelled: Linkerd's `classification` and
//! `status_code` values.

/// `"success"` for any status below 500, `"failure"` for 5xx and for a
/// request that got no response at all.
pub fn classification(status: Option<u16>) -> &'static str {
    match status {
        Some(status) if status < 500 => "success",
        _ => "failure",
    }
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
    fn statuses_below_500_succeed() {
        for status in [100, 200, 204, 301, 404, 429, 499] {
            assert_eq!(classification(Some(status)), "success", "{status}");
        }
    }

    #[test]
    fn server_errors_and_missing_responses_fail() {
        for status in [500, 502, 503, 504, 599] {
            assert_eq!(classification(Some(status)), "failure", "{status}");
        }
        assert_eq!(classification(None), "failure");
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

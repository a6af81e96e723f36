//! `retryOn` conditions: which responses a route retries.

/// The conditions a route uses when `retryOn` is absent: failures where the
/// upstream never saw the request, and gateway errors.
pub const DEFAULT_RETRY_ON: [&str; 2] = ["connect-failure", "gateway-error"];

const CONDITION_NAMES: &str = "5xx, gateway-error, connect-failure, reset, timeout, \
     retriable-4xx, a status such as 503, or a range such as 500-504";

/// Statuses a condition may name; the bit set covers exactly these.
const MIN_STATUS: u16 = 100;
const MAX_STATUS: u16 = 599;
const STATUS_WORDS: usize = (MAX_STATUS as usize - MIN_STATUS as usize) / 64 + 1;

/// Why the proxy answered a request itself, from `response.error()`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The request never reached the upstream.
    Connect,
    /// The connection broke mid-request.
    Reset,
    /// The upstream did not answer in time.
    Timeout,
    /// A reason this plugin does not know; only status conditions apply.
    Other,
}

impl Failure {
    /// Classifies the proxy's error reason.
    pub fn from_reason(reason: &str) -> Failure {
        match reason {
            "upstream connection refused"
            | "upstream connect timeout"
            | "upstream connect failed" => Failure::Connect,
            "upstream failed" => Failure::Reset,
            "upstream response timeout" => Failure::Timeout,
            _ => Failure::Other,
        }
    }
}

/// A parsed `retryOn` list: statuses as a bit set, so matching a response
/// costs a shift and a mask however many conditions there are.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RetryOn {
    statuses: [u64; STATUS_WORDS],
    connect_failure: bool,
    reset: bool,
    timeout: bool,
}

impl RetryOn {
    /// Parses a list of conditions; an unknown one is named in the error.
    pub fn parse<S: AsRef<str>>(conditions: &[S]) -> Result<RetryOn, String> {
        let mut retry_on = RetryOn::default();
        for condition in conditions {
            retry_on.add(condition.as_ref())?;
        }
        Ok(retry_on)
    }

    fn add(&mut self, condition: &str) -> Result<(), String> {
        match condition {
            "5xx" => self.add_statuses(500, 599),
            "gateway-error" => self.add_statuses(502, 504),
            "retriable-4xx" => self.add_statuses(409, 409),
            "connect-failure" => self.connect_failure = true,
            "reset" => self.reset = true,
            "timeout" => self.timeout = true,
            other => {
                let (low, high) = parse_statuses(other).ok_or_else(|| {
                    format!("unknown retry condition {other:?}; expected {CONDITION_NAMES}")
                })?;
                self.add_statuses(low, high);
            }
        }
        Ok(())
    }

    fn add_statuses(&mut self, low: u16, high: u16) {
        for status in low..=high {
            let bit = usize::from(status - MIN_STATUS);
            self.statuses[bit / 64] |= 1 << (bit % 64);
        }
    }

    /// Whether a response with `status` (and, when the proxy made it,
    /// `failure`) should be retried.
    pub fn matches(&self, status: u16, failure: Option<Failure>) -> bool {
        let by_failure = match failure {
            Some(Failure::Connect) => self.connect_failure,
            Some(Failure::Reset) => self.reset,
            Some(Failure::Timeout) => self.timeout,
            Some(Failure::Other) | None => false,
        };
        by_failure || self.has_status(status)
    }

    fn has_status(&self, status: u16) -> bool {
        if !(MIN_STATUS..=MAX_STATUS).contains(&status) {
            return false;
        }
        let bit = usize::from(status - MIN_STATUS);
        self.statuses[bit / 64] & (1 << (bit % 64)) != 0
    }

    /// Whether any condition depends on `response.error()`; when none does,
    /// the plugin need not ask the proxy for it.
    pub fn uses_failures(&self) -> bool {
        self.connect_failure || self.reset || self.timeout
    }

    /// Everything either list retries.
    pub fn union(mut self, other: &RetryOn) -> RetryOn {
        for (word, other) in self.statuses.iter_mut().zip(other.statuses) {
            *word |= other;
        }
        self.connect_failure |= other.connect_failure;
        self.reset |= other.reset;
        self.timeout |= other.timeout;
        self
    }
}

/// `"503"` or `"500-504"`, within 100..=599 and low to high.
fn parse_statuses(condition: &str) -> Option<(u16, u16)> {
    let (low, high) = match condition.split_once('-') {
        Some((low, high)) => (parse_status(low)?, parse_status(high)?),
        None => {
            let status = parse_status(condition)?;
            (status, status)
        }
    };
    (low <= high).then_some((low, high))
}

fn parse_status(digits: &str) -> Option<u16> {
    // `u16::from_str` takes a leading `+`; a status is digits only.
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let status = digits.parse().ok()?;
    (MIN_STATUS..=MAX_STATUS)
        .contains(&status)
        .then_some(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retry_on(conditions: &[&str]) -> RetryOn {
        RetryOn::parse(conditions).unwrap()
    }

    fn statuses(retry_on: &RetryOn) -> Vec<u16> {
        (0..1000)
            .filter(|&status| retry_on.matches(status, None))
            .collect()
    }

    #[test]
    fn status_classes() {
        assert_eq!(
            statuses(&retry_on(&["5xx"])),
            (500..=599).collect::<Vec<_>>()
        );
        assert_eq!(statuses(&retry_on(&["gateway-error"])), [502, 503, 504]);
        assert_eq!(statuses(&retry_on(&["retriable-4xx"])), [409]);
    }

    #[test]
    fn single_statuses_and_inclusive_ranges() {
        assert_eq!(statuses(&retry_on(&["503"])), [503]);
        assert_eq!(
            statuses(&retry_on(&["500-502", "429"])),
            [429, 500, 501, 502]
        );
        assert_eq!(statuses(&retry_on(&["100-100", "599"])), [100, 599]);
    }

    #[test]
    fn failures_match_only_their_reasons() {
        let cases = [
            ("upstream connection refused", Failure::Connect),
            ("upstream connect timeout", Failure::Connect),
            ("upstream connect failed", Failure::Connect),
            ("upstream failed", Failure::Reset),
            ("upstream response timeout", Failure::Timeout),
            ("something new", Failure::Other),
        ];
        for (reason, failure) in cases {
            assert_eq!(Failure::from_reason(reason), failure, "{reason}");
        }

        let connect = retry_on(&["connect-failure"]);
        assert!(connect.matches(502, Some(Failure::Connect)));
        assert!(!connect.matches(502, Some(Failure::Reset)));
        assert!(!connect.matches(504, Some(Failure::Timeout)));
        assert!(!connect.matches(502, None));

        assert!(retry_on(&["reset"]).matches(502, Some(Failure::Reset)));
        assert!(!retry_on(&["reset"]).matches(502, Some(Failure::Connect)));
        assert!(retry_on(&["timeout"]).matches(504, Some(Failure::Timeout)));
        assert!(!retry_on(&["timeout"]).matches(504, None));
    }

    #[test]
    fn status_conditions_match_responses_the_proxy_made() {
        let gateway = retry_on(&["gateway-error"]);
        assert!(gateway.matches(504, Some(Failure::Timeout)));
        assert!(gateway.matches(502, Some(Failure::Other)));
        assert!(!gateway.matches(500, Some(Failure::Reset)));
    }

    #[test]
    fn the_default_retries_connect_failures_and_gateway_errors() {
        let default = retry_on(&DEFAULT_RETRY_ON);
        assert!(default.matches(502, Some(Failure::Connect)));
        assert!(default.matches(503, None));
        assert!(!default.matches(500, None));
        assert!(!default.matches(200, None));
        assert!(default.uses_failures());
        assert!(!retry_on(&["5xx"]).uses_failures());
    }

    #[test]
    fn an_empty_list_retries_nothing() {
        let none = retry_on(&[]);
        assert!(statuses(&none).is_empty());
        assert!(!none.matches(502, Some(Failure::Connect)));
    }

    #[test]
    fn union_retries_what_either_retries() {
        let both = retry_on(&["409"]).union(&retry_on(&["reset", "503"]));
        assert_eq!(statuses(&both), [409, 503]);
        assert!(both.matches(200, Some(Failure::Reset)));
        assert!(!both.matches(200, Some(Failure::Connect)));
    }

    #[test]
    fn unknown_conditions_are_named() {
        let expected =
            |bad: &str| format!("unknown retry condition {bad:?}; expected {CONDITION_NAMES}");
        for bad in [
            "5XX", "", "gateway", "99", "600", "+503", "50x", "504-500", "500-", "-500", "500-600",
            "1-2-3",
        ] {
            assert_eq!(RetryOn::parse(&[bad]), Err(expected(bad)), "{bad}");
        }
    }
}

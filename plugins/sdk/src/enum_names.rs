//! Label-friendly names for generated enums, so plugins do not each write the
//! same `match` for their metrics and logs.

use crate::{Direction, Method};

impl Direction {
    /// `"inbound"` or `"outbound"`, as in the WIT and in Linkerd's labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        }
    }
}

impl Method {
    /// The method's standard name, or `None` for [`Method::Other`] (ask the
    /// request's `method_name()` then).
    pub fn as_str(self) -> Option<&'static str> {
        Some(match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
            Method::Connect => "CONNECT",
            Method::Options => "OPTIONS",
            Method::Trace => "TRACE",
            Method::Patch => "PATCH",
            Method::Other => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directions_are_named_as_in_the_wit() {
        assert_eq!(Direction::Inbound.as_str(), "inbound");
        assert_eq!(Direction::Outbound.as_str(), "outbound");
    }

    #[test]
    fn other_methods_have_no_standard_name() {
        assert_eq!(Method::Patch.as_str(), Some("PATCH"));
        assert_eq!(Method::Other.as_str(), None);
    }
}

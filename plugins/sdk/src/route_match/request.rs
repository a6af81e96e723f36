//! The parts of a request a match looks at.

use crate::Request;

/// The parts of a request matches look at. The proxy's [`Request`] has
/// them (all fetched in its one crossing); tests implement this on plain
/// values.
pub trait RequestFacts {
    /// The method as sent, e.g. `GET` or `PROPFIND`.
    fn method(&self) -> &str;
    /// The authority from the URI or the `Host` header.
    fn authority(&self) -> Option<&str>;
    /// Path and query, e.g. `/api/users?page=2`.
    fn path(&self) -> &str;
}

impl RequestFacts for Request<'_> {
    fn method(&self) -> &str {
        self.method_name()
    }

    fn authority(&self) -> Option<&str> {
        Request::authority(self)
    }

    fn path(&self) -> &str {
        Request::path(self)
    }
}

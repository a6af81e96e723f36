//! The parts of a request a match looks at, and the proxy's request as
//! matching sees it: each part crosses from the proxy (and allocates) only
//! when a match first asks for it.

use std::borrow::Cow;
use std::cell::OnceCell;

use crate::Request;

/// The parts of a request matches look at. Plugins match the proxy's
/// request through [`LazyRequest`]; tests implement this on plain values.
pub trait RequestFacts {
    /// The method as sent, e.g. `GET` or `PROPFIND`.
    fn method(&self) -> &str;
    /// The authority from the URI or the `Host` header.
    fn authority(&self) -> Option<&str>;
    /// Path and query, e.g. `/api/users?page=2`.
    fn path(&self) -> &str;
}

/// The proxy's request, each part fetched on a match's first need of it
/// and kept for the next: make one per hook call and try every route on it.
pub struct LazyRequest<'a> {
    req: &'a Request,
    method: OnceCell<Cow<'static, str>>,
    authority: OnceCell<Option<String>>,
    path: OnceCell<String>,
}

impl<'a> LazyRequest<'a> {
    /// Nothing is fetched yet.
    pub fn new(req: &'a Request) -> Self {
        LazyRequest {
            req,
            method: OnceCell::new(),
            authority: OnceCell::new(),
            path: OnceCell::new(),
        }
    }

    /// The proxy's request, for what matches do not look at.
    pub fn request(&self) -> &'a Request {
        self.req
    }
}

impl RequestFacts for LazyRequest<'_> {
    fn method(&self) -> &str {
        self.method
            .get_or_init(|| match self.req.method().as_str() {
                Some(standard) => Cow::Borrowed(standard),
                None => Cow::Owned(self.req.method_name()),
            })
    }

    fn authority(&self) -> Option<&str> {
        self.authority
            .get_or_init(|| self.req.authority())
            .as_deref()
    }

    fn path(&self) -> &str {
        self.path.get_or_init(|| self.req.path())
    }
}

//! Gateway API's `PathPrefix` match, which Linkerd's routes use too: a
//! prefix matches whole path segments, so `/api` takes `/api`, `/api/x` and
//! `/api?q`, but not `/apix` or `/apiary`.
//!
//! ```
//! use weft_plugin_sdk::path::PathPrefix;
//!
//! let api = PathPrefix::parse("/api/")?;
//! assert!(api.matches("/api/users?page=2"));
//! assert!(!api.matches("/apiary"));
//! # Ok::<(), String>(())
//! ```

/// A path prefix matched whole segments at a time: `/api` matches `/api`,
/// `/api/x` and `/api?q`, not `/apix`. A trailing slash on the prefix does
/// not change what it matches, and `/` matches every path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathPrefix(String);

impl PathPrefix {
    /// Parses a configured prefix. It must start with `/` and hold neither a
    /// query nor a fragment (`?`, `#`); the error says which, naming `text`.
    pub fn parse(text: &str) -> Result<Self, String> {
        if !text.starts_with('/') {
            return Err(format!("path prefix `{text}` must start with `/`"));
        }
        if text.contains(['?', '#']) {
            return Err(format!(
                "path prefix `{text}` must not contain a query or fragment"
            ));
        }
        // A trailing slash does not change the segments: `/api/` is `/api`,
        // and `/` (now empty) matches every path.
        Ok(PathPrefix(text.trim_end_matches('/').to_string()))
    }

    /// Whether `path` (path and query, as the request gives it) starts with
    /// this prefix's segments.
    pub fn matches(&self, path: &str) -> bool {
        if self.0.is_empty() {
            return true;
        }
        path.strip_prefix(self.0.as_str())
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(['/', '?', '#']))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefix(text: &str) -> PathPrefix {
        PathPrefix::parse(text).unwrap()
    }

    #[test]
    fn prefixes_match_whole_segments() {
        let api = prefix("/api");
        for path in [
            "/api",
            "/api/",
            "/api/x",
            "/api/x/y",
            "/api?q=1",
            "/api#top",
            "/api/users?x=/",
        ] {
            assert!(api.matches(path), "{path}");
        }
        for path in [
            "/apix",
            "/apiary",
            "/ap",
            "/",
            "/v1/api",
            "/API",
            "/apix?y=/api",
        ] {
            assert!(!api.matches(path), "{path}");
        }
    }

    #[test]
    fn a_trailing_slash_names_the_same_segments() {
        let api = prefix("/api/");
        assert_eq!(api, prefix("/api"));
        assert!(api.matches("/api"));
        assert!(api.matches("/api/x"));
        assert!(!api.matches("/apix"));
    }

    #[test]
    fn the_root_prefix_matches_everything() {
        let root = prefix("/");
        for path in ["/", "/api", "/?q", "/anything/at?all", "*"] {
            assert!(root.matches(path), "{path}");
        }
    }

    #[test]
    fn prefixes_are_paths() {
        for text in ["api", ""] {
            let err = PathPrefix::parse(text).unwrap_err();
            assert_eq!(err, format!("path prefix `{text}` must start with `/`"));
        }
        for text in ["/api?x", "/api#top"] {
            let err = PathPrefix::parse(text).unwrap_err();
            assert_eq!(
                err,
                format!("path prefix `{text}` must not contain a query or fragment")
            );
        }
    }
}

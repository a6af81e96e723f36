//! Gateway API's `PathPrefix` match: whole segments at a time.

/// A path prefix: `/api` matches `/api`, `/api/x` and `/api?q`, not `/apix`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathPrefix(String);

impl PathPrefix {
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
        for path in ["/api", "/api/", "/api/x", "/api?q=1", "/api#top"] {
            assert!(api.matches(path), "{path}");
        }
        for path in ["/apix", "/ap", "/", "/v1/api"] {
            assert!(!api.matches(path), "{path}");
        }
        assert!(prefix("/api/").matches("/api"));
        assert!(!prefix("/api/").matches("/apix"));
    }

    #[test]
    fn the_root_prefix_matches_everything() {
        for path in ["/", "/api", "/?q"] {
            assert!(prefix("/").matches(path), "{path}");
        }
    }

    #[test]
    fn prefixes_are_paths() {
        assert!(
            PathPrefix::parse("api")
                .unwrap_err()
                .contains("start with `/`")
        );
        assert!(PathPrefix::parse("/api?x").unwrap_err().contains("query"));
    }
}

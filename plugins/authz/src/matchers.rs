//! The per-field matchers of a rule that are not networks: identity
//! patterns and path prefixes.

/// A pattern for a client's mesh identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IdentityPattern {
    /// `*`: any authenticated client.
    Any,
    /// `*.prod.serviceaccount...`: one or more leading labels, then this
    /// suffix (stored with its leading dot).
    Suffix(String),
    Exact(String),
}

impl IdentityPattern {
    pub fn parse(text: &str) -> Result<Self, String> {
        if text == "*" {
            return Ok(IdentityPattern::Any);
        }
        let (wildcard, name) = match text.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        if name.is_empty() {
            return Err(format!("identity `{text}` names nothing"));
        }
        if name.contains('*') {
            return Err(format!(
                "identity `{text}`: `*` may only be the whole pattern or its first label (`*.`)"
            ));
        }
        if name.split('.').any(str::is_empty) {
            return Err(format!("identity `{text}` has an empty label"));
        }
        Ok(match wildcard {
            true => IdentityPattern::Suffix(format!(".{name}")),
            false => IdentityPattern::Exact(name.to_string()),
        })
    }

    pub fn matches(&self, identity: &str) -> bool {
        match self {
            IdentityPattern::Any => true,
            IdentityPattern::Exact(name) => identity == name,
            // The labels before the suffix must be non-empty: `*.b` matches
            // `a.b` but neither `b` nor `.b`.
            IdentityPattern::Suffix(suffix) => identity
                .strip_suffix(suffix.as_str())
                .is_some_and(|labels| !labels.is_empty() && !labels.ends_with('.')),
        }
    }
}

/// A path prefix matched whole segments at a time, as Gateway API's
/// `PathPrefix`: `/api` matches `/api`, `/api/x` and `/api?q`, not `/apix`.
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

    fn identity(pattern: &str) -> IdentityPattern {
        IdentityPattern::parse(pattern).unwrap()
    }

    const WEB: &str = "web.prod.serviceaccount.identity.weft.cluster.local";

    #[test]
    fn exact_identities_match_only_themselves() {
        let pattern = identity(WEB);
        assert!(pattern.matches(WEB));
        assert!(!pattern.matches("api.prod.serviceaccount.identity.weft.cluster.local"));
        assert!(!pattern.matches("x.web.prod.serviceaccount.identity.weft.cluster.local"));
    }

    #[test]
    fn a_star_matches_any_identity() {
        assert!(identity("*").matches(WEB));
    }

    #[test]
    fn a_leading_wildcard_matches_one_or_more_labels() {
        let pattern = identity("*.prod.serviceaccount.identity.weft.cluster.local");
        assert!(pattern.matches(WEB));
        assert!(pattern.matches("a.b.prod.serviceaccount.identity.weft.cluster.local"));
        assert!(!pattern.matches("prod.serviceaccount.identity.weft.cluster.local"));
        assert!(!pattern.matches(".prod.serviceaccount.identity.weft.cluster.local"));
        assert!(!pattern.matches("web..prod.serviceaccount.identity.weft.cluster.local"));
        assert!(!pattern.matches("web.staging.serviceaccount.identity.weft.cluster.local"));
        assert!(!pattern.matches("webprod.serviceaccount.identity.weft.cluster.local"));
    }

    #[test]
    fn malformed_identity_patterns_are_refused() {
        for (text, reason) in [
            ("", "names nothing"),
            ("*.", "names nothing"),
            ("web.*.cluster.local", "may only be"),
            ("**.cluster.local", "may only be"),
            ("*web.cluster.local", "may only be"),
            ("web..cluster.local", "empty label"),
            ("web.cluster.local.", "empty label"),
        ] {
            let err = IdentityPattern::parse(text).unwrap_err();
            assert!(err.contains(reason), "{text:?}: {err}");
        }
    }

    fn prefix(text: &str) -> PathPrefix {
        PathPrefix::parse(text).unwrap()
    }

    #[test]
    fn prefixes_match_whole_segments() {
        let api = prefix("/api");
        for path in [
            "/api", "/api/", "/api/x", "/api/x/y", "/api?q=1", "/api#top",
        ] {
            assert!(api.matches(path), "{path}");
        }
        for path in ["/apix", "/ap", "/", "/v1/api", "/API"] {
            assert!(!api.matches(path), "{path}");
        }
    }

    #[test]
    fn a_trailing_slash_names_the_same_segments() {
        let api = prefix("/api/");
        assert!(api.matches("/api"));
        assert!(api.matches("/api/x"));
        assert!(!api.matches("/apix"));
    }

    #[test]
    fn the_root_prefix_matches_everything() {
        let root = prefix("/");
        for path in ["/", "/api", "/?q", "*"] {
            assert!(root.matches(path), "{path}");
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
        assert!(PathPrefix::parse("").is_err());
    }
}

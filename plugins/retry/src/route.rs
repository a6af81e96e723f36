//! Routes and which request each one takes.

use weft_plugin_sdk::path::PathPrefix;

use crate::conditions::RetryOn;

/// A configured route, validated.
#[derive(Debug, PartialEq)]
pub struct Route {
    pub name: String,
    pub matcher: Match,
    pub retry_on: RetryOn,
    /// Retries (not attempts) allowed per request.
    pub limit: u32,
    pub timeout_ms: Option<u32>,
}

/// What a request must have to take a route; `None` matches anything.
#[derive(Debug, Default, PartialEq)]
pub struct Match {
    pub methods: Option<Vec<String>>,
    pub authority: Option<String>,
    /// Whole segments, as Gateway API's `PathPrefix` (which Linkerd routes
    /// use): `/api` takes `/api`, `/api/users` and `/api?q`, not `/apiary`.
    pub path_prefix: Option<PathPrefix>,
}

/// The parts of a request routes look at. Each accessor of the proxy's
/// request crosses into the proxy and allocates, so an implementation
/// fetches each part only when a route first asks for it.
pub trait RequestFacts {
    fn method(&self) -> &str;
    fn authority(&self) -> Option<&str>;
    fn path(&self) -> &str;
}

impl Match {
    /// Cheapest checks first: the method needs no string from the proxy
    /// unless it is an extension method.
    pub fn matches(&self, req: &impl RequestFacts) -> bool {
        if let Some(methods) = &self.methods {
            let method = req.method();
            if !methods.iter().any(|m| m == method) {
                return false;
            }
        }
        if let Some(authority) = &self.authority
            && req.authority() != Some(authority.as_str())
        {
            return false;
        }
        match &self.path_prefix {
            Some(prefix) => prefix.matches(req.path()),
            None => true,
        }
    }
}

/// The index of the first route `req` takes.
pub fn find(routes: &[Route], req: &impl RequestFacts) -> Option<usize> {
    routes.iter().position(|route| route.matcher.matches(req))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    /// A request whose parts are at hand; counts what routes asked for.
    struct FakeRequest {
        method: &'static str,
        authority: Option<&'static str>,
        path: &'static str,
        fetched_path: Cell<u32>,
        fetched_authority: Cell<u32>,
    }

    impl FakeRequest {
        fn new(method: &'static str, authority: Option<&'static str>, path: &'static str) -> Self {
            FakeRequest {
                method,
                authority,
                path,
                fetched_path: Cell::new(0),
                fetched_authority: Cell::new(0),
            }
        }
    }

    impl RequestFacts for FakeRequest {
        fn method(&self) -> &str {
            self.method
        }

        fn authority(&self) -> Option<&str> {
            self.fetched_authority.set(self.fetched_authority.get() + 1);
            self.authority
        }

        fn path(&self) -> &str {
            self.fetched_path.set(self.fetched_path.get() + 1);
            self.path
        }
    }

    fn prefix(prefix: &str) -> Match {
        Match {
            path_prefix: Some(PathPrefix::parse(prefix).unwrap()),
            ..Match::default()
        }
    }

    fn get(path: &'static str) -> FakeRequest {
        FakeRequest::new("GET", Some("web.default:8080"), path)
    }

    #[test]
    fn an_empty_match_takes_everything() {
        let any = Match::default();
        assert!(any.matches(&get("/")));
        assert!(any.matches(&FakeRequest::new("PROPFIND", None, "*")));
    }

    #[test]
    fn path_prefixes_match_whole_segments() {
        let api = prefix("/api");
        for path in [
            "/api",
            "/api/",
            "/api/users",
            "/api?page=2",
            "/api#top",
            "/api/users?x=/",
        ] {
            assert!(api.matches(&get(path)), "{path}");
        }
        for path in ["/apiary", "/", "/v1/api", "/ap", "/apix?y=/api"] {
            assert!(!api.matches(&get(path)), "{path}");
        }
    }

    #[test]
    fn the_root_prefix_takes_every_path() {
        let root = prefix("/");
        assert!(root.matches(&get("/")));
        assert!(root.matches(&get("/anything/at?all")));
    }

    #[test]
    fn methods_compare_exactly() {
        let reads = Match {
            methods: Some(vec!["GET".to_string(), "PROPFIND".to_string()]),
            ..Match::default()
        };
        assert!(reads.matches(&get("/")));
        assert!(reads.matches(&FakeRequest::new("PROPFIND", None, "/")));
        assert!(!reads.matches(&FakeRequest::new("POST", None, "/")));
        assert!(!reads.matches(&FakeRequest::new("get", None, "/")));
    }

    #[test]
    fn authorities_compare_exactly() {
        let web = Match {
            authority: Some("web.default:8080".to_string()),
            ..Match::default()
        };
        assert!(web.matches(&get("/")));
        assert!(!web.matches(&FakeRequest::new("GET", Some("web.default"), "/")));
        assert!(!web.matches(&FakeRequest::new("GET", None, "/")));
    }

    #[test]
    fn every_given_field_must_match() {
        let all = Match {
            methods: Some(vec!["PUT".to_string()]),
            authority: Some("web".to_string()),
            path_prefix: Some(PathPrefix::parse("/api").unwrap()),
        };
        assert!(all.matches(&FakeRequest::new("PUT", Some("web"), "/api/x")));
        assert!(!all.matches(&FakeRequest::new("GET", Some("web"), "/api/x")));
        assert!(!all.matches(&FakeRequest::new("PUT", Some("api"), "/api/x")));
        assert!(!all.matches(&FakeRequest::new("PUT", Some("web"), "/x")));
    }

    #[test]
    fn parts_are_fetched_only_when_a_route_needs_them() {
        let all = Match {
            methods: Some(vec!["PUT".to_string()]),
            authority: Some("web".to_string()),
            path_prefix: Some(PathPrefix::parse("/api").unwrap()),
        };
        let req = get("/api");
        assert!(!all.matches(&req));
        assert_eq!(
            (req.fetched_authority.get(), req.fetched_path.get()),
            (0, 0)
        );
    }

    fn route(name: &str, matcher: Match) -> Route {
        Route {
            name: name.to_string(),
            matcher,
            retry_on: RetryOn::default(),
            limit: 1,
            timeout_ms: None,
        }
    }

    #[test]
    fn the_first_matching_route_wins() {
        let routes = [
            route("users", prefix("/api/users")),
            route("api", prefix("/api")),
            route("rest", Match::default()),
        ];
        assert_eq!(find(&routes, &get("/api/users/7")), Some(0));
        assert_eq!(find(&routes, &get("/api/orders")), Some(1));
        assert_eq!(find(&routes, &get("/health")), Some(2));
        assert_eq!(find(&routes[..2], &get("/health")), None);
    }
}

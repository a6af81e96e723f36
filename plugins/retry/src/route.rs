//! Routes and which request each one takes.

use weft_plugin_sdk::route_match::{RequestFacts, RequestMatch};

use crate::conditions::RetryOn;

/// A configured route, validated.
#[derive(Debug, PartialEq)]
pub struct Route {
    pub name: String,
    pub matcher: RequestMatch,
    pub retry_on: RetryOn,
    /// Retries (not attempts) allowed per request.
    pub limit: u32,
    pub timeout_ms: Option<u32>,
}

/// The index of the first route `req` takes.
pub fn find(routes: &[Route], req: &impl RequestFacts) -> Option<usize> {
    routes.iter().position(|route| route.matcher.matches(req))
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_plugin_sdk::route_match::MatchConfig;

    struct FakeRequest {
        method: &'static str,
        path: &'static str,
    }

    impl RequestFacts for FakeRequest {
        fn method(&self) -> &str {
            self.method
        }

        fn authority(&self) -> Option<&str> {
            Some("books.ns.svc.cluster.local:8080")
        }

        fn path(&self) -> &str {
            self.path
        }
    }

    fn get(path: &'static str) -> FakeRequest {
        FakeRequest {
            method: "GET",
            path,
        }
    }

    fn route(name: &str, matcher: MatchConfig) -> Route {
        Route {
            name: name.to_string(),
            matcher: RequestMatch::compile(&matcher).unwrap(),
            retry_on: RetryOn::default(),
            limit: 1,
            timeout_ms: None,
        }
    }

    fn prefix(prefix: &str) -> MatchConfig {
        MatchConfig {
            path_prefix: Some(prefix.to_string()),
            ..MatchConfig::default()
        }
    }

    #[test]
    fn the_first_matching_route_wins() {
        let routes = [
            route("users", prefix("/api/users")),
            route("api", prefix("/api")),
            route("rest", MatchConfig::default()),
        ];
        assert_eq!(find(&routes, &get("/api/users/7")), Some(0));
        assert_eq!(find(&routes, &get("/api/orders")), Some(1));
        assert_eq!(find(&routes, &get("/health")), Some(2));
        assert_eq!(find(&routes[..2], &get("/health")), None);
    }

    #[test]
    fn routes_take_the_shared_match() {
        let book = MatchConfig {
            methods: Some(vec!["GET".to_string()]),
            path_regex: Some("/books/[^/]+".to_string()),
            authority: Some("books.ns.svc.cluster.local".to_string()),
            ..MatchConfig::default()
        };
        let routes = [route("GET /books/{id}", book)];
        assert_eq!(find(&routes, &get("/books/7")), Some(0));
        assert_eq!(find(&routes, &get("/books/7/reviews")), None);
        let post = FakeRequest {
            method: "POST",
            path: "/books/7",
        };
        assert_eq!(find(&routes, &post), None);
    }
}

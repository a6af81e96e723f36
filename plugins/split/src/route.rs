//! Which route a request takes and which backend it goes to, apart from the
//! proxy so that it is tested natively.

use weft_plugin_sdk::path::PathPrefix;
use weft_plugin_sdk::route_match::{RequestFacts, RequestMatch};

/// What matching asks of a request: the parts the shared match looks at,
/// and headers. The plugin's implementation fetches each from the proxy
/// only when a route looks at it.
pub trait RequestView: RequestFacts {
    fn header(&self, name: &str) -> Option<String>;
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// The `route` label: the configured name or the route's index.
    pub name: String,
    /// Compared exactly with the request's authority, port included.
    pub authority: Option<String>,
    pub path_prefix: Option<PathPrefix>,
    /// Lower-case names; values compared exactly.
    pub headers: Vec<(String, String)>,
    /// The SDK's shared match (`match`), on top of the fields above.
    pub matcher: RequestMatch,
    pub backends: Vec<Backend>,
    /// The sum of the weights: more than zero and within `u32`.
    pub total_weight: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backend {
    /// `host:port`, as `set-backend` takes it.
    pub address: String,
    pub weight: u32,
}

impl Route {
    pub fn matches(&self, req: &impl RequestView) -> bool {
        self.authority
            .as_deref()
            .is_none_or(|authority| req.authority() == Some(authority))
            && self
                .path_prefix
                .as_ref()
                .is_none_or(|prefix| prefix.matches(req.path()))
            && self.matcher.matches(req)
            && self
                .headers
                .iter()
                .all(|(name, value)| req.header(name).as_deref() == Some(value.as_str()))
    }

    /// The backend a draw from the proxy's random source picks: each with
    /// probability weight / total. A zero weight is never picked.
    pub fn choose(&self, random: u64) -> usize {
        // `u64 % u32` is biased by at most 2^32 / 2^64: nothing to correct.
        let mut point = (random % u64::from(self.total_weight)) as u32;
        for (index, backend) in self.backends.iter().enumerate() {
            if point < backend.weight {
                return index;
            }
            point -= backend.weight;
        }
        unreachable!("the point lies below the sum of the weights")
    }
}

/// The first route the request matches, with its index.
pub fn select<'r>(routes: &'r [Route], req: &impl RequestView) -> Option<(usize, &'r Route)> {
    routes
        .iter()
        .enumerate()
        .find(|(_, route)| route.matches(req))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config;

    struct FakeRequest {
        authority: Option<&'static str>,
        path: &'static str,
        headers: Vec<(&'static str, &'static str)>,
    }

    impl RequestFacts for FakeRequest {
        fn method(&self) -> &str {
            "GET"
        }

        fn authority(&self) -> Option<&str> {
            self.authority
        }

        fn path(&self) -> &str {
            self.path
        }
    }

    impl RequestView for FakeRequest {
        fn header(&self, name: &str) -> Option<String> {
            self.headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.to_string())
        }
    }

    fn request(authority: &'static str, path: &'static str) -> FakeRequest {
        FakeRequest {
            authority: Some(authority),
            path,
            headers: Vec::new(),
        }
    }

    fn routes(json: &str) -> Vec<Route> {
        config::parse(json).unwrap()
    }

    /// SplitMix64: a deterministic stand-in for the proxy's randomness.
    fn draws(count: usize) -> impl Iterator<Item = u64> {
        let mut state = 0x5eed_u64;
        std::iter::repeat_with(move || {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        })
        .take(count)
    }

    const WEB: &str = "web.default.svc.cluster.local:8080";

    #[test]
    fn a_900_100_split_sends_90_percent_to_the_first() {
        let routes = routes(
            r#"{"routes": [{"backends": [
                {"backend": "127.0.0.1:9001", "weight": 900},
                {"backend": "127.0.0.1:9002", "weight": 100}
            ]}]}"#,
        );
        let count = 100_000;
        let first = draws(count)
            .filter(|&random| routes[0].choose(random) == 0)
            .count();
        let share = first as f64 / count as f64;
        assert!((0.89..=0.91).contains(&share), "{share}");
    }

    #[test]
    fn a_zero_weight_is_never_chosen() {
        let routes = routes(
            r#"{"routes": [{"backends": [
                {"backend": "a:1", "weight": 0},
                {"backend": "b:1", "weight": 1},
                {"backend": "c:1", "weight": 0},
                {"backend": "d:1", "weight": 2},
                {"backend": "e:1", "weight": 0}
            ]}]}"#,
        );
        let mut seen = [0; 5];
        for random in draws(10_000).chain([0, 1, 2, 3, u64::MAX]) {
            seen[routes[0].choose(random)] += 1;
        }
        assert_eq!((seen[0], seen[2], seen[4]), (0, 0, 0), "{seen:?}");
        assert!(seen[1] > 0 && seen[3] > seen[1], "{seen:?}");
    }

    #[test]
    fn draws_map_onto_cumulative_weights() {
        let routes = routes(
            r#"{"routes": [{"backends": [
                {"backend": "a:1", "weight": 2},
                {"backend": "b:1", "weight": 0},
                {"backend": "c:1", "weight": 3}
            ]}]}"#,
        );
        let picks: Vec<usize> = (0..6).map(|random| routes[0].choose(random)).collect();
        assert_eq!(picks, [0, 0, 2, 2, 2, 0]);
    }

    #[test]
    fn a_single_backend_takes_everything() {
        let routes = routes(r#"{"routes": [{"backends": [{"backend": "a:1"}]}]}"#);
        assert!(draws(100).all(|random| routes[0].choose(random) == 0));
    }

    #[test]
    fn canaries_are_routed_by_header() {
        let routes = routes(&format!(
            r#"{{"routes": [
                {{"name": "canary", "authority": "{WEB}", "headers": {{"x-canary": "true"}},
                  "backends": [{{"name": "web-v2", "port": 8080}}]}},
                {{"name": "stable", "authority": "{WEB}",
                  "backends": [{{"name": "web-v1", "port": 8080}}]}}
            ]}}"#
        ));
        let canary = FakeRequest {
            headers: vec![("X-Canary", "true")],
            ..request(WEB, "/")
        };
        let (index, route) = select(&routes, &canary).unwrap();
        assert_eq!((index, route.name.as_str()), (0, "canary"));
        assert_eq!(
            route.backends[0].address,
            "web-v2.default.svc.cluster.local:8080"
        );
        for headers in [
            vec![],
            vec![("x-canary", "yes")],
            vec![("x-canary", "TRUE")],
        ] {
            let stable = FakeRequest {
                headers,
                ..request(WEB, "/")
            };
            assert_eq!(select(&routes, &stable).unwrap().1.name, "stable");
        }
    }

    #[test]
    fn every_given_match_must_hold() {
        let routes = routes(&format!(
            r#"{{"routes": [{{"authority": "{WEB}", "pathPrefix": "/api",
                "headers": {{"x-a": "1", "x-b": "2"}}, "backends": [{{"backend": "a:1"}}]}}]}}"#
        ));
        let matching = FakeRequest {
            headers: vec![("x-a", "1"), ("x-b", "2")],
            ..request(WEB, "/api/users?page=2")
        };
        assert!(select(&routes, &matching).is_some());
        for (req, why) in [
            (
                FakeRequest {
                    headers: vec![("x-a", "1")],
                    ..request(WEB, "/api")
                },
                "a header missing",
            ),
            (
                FakeRequest {
                    headers: vec![("x-a", "1"), ("x-b", "2")],
                    ..request(WEB, "/apix")
                },
                "path",
            ),
            (
                FakeRequest {
                    headers: vec![("x-a", "1"), ("x-b", "2")],
                    ..request("web.default.svc.cluster.local", "/api")
                },
                "authority without the port",
            ),
            (
                FakeRequest {
                    authority: None,
                    headers: vec![("x-a", "1"), ("x-b", "2")],
                    ..request(WEB, "/api")
                },
                "no authority",
            ),
        ] {
            assert!(select(&routes, &req).is_none(), "{why}");
        }
    }

    #[test]
    fn routes_take_the_shared_match_too() {
        let routes = routes(
            r#"{"routes": [
                {"name": "books", "authority": "books.ns.svc.cluster.local:8080",
                 "match": {"methods": ["GET"], "pathRegex": "/books/[^/]+",
                           "not": {"pathPrefix": "/books/admin"}},
                 "backends": [{"backend": "books-v2:8080"}]},
                {"name": "web", "match": {"authority": "WEB.default.svc.cluster.local"},
                 "backends": [{"backend": "web-v2:8080"}]}
            ]}"#,
        );
        let books = |path| request("books.ns.svc.cluster.local:8080", path);
        assert_eq!(select(&routes, &books("/books/7")).unwrap().0, 0);
        assert!(select(&routes, &books("/books/7/reviews")).is_none());
        assert!(select(&routes, &books("/books/admin")).is_none());
        // A `match` authority without a port takes every port.
        assert_eq!(select(&routes, &request(WEB, "/")).unwrap().0, 1);
        assert_eq!(
            select(&routes, &request("web.default.svc.cluster.local", "/"))
                .unwrap()
                .0,
            1
        );
    }

    #[test]
    fn the_first_matching_route_wins() {
        let routes = routes(
            r#"{"routes": [
                {"pathPrefix": "/api", "backends": [{"backend": "api:1"}]},
                {"pathPrefix": "/", "backends": [{"backend": "all:1"}]},
                {"pathPrefix": "/api/v2", "backends": [{"backend": "never:1"}]}
            ]}"#,
        );
        let (index, route) = select(&routes, &request(WEB, "/api/v2/x")).unwrap();
        assert_eq!((index, route.name.as_str()), (0, "0"));
        assert_eq!(select(&routes, &request(WEB, "/web")).unwrap().0, 1);
    }

    #[test]
    fn no_route_means_no_split() {
        let routes =
            routes(r#"{"routes": [{"authority": "a:80", "backends": [{"backend": "a:1"}]}]}"#);
        assert!(select(&routes, &request("b:80", "/")).is_none());
        assert!(select(&[], &request("b:80", "/")).is_none());
    }
}

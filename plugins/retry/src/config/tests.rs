use super::*;
use weft_plugin_sdk::path::PathPrefix;

fn one_route(route: &str) -> String {
    format!(r#"{{"routes": [{route}]}}"#)
}

fn error(text: &str) -> String {
    parse(text).unwrap_err()
}

#[test]
fn accepts_the_documented_example() {
    let config = parse(
        r#"{
            "routes": [
                {
                    "name": "api",
                    "match": {"pathPrefix": "/api/", "methods": ["GET", "PUT"], "authority": "web.default:8080",
                              "pathRegex": "/api/[^/]+"},
                    "retryOn": ["5xx", "gateway-error", "connect-failure", "reset", "timeout", "retriable-4xx", "503", "500-504"],
                    "limit": 2,
                    "timeoutMs": 2000
                }
            ],
            "budget": {"retryRatio": 0.5, "minRetriesPerSecond": 3, "ttlSeconds": 20},
            "budgets": [{"authority": "Books.ns.svc.cluster.local", "retryRatio": 0.1,
                         "minRetriesPerSecond": 1, "ttlSeconds": 5}]
        }"#,
    )
    .unwrap();
    let route = &config.routes[0];
    assert_eq!(route.name, "api");
    assert_eq!(
        route.matcher,
        RequestMatch::compile(&MatchConfig {
            methods: Some(vec!["GET".to_string(), "PUT".to_string()]),
            authority: Some("web.default:8080".to_string()),
            path_prefix: Some("/api".to_string()),
            path_regex: Some("/api/[^/]+".to_string()),
            ..MatchConfig::default()
        })
        .unwrap()
    );
    assert_eq!(
        route.retry_on,
        RetryOn::parse(&[
            "5xx",
            "gateway-error",
            "connect-failure",
            "reset",
            "timeout",
            "retriable-4xx"
        ])
        .unwrap()
    );
    assert_eq!((route.limit, route.timeout_ms), (2, Some(2000)));
    assert_eq!(
        config.budget,
        BudgetConfig {
            retry_ratio: 0.5,
            min_retries_per_second: 3.0,
            ttl_seconds: 20,
        }
    );
    assert_eq!(
        config.budgets,
        [AuthorityBudget {
            name: "books.ns.svc.cluster.local".to_string(),
            authority: AuthorityMatch::parse("books.ns.svc.cluster.local").unwrap(),
            budget: BudgetConfig {
                retry_ratio: 0.1,
                min_retries_per_second: 1.0,
                ttl_seconds: 5,
            },
        }]
    );
}

#[test]
fn defaults_are_linkerds() {
    let config = parse(&one_route(r#"{"name": "all"}"#)).unwrap();
    let route = &config.routes[0];
    assert_eq!(route.matcher, RequestMatch::default());
    assert_eq!(route.retry_on, RetryOn::parse(&DEFAULT_RETRY_ON).unwrap());
    assert_eq!((route.limit, route.timeout_ms), (1, None));
    assert_eq!(config.budget, BudgetConfig::default());
    assert!(config.budgets.is_empty());

    let partial = parse(r#"{"routes": [{"name": "a"}], "budget": {"ttlSeconds": 5}}"#).unwrap();
    assert_eq!(
        partial.budget,
        BudgetConfig {
            ttl_seconds: 5,
            ..BudgetConfig::default()
        }
    );
}

#[test]
fn a_root_prefix_and_an_empty_retry_list_are_allowed() {
    let config = parse(&one_route(
        r#"{"name": "t", "match": {"pathPrefix": "/"}, "retryOn": [], "limit": 0}"#,
    ))
    .unwrap();
    let route = &config.routes[0];
    assert_eq!(
        route.matcher,
        RequestMatch::path_prefix(PathPrefix::parse("/").unwrap())
    );
    assert_eq!(route.retry_on, RetryOn::default());
    assert_eq!(route.limit, 0);
}

#[test]
fn rejects_unknown_fields_everywhere() {
    assert!(
        error(r#"{"routes": [{"name": "a"}], "retries": 3}"#).starts_with(
            "invalid retry config: unknown field `retries`, expected one of `routes`, `budget`, \
             `budgets`"
        )
    );
    assert!(
        error(&one_route(r#"{"name": "a", "retry_on": []}"#))
            .starts_with("invalid retry config: unknown field `retry_on`")
    );
    assert!(
        error(&one_route(r#"{"name": "a", "match": {"path": "/"}}"#))
            .starts_with("invalid retry config: unknown field `path`")
    );
    assert!(
        error(r#"{"routes": [{"name": "a"}], "budget": {"ttl": 1}}"#)
            .starts_with("invalid retry config: unknown field `ttl`")
    );
    assert!(
        error(r#"{"routes": [{"name": "a"}], "budgets": [{"authority": "a", "ttl": 1}]}"#)
            .starts_with("invalid retry config: unknown field `ttl`")
    );
}

#[test]
fn rejects_malformed_json_and_missing_fields() {
    assert!(error("").starts_with("invalid retry config: EOF"));
    assert!(error("{}").starts_with("invalid retry config: missing field `routes`"));
    assert!(error(&one_route("{}")).starts_with("invalid retry config: missing field `name`"));
    assert!(
        error(&one_route(r#"{"name": "a", "limit": -1}"#))
            .starts_with("invalid retry config: invalid value: integer `-1`")
    );
}

#[test]
fn rejects_no_routes() {
    assert_eq!(
        error(r#"{"routes": []}"#),
        "routes: at least one route is required"
    );
}

#[test]
fn rejects_bad_route_names() {
    assert_eq!(
        error(&one_route(r#"{"name": ""}"#)),
        "routes[0]: name must not be empty"
    );
    assert_eq!(
        error(r#"{"routes": [{"name": "a"}, {"name": "b"}, {"name": "a"}]}"#),
        "routes[2]: name \"a\" is used by an earlier route"
    );
}

#[test]
fn rejects_unknown_conditions_naming_the_route() {
    assert_eq!(
        error(&one_route(
            r#"{"name": "api", "retryOn": ["5xx", "500-50"]}"#
        )),
        "routes[0]: route \"api\": retryOn: unknown retry condition \"500-50\"; expected \
         5xx, gateway-error, connect-failure, reset, timeout, retriable-4xx, a status such \
         as 503, or a range such as 500-504"
    );
}

#[test]
fn rejects_bad_matches() {
    let match_error = |m: &str| error(&one_route(&format!(r#"{{"name": "api", "match": {m}}}"#)));
    assert_eq!(
        match_error(r#"{"pathPrefix": "api"}"#),
        "routes[0]: route \"api\": match.pathPrefix: path prefix `api` must start with `/`"
    );
    assert_eq!(
        match_error(r#"{"pathPrefix": "/api?x=1"}"#),
        "routes[0]: route \"api\": match.pathPrefix: path prefix `/api?x=1` must not \
         contain a query or fragment"
    );
    assert_eq!(
        match_error(r#"{"pathPrefix": "/api#top"}"#),
        "routes[0]: route \"api\": match.pathPrefix: path prefix `/api#top` must not \
         contain a query or fragment"
    );
    assert_eq!(
        match_error(r#"{"methods": []}"#),
        "routes[0]: route \"api\": match.methods must not be empty (leave it out to match any)"
    );
    assert_eq!(
        match_error(r#"{"methods": ["GET", "get"]}"#),
        "routes[0]: route \"api\": match.methods: \"get\" must be uppercase (methods compare \
         case-sensitively)"
    );
    assert_eq!(
        match_error(r#"{"methods": ["GET POST"]}"#),
        "routes[0]: route \"api\": match.methods: \"GET POST\" is not a method"
    );
    assert_eq!(
        match_error(r#"{"authority": ""}"#),
        "routes[0]: route \"api\": match.authority: must not be empty (leave it out to \
         match any)"
    );
    assert_eq!(
        match_error(r#"{"any": [{"not": {"authority": "web:http"}}]}"#),
        "routes[0]: route \"api\": match.any[0].not.authority: `web:http` has no valid port"
    );
    assert!(match_error(r#"{"pathRegex": "/books/[^/"}"#).starts_with(
        "routes[0]: route \"api\": match.pathRegex: `/books/[^/` is not a regex this \
             plugin can use: "
    ));
}

#[test]
fn budgets_per_authority_default_to_linkerds_and_are_checked() {
    let config =
        parse(r#"{"routes": [{"name": "a"}], "budgets": [{"authority": "books:8080"}]}"#).unwrap();
    assert_eq!(config.budgets[0].budget, BudgetConfig::default());
    let budgets_error = |budgets: &str| {
        error(&format!(
            r#"{{"routes": [{{"name": "a"}}], "budgets": {budgets}}}"#
        ))
    };
    assert_eq!(
        budgets_error(r#"[{"authority": "books"}, {"authority": "BOOKS"}]"#),
        "budgets[1].authority: \"BOOKS\" has a budget already"
    );
    assert_eq!(
        budgets_error(r#"[{"authority": ""}]"#),
        "budgets[0].authority: must not be empty (leave it out to match any)"
    );
    assert_eq!(
        budgets_error(r#"[{"authority": "books", "ttlSeconds": 0}]"#),
        "budgets[0].ttlSeconds must be between 1 and 60, not 0"
    );
    assert!(budgets_error(r#"[{"retryRatio": 1}]"#).contains("missing field `authority`"));
    let many: Vec<String> = (0..=MAX_BUDGETS)
        .map(|i| format!(r#"{{"authority": "s{i}"}}"#))
        .collect();
    assert_eq!(
        budgets_error(&format!("[{}]", many.join(","))),
        "budgets: 101 budgets, more than the 100 allowed"
    );
}

#[test]
fn rejects_a_zero_timeout() {
    assert_eq!(
        error(&one_route(r#"{"name": "api", "timeoutMs": 0}"#)),
        "routes[0]: route \"api\": timeoutMs must be at least 1"
    );
}

#[test]
fn rejects_budgets_out_of_bounds() {
    let budget_error = |b: &str| {
        error(&format!(
            r#"{{"routes": [{{"name": "a"}}], "budget": {b}}}"#
        ))
    };
    assert_eq!(
        budget_error(r#"{"retryRatio": -0.1}"#),
        "budget.retryRatio must be between 0 and 1000, not -0.1"
    );
    assert_eq!(
        budget_error(r#"{"retryRatio": 1000.5}"#),
        "budget.retryRatio must be between 0 and 1000, not 1000.5"
    );
    assert_eq!(
        budget_error(r#"{"minRetriesPerSecond": -1}"#),
        "budget.minRetriesPerSecond must be 0 or more, not -1"
    );
    assert_eq!(
        budget_error(r#"{"ttlSeconds": 0}"#),
        "budget.ttlSeconds must be between 1 and 60, not 0"
    );
    assert_eq!(
        budget_error(r#"{"ttlSeconds": 61}"#),
        "budget.ttlSeconds must be between 1 and 60, not 61"
    );
    // The bounds themselves are allowed.
    for ok in [
        r#"{"retryRatio": 0, "minRetriesPerSecond": 0, "ttlSeconds": 1}"#,
        r#"{"retryRatio": 1000, "ttlSeconds": 60}"#,
    ] {
        assert!(
            parse(&format!(
                r#"{{"routes": [{{"name": "a"}}], "budget": {ok}}}"#
            ))
            .is_ok()
        );
    }
}

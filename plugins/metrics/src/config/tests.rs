use super::*;
use crate::response_class::is_failure;

fn error(text: &str) -> String {
    parse(text).unwrap_err()
}

fn one_route(route: &str) -> String {
    format!(r#"{{"routes": [{route}]}}"#)
}

#[test]
fn no_config_means_no_routes() {
    for text in ["", "  ", "{}", r#"{"routes": []}"#] {
        assert_eq!(parse(text), Ok(Vec::new()), "{text:?}");
    }
}

#[test]
fn accepts_a_service_profile_route() {
    let routes = parse(
        r#"{"routes": [
            {"name": "GET /books/{id}",
             "match": {"methods": ["GET"], "pathRegex": "/books/[^/]+",
                       "authority": "books.ns.svc.cluster.local"},
             "responseClasses": [
                {"condition": {"status": {"min": 500, "max": 599}}, "isFailure": true},
                {"condition": {"any": [{"status": {"min": 404, "max": 404}},
                                       {"not": {"status": {"max": 499}}}]},
                 "isFailure": true},
                {"condition": {"status": {"min": 200}}}
             ]},
            {"name": "everything else"}
        ]}"#,
    )
    .unwrap();
    let route = &routes[0];
    assert_eq!(route.name, "GET /books/{id}");
    let config: MatchConfig = serde_json::from_str(
        r#"{"methods": ["GET"], "pathRegex": "/books/[^/]+",
            "authority": "books.ns.svc.cluster.local"}"#,
    )
    .unwrap();
    assert_eq!(route.matcher, RequestMatch::compile(&config).unwrap());
    assert_eq!(route.classes[0].condition.status, Some((500, 599)));
    assert_eq!(route.classes[2].condition.status, Some((200, 599)));
    assert!(!route.classes[2].is_failure, "isFailure defaults to false");
    assert!(is_failure(&route.classes, Some(404)));
    assert!(!is_failure(&route.classes, Some(403)));
    assert_eq!(routes[1].matcher, RequestMatch::default());
    assert!(routes[1].classes.is_empty());
}

#[test]
fn refuses_what_it_does_not_understand_naming_the_field() {
    assert!(error(r#"{"route": []}"#).starts_with("invalid metrics config: unknown field `route`"));
    assert!(error("[").starts_with("invalid metrics config: "));
    assert!(error(&one_route("{}")).contains("missing field `name`"));
    assert!(
        error(&one_route(
            r#"{"name": "a", "responseClasses": [{"condition": {"status": {"min": 500}}, "failure": true}]}"#
        ))
        .contains("unknown field `failure`")
    );
    assert!(
        error(&one_route(
            r#"{"name": "a", "responseClasses": [{"isFailure": true}]}"#
        ))
        .contains("missing field `condition`")
    );
    for (route, message) in [
        (r#"{"name": ""}"#, "routes[0]: name must not be empty"),
        (
            r#"{"name": "a", "match": {"pathRegex": "/a/b/", "methods": ["get"]}}"#,
            "routes[0]: route \"a\": match.methods: \"get\" must be uppercase (methods \
             compare case-sensitively)",
        ),
        (
            r#"{"name": "a", "responseClasses": [{"condition": {}}]}"#,
            "routes[0]: route \"a\": responseClasses[0].condition: give `status`, `all`, \
             `any` or `not`",
        ),
        (
            r#"{"name": "a", "responseClasses": [{"condition": {"status": {"min": 500}}},
                {"condition": {"all": [{"status": {"min": 600}}]}}]}"#,
            "routes[0]: route \"a\": responseClasses[1].condition.all[0].status: 600..599 is \
             not a range of statuses (100 <= min <= max <= 599)",
        ),
        (
            r#"{"name": "a", "responseClasses": [{"condition": {"status": {"min": 500, "max": 400}}}]}"#,
            "routes[0]: route \"a\": responseClasses[0].condition.status: 500..400 is not a \
             range of statuses (100 <= min <= max <= 599)",
        ),
        (
            r#"{"name": "a", "responseClasses": [{"condition": {"not": {"any": []}}}]}"#,
            "routes[0]: route \"a\": responseClasses[0].condition.not.any: must not be empty \
             (it would hold for nothing)",
        ),
    ] {
        assert_eq!(error(&one_route(route)), message, "{route}");
    }
    assert_eq!(
        error(r#"{"routes": [{"name": "a"}, {"name": "a"}]}"#),
        "routes[1]: name \"a\" is used by an earlier route"
    );
    let regex = error(&one_route(
        r#"{"name": "a", "match": {"pathRegex": "/books/("}}"#,
    ));
    assert!(
        regex.starts_with("routes[0]: route \"a\": match.pathRegex: `/books/(` is not a regex"),
        "{regex}"
    );
}

#[test]
fn nesting_and_route_counts_are_bounded() {
    let mut deep = r#"{"status": {"min": 500}}"#.to_string();
    for _ in 0..=MAX_DEPTH {
        deep = format!(r#"{{"not": {deep}}}"#);
    }
    let message = error(&one_route(&format!(
        r#"{{"name": "a", "responseClasses": [{{"condition": {deep}}}]}}"#
    )));
    assert!(message.ends_with("nest deeper than 8 levels"), "{message}");
    let many: Vec<String> = (0..=MAX_ROUTES)
        .map(|i| format!(r#"{{"name": "r{i}"}}"#))
        .collect();
    assert_eq!(
        error(&format!(r#"{{"routes": [{}]}}"#, many.join(","))),
        "routes: 1001 routes, more than the 1000 allowed"
    );
}

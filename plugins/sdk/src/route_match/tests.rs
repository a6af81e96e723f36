use std::cell::Cell;

use super::*;

/// A request whose parts are at hand; counts the paths matches asked for.
struct FakeRequest {
    method: &'static str,
    authority: Option<&'static str>,
    path: &'static str,
    fetched_path: Cell<u32>,
}

fn request(method: &'static str, authority: &'static str, path: &'static str) -> FakeRequest {
    FakeRequest {
        method,
        authority: Some(authority),
        path,
        fetched_path: Cell::new(0),
    }
}

fn get(path: &'static str) -> FakeRequest {
    request("GET", "books.ns.svc.cluster.local:8080", path)
}

impl RequestFacts for FakeRequest {
    fn method(&self) -> &str {
        self.method
    }

    fn authority(&self) -> Option<&str> {
        self.authority
    }

    fn path(&self) -> &str {
        self.fetched_path.set(self.fetched_path.get() + 1);
        self.path
    }
}

fn compile(json: &str) -> Result<RequestMatch, String> {
    let config: MatchConfig = serde_json::from_str(json).map_err(|err| err.to_string())?;
    RequestMatch::compile(&config)
}

fn matcher(json: &str) -> RequestMatch {
    compile(json).unwrap()
}

#[test]
fn an_empty_match_takes_everything() {
    let any = matcher("{}");
    assert_eq!(any, RequestMatch::default());
    assert!(any.matches(&get("/")));
    assert!(any.matches(&FakeRequest {
        authority: None,
        ..request("PROPFIND", "", "*")
    }));
}

#[test]
fn every_given_field_must_hold() {
    let m = matcher(
        r#"{"methods": ["GET", "HEAD"], "pathPrefix": "/books",
            "pathRegex": "/books/[^/]+", "authority": "books.ns.svc.cluster.local"}"#,
    );
    assert!(m.matches(&get("/books/7")));
    assert!(m.matches(&request("HEAD", "books.ns.svc.cluster.local", "/books/7")));
    assert!(!m.matches(&request("POST", "books.ns.svc.cluster.local", "/books/7")));
    assert!(!m.matches(&request("GET", "authors.ns.svc.cluster.local", "/books/7")));
    assert!(!m.matches(&get("/books")));
    assert!(!m.matches(&get("/books/7/reviews")));
    let no_authority = FakeRequest {
        authority: None,
        ..get("/books/7")
    };
    assert!(!m.matches(&no_authority));
}

#[test]
fn path_regexes_match_the_whole_path_without_the_query() {
    let m = matcher(r#"{"pathRegex": "/books/\\d+"}"#);
    for path in ["/books/7", "/books/123?x=/a", "/books/7#top"] {
        assert!(m.matches(&get(path)), "{path}");
    }
    for path in [
        "/books/",
        "/books/7/",
        "/v1/books/7",
        "/books/7x",
        "/books/x?7",
    ] {
        assert!(!m.matches(&get(path)), "{path}");
    }
    // An alternation is anchored as a whole, not just its ends.
    let either = matcher(r#"{"pathRegex": "/a|/b"}"#);
    assert!(either.matches(&get("/a")) && either.matches(&get("/b")));
    assert!(!either.matches(&get("/a/x")) && !either.matches(&get("/x/b")));
    // Linkerd's generated profiles use these.
    let generated = matcher(r#"{"pathRegex": "/authors/[^/]*\\.json"}"#);
    assert!(generated.matches(&get("/authors/ada.json")));
    assert!(!generated.matches(&get("/authors/ada/x.json")));
    let insensitive = matcher(r#"{"pathRegex": "(?i)/books"}"#);
    assert!(insensitive.matches(&get("/BOOKS")));
}

#[test]
fn all_any_and_not_combine_matches() {
    let m = matcher(
        r#"{"all": [{"pathPrefix": "/books"}, {"not": {"pathPrefix": "/books/admin"}}],
            "any": [{"methods": ["GET"]}, {"methods": ["POST"], "pathRegex": "/books/\\d+"}]}"#,
    );
    assert!(m.matches(&get("/books/7")));
    assert!(m.matches(&request("POST", "b", "/books/7")));
    assert!(!m.matches(&request("POST", "b", "/books/new")));
    assert!(!m.matches(&request("PUT", "b", "/books/7")));
    assert!(!m.matches(&get("/books/admin/users")));
    assert!(!m.matches(&get("/authors")));
    let nothing_but_health = matcher(r#"{"not": {"pathPrefix": "/health"}}"#);
    assert!(nothing_but_health.matches(&get("/books")));
    assert!(!nothing_but_health.matches(&get("/health")));
}

#[test]
fn the_path_is_asked_for_only_when_needed() {
    let m = matcher(r#"{"methods": ["PUT"], "pathPrefix": "/a", "pathRegex": "/a/.*"}"#);
    let req = get("/a/b");
    assert!(!m.matches(&req));
    assert_eq!(req.fetched_path.get(), 0);
}

#[test]
fn errors_name_the_field_and_where_it_is() {
    for (json, error) in [
        (
            r#"{"pathPrefix": "books"}"#,
            "pathPrefix: path prefix `books` must start with `/`",
        ),
        (
            r#"{"methods": []}"#,
            "methods must not be empty (leave it out to match any)",
        ),
        (
            r#"{"methods": ["GET", "get"]}"#,
            "methods: \"get\" must be uppercase (methods compare case-sensitively)",
        ),
        (
            r#"{"methods": ["GET POST"]}"#,
            "methods: \"GET POST\" is not a method",
        ),
        (
            r#"{"authority": ""}"#,
            "authority: must not be empty (leave it out to match any)",
        ),
        (
            r#"{"all": [{}, {"any": [{"authority": "web:x"}]}]}"#,
            "all[1].any[0].authority: `web:x` has no valid port",
        ),
        (
            r#"{"not": {"pathPrefix": "x"}}"#,
            "not.pathPrefix: path prefix `x` must start with `/`",
        ),
        (
            r#"{"any": []}"#,
            "any must not be empty (it would match nothing)",
        ),
    ] {
        assert_eq!(compile(json).unwrap_err(), error, "{json}");
    }
    let regex = compile(r#"{"any": [{"pathRegex": "/books/("}]}"#).unwrap_err();
    assert!(
        regex.starts_with("any[0].pathRegex: `/books/(` is not a regex this plugin can use: "),
        "{regex}"
    );
    let unknown = compile(r#"{"path": "/"}"#).unwrap_err();
    assert!(
        unknown.starts_with("unknown field `path`, expected one of"),
        "{unknown}"
    );
}

#[test]
fn regexes_are_bounded() {
    // Unicode classes are not compiled in: paths are ASCII as sent.
    let unicode = compile(r#"{"pathRegex": "/\\p{Greek}+"}"#).unwrap_err();
    assert!(unicode.starts_with("pathRegex: "), "{unicode}");
    let huge = compile(r#"{"pathRegex": "(/[a-z]{1,100}){1,100}"}"#).unwrap_err();
    assert!(huge.contains("exceeded limit"), "{huge}");
}

#[test]
fn nesting_is_bounded() {
    let nested = |depth: usize| {
        let mut json = r#"{"pathPrefix": "/"}"#.to_string();
        for _ in 0..depth {
            json = format!(r#"{{"not": {json}}}"#);
        }
        compile(&json)
    };
    assert!(nested(MAX_DEPTH).is_ok());
    let error = nested(MAX_DEPTH + 1).unwrap_err();
    assert_eq!(
        error,
        format!(
            "{}`all`, `any` and `not` nest deeper than 8 levels",
            "not.".repeat(MAX_DEPTH + 1)
        )
    );
    // An even number of `not`s takes what the innermost match takes.
    assert!(nested(MAX_DEPTH).unwrap().matches(&get("/x")));
}

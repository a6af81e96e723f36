//! Which requests a route takes: the match the shipped routing plugins
//! share, with the semantics of Linkerd's ServiceProfile `condition` and
//! Gateway API's path prefixes.
//!
//! ```json
//! {"methods": ["GET"], "pathPrefix": "/a", "pathRegex": "/books/[^/]+",
//!  "authority": "books.ns.svc.cluster.local",
//!  "all": [{…}], "any": [{…}], "not": {…}}
//! ```
//!
//! Every field is optional and every field given must hold, so `{}` takes
//! every request. `methods` compare exactly (upper case); `pathPrefix`
//! matches whole segments ([`PathPrefix`]); `pathRegex` must match the
//! whole path, query left out, as Linkerd's `pathRegex` does; `authority`
//! without a port takes that host on any port, with a port only that port,
//! either compared case-insensitively; `all` holds when each of its matches
//! does, `any` when one does, `not` when its match does not.
//!
//! Read the JSON as a [`MatchConfig`] and compile it once, at `init`, with
//! [`RequestMatch::compile`]; then [`RequestMatch::matches`] per request:
//!
//! ```
//! use weft_plugin_sdk::route_match::{MatchConfig, RequestFacts, RequestMatch};
//!
//! let config: MatchConfig =
//!     serde_json::from_str(r#"{"methods": ["GET"], "pathRegex": "/books/\\d+"}"#).unwrap();
//! let books = RequestMatch::compile(&config)?;
//!
//! struct Get(&'static str);
//! impl RequestFacts for Get {
//!     fn method(&self) -> &str { "GET" }
//!     fn authority(&self) -> Option<&str> { None }
//!     fn path(&self) -> &str { self.0 }
//! }
//! assert!(books.matches(&Get("/books/7?format=json")));
//! assert!(!books.matches(&Get("/books/7/reviews")));
//! # Ok::<(), String>(())
//! ```

mod authority;
mod request;
#[cfg(test)]
mod tests;

use std::cell::RefCell;

use regex_automata::Input;
use regex_automata::nfa::thompson::{self, pikevm};
use regex_automata::util::syntax;
use serde::Deserialize;

use crate::path::PathPrefix;

pub use authority::AuthorityMatch;
pub use request::RequestFacts;

/// How deep `all`, `any` and `not` may nest: far more than any route needs,
/// and a bound on the work one request's match can cost.
pub const MAX_DEPTH: usize = 8;

/// Validates each raw route with `validate`, refusing a second route of one
/// name: route names are metric labels, and two routes under one name would
/// share series. Errors name the route as `routes[i]`.
pub fn named_routes<Raw, Route>(
    raw: Vec<Raw>,
    validate: impl Fn(Raw) -> Result<Route, String>,
    name: impl Fn(&Route) -> &str,
) -> Result<Vec<Route>, String> {
    let mut routes: Vec<Route> = Vec::with_capacity(raw.len());
    for (index, raw) in raw.into_iter().enumerate() {
        let route = validate(raw).map_err(|err| format!("routes[{index}]: {err}"))?;
        if routes.iter().any(|other| name(other) == name(&route)) {
            return Err(format!(
                "routes[{index}]: name {:?} is used by an earlier route",
                name(&route)
            ));
        }
        routes.push(route);
    }
    Ok(routes)
}

/// The most a compiled `pathRegex` may take: ample for path patterns, and
/// small next to a plugin's memory limit (16 MiB by default).
const REGEX_SIZE_LIMIT: usize = 256 * 1024;

/// A match as written in a plugin's JSON configuration. Compile it with
/// [`RequestMatch::compile`], which checks every field.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MatchConfig {
    /// Upper case, compared exactly.
    pub methods: Option<Vec<String>>,
    /// Whole path segments.
    pub path_prefix: Option<String>,
    /// Must match the whole path, query left out.
    pub path_regex: Option<String>,
    /// `host` (any port) or `host:port`, case-insensitive.
    pub authority: Option<String>,
    /// Each must hold.
    pub all: Option<Vec<MatchConfig>>,
    /// At least one must hold.
    pub any: Option<Vec<MatchConfig>>,
    /// Must not hold.
    pub not: Option<Box<MatchConfig>>,
}

/// A compiled match: regexes built, authorities parsed. The default takes
/// every request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestMatch {
    methods: Option<Vec<String>>,
    authority: Option<AuthorityMatch>,
    path_prefix: Option<PathPrefix>,
    path_regex: Option<PathRegex>,
    all: Vec<RequestMatch>,
    any: Option<Vec<RequestMatch>>,
    not: Option<Box<RequestMatch>>,
}

impl RequestMatch {
    /// Checks `config` and compiles it. Errors name the field, with the
    /// path to it through `all`, `any` and `not` (`all[1].pathRegex: …`).
    pub fn compile(config: &MatchConfig) -> Result<Self, String> {
        compile_at(config, 0)
    }

    /// A match on the path prefix alone.
    pub fn path_prefix(prefix: PathPrefix) -> Self {
        RequestMatch {
            path_prefix: Some(prefix),
            ..RequestMatch::default()
        }
    }

    /// Whether `req` has everything this match asks for, cheapest checks
    /// first.
    pub fn matches(&self, req: &impl RequestFacts) -> bool {
        if let Some(methods) = &self.methods {
            let method = req.method();
            if !methods.iter().any(|m| m == method) {
                return false;
            }
        }
        if let Some(authority) = &self.authority
            && !req.authority().is_some_and(|a| authority.matches(a))
        {
            return false;
        }
        if let Some(prefix) = &self.path_prefix
            && !prefix.matches(req.path())
        {
            return false;
        }
        if let Some(regex) = &self.path_regex
            && !regex.matches(req.path())
        {
            return false;
        }
        self.all.iter().all(|m| m.matches(req))
            && self
                .any
                .as_ref()
                .is_none_or(|any| any.iter().any(|m| m.matches(req)))
            && self.not.as_ref().is_none_or(|not| !not.matches(req))
    }
}

fn compile_at(config: &MatchConfig, depth: usize) -> Result<RequestMatch, String> {
    if depth > MAX_DEPTH {
        return Err(format!(
            "`all`, `any` and `not` nest deeper than {MAX_DEPTH} levels"
        ));
    }
    if let Some(methods) = &config.methods {
        if methods.is_empty() {
            return Err("methods must not be empty (leave it out to match any)".to_string());
        }
        for method in methods {
            check_method(method).map_err(|err| format!("methods: {err}"))?;
        }
    }
    let authority = config
        .authority
        .as_deref()
        .map(AuthorityMatch::parse)
        .transpose()
        .map_err(|err| format!("authority: {err}"))?;
    let path_prefix = config
        .path_prefix
        .as_deref()
        .map(PathPrefix::parse)
        .transpose()
        .map_err(|err| format!("pathPrefix: {err}"))?;
    let path_regex = config
        .path_regex
        .as_deref()
        .map(PathRegex::compile)
        .transpose()
        .map_err(|err| format!("pathRegex: {err}"))?;
    let list = |field: &str, configs: &[MatchConfig]| {
        configs
            .iter()
            .enumerate()
            .map(|(i, config)| {
                compile_at(config, depth + 1).map_err(|err| format!("{field}[{i}].{err}"))
            })
            .collect::<Result<Vec<_>, _>>()
    };
    let all = list("all", config.all.as_deref().unwrap_or_default())?;
    let any = match &config.any {
        Some(any) if any.is_empty() => {
            return Err("any must not be empty (it would match nothing)".to_string());
        }
        Some(any) => Some(list("any", any)?),
        None => None,
    };
    let not = match &config.not {
        Some(not) => Some(Box::new(
            compile_at(not, depth + 1).map_err(|err| format!("not.{err}"))?,
        )),
        None => None,
    };
    Ok(RequestMatch {
        methods: config.methods.clone(),
        authority,
        path_prefix,
        path_regex,
        all,
        any,
        not,
    })
}

/// A method is an RFC 9110 token; methods compare case-sensitively and
/// every method in use is upper case, so `get` is a typo, not a method.
fn check_method(method: &str) -> Result<(), String> {
    let is_token_byte = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if method.is_empty() || !method.bytes().all(is_token_byte) {
        return Err(format!("{method:?} is not a method"));
    }
    if method.bytes().any(|b| b.is_ascii_lowercase()) {
        return Err(format!(
            "{method:?} must be uppercase (methods compare case-sensitively)"
        ));
    }
    Ok(())
}

/// A regex matched against the whole path, query left out, by a PikeVM
/// (linear in the path's length, whatever the pattern).
///
/// Paths are ASCII as sent (anything else is percent-encoded), so the regex
/// is compiled without Unicode, over bytes: `\d`, `\w` and `.` are ASCII
/// classes there as they are in effect for Linkerd, and a component carries
/// no Unicode tables.
struct PathRegex {
    pattern: String,
    vm: pikevm::PikeVM,
    /// The VM's scratch space: an instance serves one request at a time.
    cache: RefCell<pikevm::Cache>,
}

impl PathRegex {
    fn compile(pattern: &str) -> Result<Self, String> {
        let vm = pikevm::PikeVM::builder()
            .syntax(syntax::Config::new().unicode(false).utf8(false))
            .thompson(
                thompson::Config::new()
                    .utf8(false)
                    .nfa_size_limit(Some(REGEX_SIZE_LIMIT)),
            )
            .build(&format!("^(?:{pattern})$"))
            .map_err(|err| format!("`{pattern}` is not a regex this plugin can use: {err}"))?;
        Ok(PathRegex {
            pattern: pattern.to_string(),
            cache: RefCell::new(vm.create_cache()),
            vm,
        })
    }

    fn matches(&self, path: &str) -> bool {
        let path = path.split_once(['?', '#']).map_or(path, |(path, _)| path);
        self.vm
            .is_match(&mut self.cache.borrow_mut(), Input::new(path.as_bytes()))
    }
}

impl Clone for PathRegex {
    fn clone(&self) -> Self {
        PathRegex {
            pattern: self.pattern.clone(),
            cache: RefCell::new(self.vm.create_cache()),
            vm: self.vm.clone(),
        }
    }
}

impl std::fmt::Debug for PathRegex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("PathRegex").field(&self.pattern).finish()
    }
}

impl PartialEq for PathRegex {
    fn eq(&self, other: &Self) -> bool {
        self.pattern == other.pattern
    }
}

impl Eq for PathRegex {}

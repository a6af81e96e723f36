//! Which test route a request path names. Kept apart from answering so the
//! parsing, where the edge cases are, is tested without a server.

use std::time::Duration;

use hyper::StatusCode;

#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    Hello,
    Echo,
    Headers,
    Status(StatusCode),
    Delay(Duration),
    Bytes(u64),
    /// Fails the first `failures` requests naming `key` with 503, then
    /// echoes: an upstream for retry tests.
    Flaky {
        failures: u32,
        key: String,
    },
    BadRequest(&'static str),
    NotFound,
}

impl Route {
    pub fn parse(path: &str) -> Self {
        match path {
            "/" => return Self::Hello,
            "/echo" => return Self::Echo,
            "/headers" => return Self::Headers,
            _ => {}
        }
        if let Some(code) = path.strip_prefix("/status/") {
            return status(code);
        }
        if let Some(ms) = path.strip_prefix("/delay/") {
            return ms.parse().map_or(
                Self::BadRequest("delay must be a number of milliseconds"),
                |ms| Self::Delay(Duration::from_millis(ms)),
            );
        }
        if let Some(n) = path.strip_prefix("/bytes/") {
            return n.parse().map_or(
                Self::BadRequest("length must be a number of bytes"),
                Self::Bytes,
            );
        }
        if let Some(rest) = path.strip_prefix("/flaky/") {
            return match rest.split_once('/') {
                Some((n, key)) if !key.is_empty() => {
                    n.parse()
                        .map_or(Self::BadRequest("failures must be a number"), |failures| {
                            Self::Flaky {
                                failures,
                                key: key.to_string(),
                            }
                        })
                }
                _ => Self::BadRequest("flaky takes /flaky/FAILURES/KEY"),
            };
        }
        Self::NotFound
    }
}

/// Only final statuses: a 1xx cannot end an exchange, and hyper would not
/// send one as a response.
fn status(code: &str) -> Route {
    code.parse::<u16>()
        .ok()
        .filter(|code| (200..=599).contains(code))
        .and_then(|code| StatusCode::from_u16(code).ok())
        .map_or(Route::BadRequest("status must be 200-599"), Route::Status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_routes() {
        assert_eq!(Route::parse("/"), Route::Hello);
        assert_eq!(Route::parse("/echo"), Route::Echo);
        assert_eq!(Route::parse("/headers"), Route::Headers);
    }

    #[test]
    fn status_codes() {
        assert_eq!(
            Route::parse("/status/503"),
            Route::Status(StatusCode::SERVICE_UNAVAILABLE)
        );
        assert_eq!(Route::parse("/status/200"), Route::Status(StatusCode::OK));
        for bad in [
            "/status/",
            "/status/abc",
            "/status/100",
            "/status/600",
            "/status/99999",
        ] {
            assert!(matches!(Route::parse(bad), Route::BadRequest(_)), "{bad}");
        }
    }

    #[test]
    fn delays_and_lengths() {
        assert_eq!(
            Route::parse("/delay/250"),
            Route::Delay(Duration::from_millis(250))
        );
        assert_eq!(Route::parse("/bytes/1073741824"), Route::Bytes(1 << 30));
        assert!(matches!(Route::parse("/delay/-1"), Route::BadRequest(_)));
        assert!(matches!(Route::parse("/bytes/1k"), Route::BadRequest(_)));
    }

    #[test]
    fn flaky_keys() {
        assert_eq!(
            Route::parse("/flaky/2/a-b"),
            Route::Flaky {
                failures: 2,
                key: "a-b".into()
            }
        );
        for bad in ["/flaky/x/k", "/flaky/2/", "/flaky/2"] {
            assert!(matches!(Route::parse(bad), Route::BadRequest(_)), "{bad}");
        }
    }

    #[test]
    fn everything_else_is_not_found() {
        for path in ["/nope", "/echo/", "/headersx", "/status", "/bytes"] {
            assert_eq!(Route::parse(path), Route::NotFound, "{path}");
        }
    }
}

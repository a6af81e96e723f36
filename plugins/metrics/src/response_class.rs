//! Linkerd's response classes: which responses of a route count as
//! failures. The first class whose condition holds decides; with none,
//! 5xx fail and the rest succeed. A request that got no response fails.

/// A condition on a response, as Linkerd's ServiceProfile `ResponseMatch`:
/// every part given must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Condition {
    /// An inclusive range of statuses.
    pub status: Option<(u16, u16)>,
    pub all: Vec<Condition>,
    pub any: Option<Vec<Condition>>,
    pub not: Option<Box<Condition>>,
}

impl Condition {
    pub fn holds(&self, status: u16) -> bool {
        self.status
            .is_none_or(|(min, max)| (min..=max).contains(&status))
            && self.all.iter().all(|c| c.holds(status))
            && self
                .any
                .as_ref()
                .is_none_or(|any| any.iter().any(|c| c.holds(status)))
            && self.not.as_ref().is_none_or(|not| !not.holds(status))
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseClass {
    pub condition: Condition,
    pub is_failure: bool,
}

/// Whether a request that got `status` (`None`: no response) failed, by
/// the first of `classes` whose condition holds, else by 5xx.
pub fn is_failure(classes: &[ResponseClass], status: Option<u16>) -> bool {
    let Some(status) = status else { return true };
    classes
        .iter()
        .find(|class| class.condition.holds(status))
        .map_or(status >= 500, |class| class.is_failure)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(min: u16, max: u16) -> Condition {
        Condition {
            status: Some((min, max)),
            ..Condition::default()
        }
    }

    fn class(condition: Condition, is_failure: bool) -> ResponseClass {
        ResponseClass {
            condition,
            is_failure,
        }
    }

    #[test]
    fn without_classes_5xx_and_no_response_fail() {
        for code in [100, 200, 302, 404, 499] {
            assert!(!is_failure(&[], Some(code)), "{code}");
        }
        for code in [500, 503, 599] {
            assert!(is_failure(&[], Some(code)), "{code}");
        }
        assert!(is_failure(&[], None));
    }

    #[test]
    fn the_first_class_that_holds_decides() {
        let classes = [
            class(status(404, 404), true),
            class(status(500, 504), false),
            class(status(400, 599), true),
        ];
        assert!(is_failure(&classes, Some(404)));
        assert!(!is_failure(&classes, Some(503)));
        assert!(is_failure(&classes, Some(429)));
        assert!(is_failure(&classes, Some(505)));
        assert!(!is_failure(&classes, Some(200)));
        // No response is a failure whatever the classes say.
        let everything_succeeds = [class(Condition::default(), false)];
        assert!(!is_failure(&everything_succeeds, Some(500)));
        assert!(is_failure(&everything_succeeds, None));
    }

    #[test]
    fn conditions_combine() {
        let server_errors_but_503 = Condition {
            all: vec![status(500, 599)],
            not: Some(Box::new(status(503, 503))),
            ..Condition::default()
        };
        assert!(server_errors_but_503.holds(500));
        assert!(!server_errors_but_503.holds(503));
        assert!(!server_errors_but_503.holds(200));
        let either = Condition {
            any: Some(vec![status(404, 404), status(429, 429)]),
            ..Condition::default()
        };
        assert!(either.holds(404) && either.holds(429) && !either.holds(500));
    }
}

//! Which budget a request spends: the one for its authority when the
//! configuration gives one (Linkerd keeps a budget per ServiceProfile),
//! otherwise the plugin's own.

use weft_plugin_sdk::route_match::AuthorityMatch;

use crate::budget::{Budget, SharedCounter};
use crate::config::{AuthorityBudget, BudgetConfig};

pub struct Budgets<C> {
    by_authority: Vec<(AuthorityMatch, Budget<C>)>,
    default: Budget<C>,
}

impl<C: SharedCounter> Budgets<C> {
    /// Each budget over counters of its own: the default's names are those
    /// the plugin has always used, an authority's add the authority, so a
    /// reload that keeps a budget keeps its counts.
    pub fn new(
        default: &BudgetConfig,
        by_authority: &[AuthorityBudget],
        mut counter: impl FnMut(&str) -> C,
    ) -> Self {
        Budgets {
            by_authority: by_authority
                .iter()
                .map(|entry| {
                    let name = format!("budget@{}", entry.name);
                    let budget = Budget::new(&entry.budget, &name, &mut counter);
                    (entry.authority.clone(), budget)
                })
                .collect(),
            default: Budget::new(default, "budget", counter),
        }
    }

    /// Whether any budget depends on the authority: if not, a request's
    /// authority need not be asked for.
    pub fn by_authority(&self) -> bool {
        !self.by_authority.is_empty()
    }

    /// The budget requests to `authority` spend.
    pub fn for_authority(&self, authority: Option<&str>) -> &Budget<C> {
        authority
            .and_then(|authority| {
                self.by_authority
                    .iter()
                    .find(|(matcher, _)| matcher.matches(authority))
            })
            .map_or(&self.default, |(_, budget)| budget)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::collections::BTreeMap;
    use std::rc::Rc;

    /// Counters by name; single-threaded, as one instance sees them.
    #[derive(Clone, Default)]
    struct Named(Rc<RefCell<BTreeMap<String, i64>>>, String);

    impl SharedCounter for Named {
        fn get(&self) -> i64 {
            *self.0.borrow().get(&self.1).unwrap_or(&0)
        }

        fn add_and_get(&self, delta: i64) -> i64 {
            let mut values = self.0.borrow_mut();
            let value = values.entry(self.1.clone()).or_default();
            *value += delta;
            *value
        }

        fn swap(&self, value: i64) -> i64 {
            self.0
                .borrow_mut()
                .insert(self.1.clone(), value)
                .unwrap_or(0)
        }
    }

    const NOW: u64 = 1_000_000_000;

    fn reserve_only(retries_per_second: f64) -> BudgetConfig {
        BudgetConfig {
            retry_ratio: 0.0,
            min_retries_per_second: retries_per_second,
            ttl_seconds: 1,
        }
    }

    fn budgets(store: &Named) -> Budgets<Named> {
        let books = AuthorityBudget {
            name: "books.ns".to_string(),
            authority: AuthorityMatch::parse("books.ns").unwrap(),
            budget: reserve_only(2.0),
        };
        Budgets::new(&reserve_only(5.0), &[books], |name| {
            Named(Rc::clone(&store.0), name.to_string())
        })
    }

    fn spend(budget: &Budget<Named>, tries: usize) -> usize {
        (0..tries).filter(|_| budget.try_withdraw(NOW)).count()
    }

    #[test]
    fn each_authority_spends_its_own_budget() {
        let store = Named::default();
        let budgets = budgets(&store);
        assert!(budgets.by_authority());
        assert_eq!(spend(budgets.for_authority(Some("books.ns:8080")), 10), 2);
        assert_eq!(spend(budgets.for_authority(Some("BOOKS.ns")), 10), 0);
        // Everything else shares the default, untouched by books' retries.
        assert_eq!(spend(budgets.for_authority(Some("authors.ns:8080")), 3), 3);
        assert_eq!(spend(budgets.for_authority(None), 10), 2);
        let names: Vec<String> = store.0.borrow().keys().cloned().collect();
        assert!(names.contains(&"budget@books.ns.1s.0.retries".to_string()));
        assert!(names.contains(&"budget.1s.0.retries".to_string()));
    }

    #[test]
    fn instances_share_an_authority_budget() {
        let store = Named::default();
        let (a, b) = (budgets(&store), budgets(&store));
        assert_eq!(spend(a.for_authority(Some("books.ns")), 1), 1);
        assert_eq!(spend(b.for_authority(Some("books.ns")), 5), 1);
    }
}

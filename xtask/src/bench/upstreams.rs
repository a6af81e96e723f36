//! The upstream instances a target proxies to, all `weft-demo http` on the
//! load's CPU: one, or three for a balanced target, each naming itself in
//! `x-demo-name` so the fixed-rate load can count who answered. In the
//! slow round the last of the three answers 50 ms late: a replica a
//! latency-aware balancer should pass by.

use super::Target;

/// How late the slow instance answers.
pub const SLOW_DELAY_MS: u64 = 50;
/// The slow instance's `x-demo-name`.
pub const SLOW_NAME: &str = "slow";
/// How many instances a balanced target spreads the load over.
pub const BALANCED_INSTANCES: usize = 3;

/// One `weft-demo http` to start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Instance {
    pub name: &'static str,
    pub delay_ms: u64,
}

/// What `target` proxies to; with `slow`, a balanced target's last
/// instance is the slow one.
pub fn instances(target: Target, slow: bool) -> Vec<Instance> {
    let at_once = |name| Instance { name, delay_ms: 0 };
    if !target.balanced() {
        return vec![at_once("app")];
    }
    let mut instances = vec![at_once("a"), at_once("b"), at_once("c")];
    if slow {
        instances[BALANCED_INSTANCES - 1] = Instance {
            name: SLOW_NAME,
            delay_ms: SLOW_DELAY_MS,
        };
    }
    instances
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn balances_three_and_slows_the_last() {
        let names = |target, slow| -> Vec<&str> {
            instances(target, slow).iter().map(|i| i.name).collect()
        };
        assert_eq!(names(Target::Haproxy, true), ["app"]);
        assert_eq!(names(Target::WeftBalanced, false), ["a", "b", "c"]);
        let slowed = instances(Target::EnvoyBalanced, true);
        assert_eq!(slowed.len(), BALANCED_INSTANCES);
        assert_eq!(slowed[0].delay_ms, 0);
        assert_eq!(slowed[2].name, SLOW_NAME);
        assert_eq!(slowed[2].delay_ms, SLOW_DELAY_MS);
    }
}

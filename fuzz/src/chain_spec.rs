//! The proxy's plugin chain file (`WEFT_PROXY_PLUGINS_CONFIG`, JSON): it
//! reads or refuses without panicking, and a chain that reads survives a
//! write and a read back with the same plugins in the same order.

use weft_plugins::ChainSpec;

pub fn chain_spec(data: &[u8]) {
    let Ok(spec) = serde_json::from_slice::<ChainSpec>(data) else {
        return;
    };
    for plugin in &spec.plugins {
        // What the runtime derives from each entry must not panic either.
        let _ = plugin.timeout();
        let _ = plugin.config_text();
    }
    let written = serde_json::to_vec(&spec).expect("a chain that read writes");
    let again: ChainSpec = serde_json::from_slice(&written).expect("a written chain reads");
    let names =
        |spec: &ChainSpec| -> Vec<String> { spec.plugins.iter().map(|p| p.name.clone()).collect() };
    assert_eq!(names(&spec), names(&again));
    for (before, after) in spec.plugins.iter().zip(&again.plugins) {
        assert_eq!(before.module, after.module);
        assert_eq!(before.failure_policy, after.failure_policy);
        assert_eq!(before.timeout_ms, after.timeout_ms);
        assert_eq!(before.directions, after.directions);
    }
}

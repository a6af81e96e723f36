//! The JSON patch (RFC 6902) that turns an object into its injected self,
//! for the webhook. Injection only adds — keys, and elements before or after
//! an array's own — so the patch is mostly `add`s: the proxy goes in at
//! `/spec/containers/0` instead of every container being replaced, which
//! keeps the patch short and leaves other webhooks' changes alone.

use serde_json::{Value, json};

/// The operations that turn `before` into `after`.
pub fn diff(before: &Value, after: &Value) -> Vec<Value> {
    let mut ops = Vec::new();
    diff_at(&mut String::new(), before, after, &mut ops);
    ops
}

fn diff_at(path: &mut String, before: &Value, after: &Value, ops: &mut Vec<Value>) {
    if before == after {
        return;
    }
    match (before, after) {
        (Value::Object(old), Value::Object(new)) => {
            for key in old.keys().filter(|key| !new.contains_key(*key)) {
                ops.push(json!({"op": "remove", "path": child(path, key)}));
            }
            for (key, value) in new {
                let len = path.len();
                path.push_str(&child("", key));
                match old.get(key) {
                    Some(old) => diff_at(path, old, value, ops),
                    None => ops.push(json!({"op": "add", "path": path.clone(), "value": value})),
                }
                path.truncate(len);
            }
        }
        (Value::Array(old), Value::Array(new)) if new.len() > old.len() => {
            let added = new.len() - old.len();
            // Where the old elements sit, unchanged, inside the new array.
            match (0..=added).find(|&at| new[at..at + old.len()] == old[..]) {
                Some(at) => {
                    for (index, value) in new[..at].iter().enumerate() {
                        let path = format!("{path}/{index}");
                        ops.push(json!({"op": "add", "path": path, "value": value}));
                    }
                    for value in &new[at + old.len()..] {
                        let path = format!("{path}/-");
                        ops.push(json!({"op": "add", "path": path, "value": value}));
                    }
                }
                None => ops.push(json!({"op": "replace", "path": path.clone(), "value": after})),
            }
        }
        _ => ops.push(json!({"op": "replace", "path": path.clone(), "value": after})),
    }
}

/// `path` extended by `key`, escaped as RFC 6901 says (`~` → `~0`, `/` → `~1`).
fn child(path: &str, key: &str) -> String {
    format!("{path}/{}", key.replace('~', "~0").replace('/', "~1"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prepending_and_appending_are_adds() {
        let before = json!({"spec": {"containers": [{"name": "app"}], "volumes": [{"name": "v"}]}});
        let after = json!({"spec": {
            "containers": [{"name": "weft-proxy"}, {"name": "app"}],
            "volumes": [{"name": "v"}, {"name": "w"}],
            "initContainers": [{"name": "weft-init"}],
        }});
        assert_eq!(
            diff(&before, &after),
            [
                json!({"op": "add", "path": "/spec/containers/0", "value": {"name": "weft-proxy"}}),
                json!({"op": "add", "path": "/spec/initContainers", "value": [{"name": "weft-init"}]}),
                json!({"op": "add", "path": "/spec/volumes/-", "value": {"name": "w"}}),
            ]
        );
    }

    #[test]
    fn keys_are_escaped() {
        let before = json!({"metadata": {"labels": {"app": "web"}}});
        let after = json!({"metadata": {"labels": {"app": "web", "weft.io/a~b": "x"}}});
        assert_eq!(
            diff(&before, &after),
            [json!({"op": "add", "path": "/metadata/labels/weft.io~1a~0b", "value": "x"})]
        );
    }

    #[test]
    fn anything_else_is_replaced_or_removed() {
        let before = json!({"a": [1, 2], "b": 1, "c": true});
        let after = json!({"a": [2, 1, 3], "b": 2});
        assert_eq!(
            diff(&before, &after),
            [
                json!({"op": "remove", "path": "/c"}),
                json!({"op": "replace", "path": "/a", "value": [2, 1, 3]}),
                json!({"op": "replace", "path": "/b", "value": 2}),
            ]
        );
        assert!(diff(&before, &before).is_empty());
    }
}

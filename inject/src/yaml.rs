//! Writes JSON values as block YAML, as `kubectl get -o yaml` prints them.
//!
//! Ours rather than a YAML library's writer because of quoting: a string
//! is written plain only when every YAML reader takes it back as that
//! string. YAML 1.1 readers, kubectl's among them, read a plain `yes`,
//! `on` or `off` as a boolean and Python's a plain date as a timestamp;
//! a 1.2 writer leaves those unquoted, and the manifest changes meaning on
//! its way to the cluster. Anything not plainly safe is written as a JSON
//! string, which is valid YAML.

use serde_json::Value;

/// One YAML document (no `---`), ending with a newline.
pub fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(map) if !map.is_empty() => mapping(value, 0, &mut out),
        Value::Array(items) if !items.is_empty() => sequence(items, 0, &mut out),
        scalar => {
            out.push_str(&inline(scalar, 0));
            out.push('\n');
        }
    }
    out
}

fn mapping(value: &Value, indent: usize, out: &mut String) {
    let Value::Object(map) = value else {
        unreachable!("mapping() takes objects")
    };
    for (key, value) in map {
        out.push_str(&" ".repeat(indent));
        // Never a literal block: keys stay on one line.
        match is_plain_safe(key) {
            true => out.push_str(key),
            false => out.push_str(&serde_json::to_string(key).expect("a string serializes")),
        }
        out.push(':');
        block_value(value, indent, indent + 2, out);
    }
}

/// Items sit at their key's indentation, as kubectl writes them.
fn sequence(items: &[Value], indent: usize, out: &mut String) {
    for item in items {
        // The item is written two columns in; its first line's indentation
        // then becomes the `- `.
        let mut nested = String::new();
        match item {
            Value::Object(map) if !map.is_empty() => mapping(item, indent + 2, &mut nested),
            Value::Array(inner) if !inner.is_empty() => sequence(inner, indent + 2, &mut nested),
            scalar => {
                nested.push_str(&" ".repeat(indent + 2));
                nested.push_str(&inline(scalar, indent + 2));
                nested.push('\n');
            }
        }
        out.push_str(&" ".repeat(indent));
        out.push_str("- ");
        out.push_str(&nested[indent + 2..]);
    }
}

/// What follows `key:`: a nested block on the next lines, or a scalar.
fn block_value(value: &Value, key_indent: usize, child_indent: usize, out: &mut String) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            out.push('\n');
            mapping(value, child_indent, out);
        }
        Value::Array(items) if !items.is_empty() => {
            out.push('\n');
            sequence(items, key_indent, out);
        }
        scalar => {
            out.push(' ');
            out.push_str(&inline(scalar, child_indent));
            out.push('\n');
        }
    }
}

/// A scalar, an empty mapping or an empty sequence; multi-line strings as
/// literal blocks indented to `indent`.
fn inline(value: &Value, indent: usize) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => string(s, indent),
        Value::Array(_) => "[]".into(),
        Value::Object(_) => "{}".into(),
    }
}

fn string(s: &str, indent: usize) -> String {
    if is_plain_safe(s) {
        return s.to_string();
    }
    if let Some(block) = literal_block(s, indent) {
        return block;
    }
    serde_json::to_string(s).expect("a string serializes")
}

/// Plain only from a small alphabet, starting with a letter or `/` (so
/// never a number, date or time), and no YAML 1.1 boolean or null.
fn is_plain_safe(s: &str) -> bool {
    const RESERVED: [&str; 9] = ["y", "n", "yes", "no", "on", "off", "true", "false", "null"];
    let Some(first) = s.chars().next() else {
        return false;
    };
    (first.is_ascii_alphabetic() || first == '/')
        && !s.ends_with([' ', ':'])
        && !s.contains(": ")
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._/-:@+=, ".contains(c))
        && !RESERVED.contains(&s.to_ascii_lowercase().as_str())
}

/// `|` (one final newline) or `|-` (none), for text that a literal block
/// keeps exactly: printable, no line starting with a space (the block's
/// indentation would be misread), no trailing spaces.
fn literal_block(s: &str, indent: usize) -> Option<String> {
    let (body, chomp) = match s.strip_suffix('\n') {
        Some(body) if !body.ends_with('\n') => (body, "|"),
        Some(_) => return None,
        None => (s, "|-"),
    };
    let lines: Vec<&str> = body.split('\n').collect();
    let printable = |line: &&str| {
        !line.starts_with(' ')
            && !line.ends_with([' ', '\t'])
            && line.chars().all(|c| c == '\t' || !c.is_control())
    };
    if !s.contains('\n') || lines.is_empty() || !lines.iter().all(printable) || body.is_empty() {
        return None;
    }
    let mut block = chomp.to_string();
    for line in lines {
        block.push('\n');
        if !line.is_empty() {
            block.push_str(&" ".repeat(indent));
            block.push_str(line);
        }
    }
    Some(block)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn block_style_as_kubectl_writes_it() {
        let value = json!({
            "kind": "Pod",
            "metadata": {"labels": {"app": "web"}, "annotations": {}},
            "spec": {"containers": [
                {"name": "web", "args": ["-v", "--port=80"], "ports": [{"containerPort": 80}]},
            ], "volumes": []},
        });
        assert_eq!(
            to_yaml(&value),
            "kind: Pod\n\
             metadata:\n  annotations: {}\n  labels:\n    app: web\n\
             spec:\n  containers:\n  - args:\n    - \"-v\"\n    - \"--port=80\"\n    name: web\n    \
             ports:\n    - containerPort: 80\n  volumes: []\n"
        );
    }

    #[test]
    fn strings_a_yaml_reader_would_retype_are_quoted() {
        for (s, written) in [
            ("yes", "\"yes\""),
            ("Off", "\"Off\""),
            ("8080", "\"8080\""),
            ("1:20", "\"1:20\""),
            ("2026-12-02T10:15:03Z", "\"2026-12-02T10:15:03Z\""),
            ("", "\"\""),
            ("a: b", "\"a: b\""),
            ("*", "\"*\""),
            ("100m", "\"100m\""),
            ("nginx:1.27", "nginx:1.27"),
            ("weft.io/proxy-version", "weft.io/proxy-version"),
            ("sh -c", "sh -c"),
        ] {
            assert_eq!(to_yaml(&json!(s)), format!("{written}\n"), "{s}");
        }
    }

    #[test]
    fn multi_line_text_is_a_literal_block_when_it_can_be() {
        let value = json!({"a": "line one\nline two\n", "b": "x\n\ny", "c": " lead\n"});
        assert_eq!(
            to_yaml(&value),
            "a: |\n  line one\n  line two\nb: |-\n  x\n\n  y\nc: \" lead\\n\"\n"
        );
    }

    #[test]
    fn what_is_written_reads_back_the_same() {
        let value = json!({"list": [[1, "two"], {"k": [true, null, 1.5]}, "on", "multi\nline"],
                           "nested": {"deep": {"deeper": "x"}}});
        let back: Value = serde_norway::from_str(&to_yaml(&value)).unwrap();
        assert_eq!(back, value);
    }
}

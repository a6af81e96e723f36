//! The script format, shared with the fuzz target that writes scripts (it
//! includes this file): one action per line, fields separated by tabs, and
//! `\n`, `\r`, `\t`, `\0` and `\\` escaped within fields so that any text
//! can be a name, value or body.
//!
//! ```text
//! req-set ⇥ name ⇥ value         set a request header (on-request)
//! req-remove ⇥ name
//! rsp-set ⇥ name ⇥ value         set a response header (on-response)
//! rsp-remove ⇥ name
//! backend ⇥ host:port            set-backend, any text
//! timeout ⇥ ms                   set-timeout-ms
//! respond ⇥ status ⇥ body        answer locally
//! respond-header ⇥ name ⇥ value  a header of that answer
//! retry                          ask for a retry in on-response
//! ```
//!
//! (`⇥` is a tab.)

/// One action of a script.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    ReqSet(String, String),
    ReqRemove(String),
    RspSet(String, String),
    RspRemove(String),
    Backend(String),
    Timeout(u32),
    Respond(u16, String),
    RespondHeader(String, String),
    Retry,
}

/// Reads a script; the error names the line and says what is wrong.
pub fn parse(text: &str) -> Result<Vec<Action>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.is_empty())
        .map(|(i, line)| parse_line(line).map_err(|e| format!("line {}: {e}", i + 1)))
        .collect()
}

/// Reads one line of a script.
pub fn parse_line(line: &str) -> Result<Action, String> {
    let fields: Vec<String> = line.split('\t').map(unescape).collect();
    let arity = |n: usize| {
        if fields.len() == n + 1 {
            Ok(())
        } else {
            Err(format!("`{}` takes {n} fields", fields[0]))
        }
    };
    let action = match fields[0].as_str() {
        "req-set" => arity(2).map(|()| Action::ReqSet(fields[1].clone(), fields[2].clone())),
        "req-remove" => arity(1).map(|()| Action::ReqRemove(fields[1].clone())),
        "rsp-set" => arity(2).map(|()| Action::RspSet(fields[1].clone(), fields[2].clone())),
        "rsp-remove" => arity(1).map(|()| Action::RspRemove(fields[1].clone())),
        "backend" => arity(1).map(|()| Action::Backend(fields[1].clone())),
        "timeout" => arity(1).and_then(|()| Ok(Action::Timeout(number(&fields[1])?))),
        "respond" => {
            arity(2).and_then(|()| Ok(Action::Respond(number(&fields[1])?, fields[2].clone())))
        }
        "respond-header" => {
            arity(2).map(|()| Action::RespondHeader(fields[1].clone(), fields[2].clone()))
        }
        "retry" => arity(0).map(|()| Action::Retry),
        other => Err(format!("unknown action `{other}`")),
    }?;
    Ok(action)
}

/// Writes a script that [`parse`] reads back as `actions`.
pub fn write(actions: &[Action]) -> String {
    let mut text = String::new();
    for action in actions {
        let fields: Vec<String> = match action {
            Action::ReqSet(n, v) => vec!["req-set".into(), escape(n), escape(v)],
            Action::ReqRemove(n) => vec!["req-remove".into(), escape(n)],
            Action::RspSet(n, v) => vec!["rsp-set".into(), escape(n), escape(v)],
            Action::RspRemove(n) => vec!["rsp-remove".into(), escape(n)],
            Action::Backend(b) => vec!["backend".into(), escape(b)],
            Action::Timeout(ms) => vec!["timeout".into(), ms.to_string()],
            Action::Respond(status, body) => {
                vec!["respond".into(), status.to_string(), escape(body)]
            }
            Action::RespondHeader(n, v) => vec!["respond-header".into(), escape(n), escape(v)],
            Action::Retry => vec!["retry".into()],
        };
        text.push_str(&fields.join("\t"));
        text.push('\n');
    }
    text
}

fn number<T: std::str::FromStr>(text: &str) -> Result<T, String> {
    text.parse()
        .map_err(|_| format!("`{text}` is not a number in range"))
}

fn escape(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    for c in field.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\0' => out.push_str("\\0"),
            c => out.push(c),
        }
    }
    out
}

fn unescape(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut chars = field.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some('0') => out.push('\0'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// Hex, as the script travels in a header value.
pub fn to_hex(text: &str) -> String {
    text.bytes().map(|b| format!("{b:02x}")).collect()
}

/// The text `to_hex` wrote, if `hex` is that.
pub fn from_hex(hex: &str) -> Option<String> {
    let bytes = hex.as_bytes();
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    let digits = bytes
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    String::from_utf8(digits).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_script_writes_and_reads_back() {
        let actions = vec![
            Action::ReqSet("x a\tb".into(), "line\r\nnext\\".into()),
            Action::ReqRemove("x".into()),
            Action::RspSet("y".into(), "\0".into()),
            Action::RspRemove("".into()),
            Action::Backend("127.0.0.1:1".into()),
            Action::Timeout(0),
            Action::Respond(999, "body\n".into()),
            Action::RespondHeader("content-length".into(), "5".into()),
            Action::Retry,
        ];
        let text = write(&actions);
        assert_eq!(parse(&text).unwrap(), actions);
        assert_eq!(from_hex(&to_hex(&text)).unwrap(), text);
    }

    #[test]
    fn a_bad_line_is_named() {
        assert_eq!(
            parse("retry\nfrobnicate\tx").unwrap_err(),
            "line 2: unknown action `frobnicate`"
        );
        assert_eq!(
            parse("timeout\t-1").unwrap_err(),
            "line 1: `-1` is not a number in range"
        );
        assert_eq!(
            parse("req-set\tx").unwrap_err(),
            "line 1: `req-set` takes 2 fields"
        );
    }
}

//! The two number formats these resources write as text: durations (Go's
//! `time.Duration` in ServiceProfiles, GEP-2257's in Gateway API routes:
//! `300ms`, `10s`, `1m30s`, `1.5s`) and SMI weights (a number, or a
//! Kubernetes quantity such as `900m`).

/// Milliseconds, rounded up so a short timeout never becomes none.
pub fn parse_millis(text: &str) -> Result<u64, String> {
    let refuse = || format!("{text:?} is not a duration (such as 300ms, 10s, 1m30s)");
    if text == "0" {
        return Ok(0);
    }
    let mut rest = text;
    let mut nanos: f64 = 0.0;
    if rest.is_empty() {
        return Err(refuse());
    }
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(refuse)?;
        let (number, tail) = rest.split_at(number_end);
        let number: f64 = number.parse().map_err(|_| refuse())?;
        let unit_end = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_end);
        let scale = match unit {
            "h" => 3_600e9,
            "m" => 60e9,
            "s" => 1e9,
            "ms" => 1e6,
            "us" | "µs" => 1e3,
            "ns" => 1.0,
            _ => return Err(refuse()),
        };
        nanos += number * scale;
        rest = tail;
    }
    Ok((nanos / 1e6).ceil() as u64)
}

/// A weight in thousandths: `900m` is 900, `1` is 1000, `0.5` is 500.
pub fn parse_weight(value: &serde_json::Value) -> Result<u64, String> {
    let refuse = || format!("weight {value} is not a number or a quantity such as 900m");
    let (number, scale) = match value {
        serde_json::Value::Number(number) => (number.as_f64().ok_or_else(refuse)?, 1000.0),
        serde_json::Value::String(text) => match text.strip_suffix('m') {
            Some(milli) => (milli.parse::<f64>().map_err(|_| refuse())?, 1.0),
            None => (text.parse::<f64>().map_err(|_| refuse())?, 1000.0),
        },
        _ => return Err(refuse()),
    };
    let milli = number * scale;
    if !milli.is_finite() || milli < 0.0 || milli > f64::from(u32::MAX) {
        return Err(refuse());
    }
    Ok(milli.round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn durations_in_go_and_gateway_api_forms() {
        for (text, ms) in [
            ("300ms", 300),
            ("10s", 10_000),
            ("1m30s", 90_000),
            ("1.5s", 1_500),
            ("1h", 3_600_000),
            ("100us", 1),
            ("0", 0),
        ] {
            assert_eq!(parse_millis(text), Ok(ms), "{text}");
        }
        for bad in ["", "10", "s", "10x", "-1s", "1..2s"] {
            assert!(parse_millis(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn weights_as_numbers_and_quantities() {
        assert_eq!(parse_weight(&json!("900m")), Ok(900));
        assert_eq!(parse_weight(&json!("100m")), Ok(100));
        assert_eq!(parse_weight(&json!(9)), Ok(9000));
        assert_eq!(parse_weight(&json!("1")), Ok(1000));
        assert_eq!(parse_weight(&json!(0)), Ok(0));
        for bad in [json!("9Gi"), json!(-1), json!(true), json!("m")] {
            assert!(parse_weight(&bad).is_err(), "{bad}");
        }
    }
}

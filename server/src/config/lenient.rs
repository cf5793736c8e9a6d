//! Deserializers for list and fractional keys that also accept the text form environment
//! variables and `--set` produce (`a,b c`, `"0.5"`).

use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// Accepts a list of strings, or one string of items separated by commas or spaces (env, CLI).
pub(super) fn string_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let text = |v: Value| match v {
        Value::String(s) => Ok(s),
        other => Err(serde::de::Error::custom(format!("expected a string, found {other}"))),
    };
    match Value::deserialize(d)? {
        Value::Array(items) => items.into_iter().map(text).collect(),
        Value::String(s) => Ok(s
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|i| !i.is_empty())
            .map(String::from)
            .collect()),
        Value::Null => Ok(Vec::new()),
        other => Err(serde::de::Error::custom(format!("expected a list of strings, found {other}"))),
    }
}

/// Accepts a number, or a string holding one (env, CLI).
pub(super) fn lenient_f64<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    match Value::deserialize(d)? {
        Value::Number(n) => {
            n.as_f64().ok_or_else(|| serde::de::Error::custom(format!("{n} is not a number")))
        }
        Value::String(s) => {
            s.trim().parse().map_err(|_| serde::de::Error::custom(format!("{s:?} is not a number")))
        }
        other => Err(serde::de::Error::custom(format!("expected a number, found {other}"))),
    }
}

// SPDX-License-Identifier: GPL-2.0
//! Just enough JSON for `--json`: objects of numbers, strings, booleans, null and nested objects.

use std::fmt::Write;

/// A JSON value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A non-negative integer.
    Num(u64),
    /// A string.
    Str(String),
    /// `true`/`false`.
    Bool(bool),
    /// `null`.
    Null,
    /// An object.
    Obj(Obj),
    /// An array.
    Arr(Vec<Value>),
    /// A ratio, printed with 3 decimals (`null` if not finite).
    Ratio(f64),
}

/// A JSON object with keys in insertion order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Obj(Vec<(String, Value)>);

impl Obj {
    /// An empty object.
    pub fn new() -> Obj {
        Obj::default()
    }

    /// Adds `key: value`.
    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Sets `key` (replacing an earlier value).
    pub fn set(mut self, key: &str, value: impl Into<Value>) -> Obj {
        self.0.retain(|(k, _)| k != key);
        self.0.push((key.to_string(), value.into()));
        self
    }

    /// The object as compact JSON text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        write_obj(&mut out, self);
        out
    }
}

impl From<u64> for Value {
    fn from(n: u64) -> Value {
        Value::Num(n)
    }
}
impl From<u32> for Value {
    fn from(n: u32) -> Value {
        Value::Num(n.into())
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}
impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::Str(s.to_string())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::Str(s)
    }
}
impl From<Obj> for Value {
    fn from(o: Obj) -> Value {
        Value::Obj(o)
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(o: Option<T>) -> Value {
        o.map_or(Value::Null, Into::into)
    }
}
impl From<Vec<Value>> for Value {
    fn from(v: Vec<Value>) -> Value {
        Value::Arr(v)
    }
}

fn write_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn write_value(out: &mut String, v: &Value) {
    match v {
        Value::Num(n) => {
            let _ = write!(out, "{n}");
        }
        Value::Str(s) => write_str(out, s),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Null => out.push_str("null"),
        Value::Ratio(r) if r.is_finite() => {
            let _ = write!(out, "{r:.3}");
        }
        Value::Ratio(_) => out.push_str("null"),
        Value::Obj(o) => write_obj(out, o),
        Value::Arr(a) => {
            out.push('[');
            for (i, v) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, v);
            }
            out.push(']');
        }
    }
}

fn write_obj(out: &mut String, o: &Obj) {
    out.push('{');
    for (i, (k, v)) in o.0.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_str(out, k);
        out.push(':');
        write_value(out, v);
    }
    out.push('}');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_nested() {
        let o = Obj::new()
            .set("a", 1u64)
            .set("b", "x\"y\n")
            .set("c", Option::<u64>::None)
            .set("d", Obj::new().set("e", true))
            .set("f", vec![Value::Num(1), Value::Bool(false)]);
        assert_eq!(
            o.render(),
            r#"{"a":1,"b":"x\"y\n","c":null,"d":{"e":true},"f":[1,false]}"#
        );
    }

    #[test]
    fn ratios() {
        let o = Obj::new()
            .set("a", Value::Ratio(1.23456))
            .set("b", Value::Ratio(f64::NAN));
        assert_eq!(o.render(), r#"{"a":1.235,"b":null}"#);
    }

    #[test]
    fn escapes_control_chars() {
        assert_eq!(Obj::new().set("k", "\u{1}").render(), r#"{"k":"\u0001"}"#);
    }
}

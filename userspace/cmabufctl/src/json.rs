// SPDX-License-Identifier: GPL-2.0
//! `--json` output: objects built key by key in the order they are set (serde_json's
//! `preserve_order`), rendered compact, and ratios to three decimals.

pub use serde_json::Value;

/// A JSON object with keys in insertion order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Obj(serde_json::Map<String, Value>);

impl Obj {
    /// An empty object.
    pub fn new() -> Obj {
        Obj::default()
    }

    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key)
    }

    /// Sets `key` (replacing an earlier value, in its place).
    pub fn set(mut self, key: &str, value: impl Into<Value>) -> Obj {
        self.0.insert(key.to_string(), value.into());
        self
    }

    /// The object as compact JSON text.
    pub fn render(&self) -> String {
        Value::Object(self.0.clone()).to_string()
    }
}

impl From<Obj> for Value {
    fn from(o: Obj) -> Value {
        Value::Object(o.0)
    }
}

impl From<serde_json::Map<String, Value>> for Obj {
    fn from(m: serde_json::Map<String, Value>) -> Obj {
        Obj(m)
    }
}

/// A ratio rounded to three decimals (`null` if not finite).
pub fn ratio(r: f64) -> Value {
    serde_json::Number::from_f64((r * 1000.0).round() / 1000.0).map_or(Value::Null, Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_nested_in_order() {
        let o = Obj::new()
            .set("z", 1u64)
            .set("b", "x\"y\n")
            .set("c", Option::<u64>::None)
            .set("d", Obj::new().set("e", true))
            .set("f", vec![Value::from(1u64), Value::from(false)]);
        assert_eq!(
            o.render(),
            r#"{"z":1,"b":"x\"y\n","c":null,"d":{"e":true},"f":[1,false]}"#
        );
    }

    #[test]
    fn ratios() {
        let o = Obj::new()
            .set("a", ratio(1.23456))
            .set("b", ratio(f64::NAN))
            .set("c", ratio(0.1));
        assert_eq!(o.render(), r#"{"a":1.235,"b":null,"c":0.1}"#);
    }

    #[test]
    fn escapes_control_chars() {
        assert_eq!(Obj::new().set("k", "\u{1}").render(), r#"{"k":"\u0001"}"#);
    }
}

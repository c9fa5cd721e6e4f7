//! Request parameters as serde-derived structs, read through one
//! [`parse`] that answers bad input the way the reference gateway does:
//! `INVALID_REQUEST "invalid <method> params: at /path: <reason>"`, the
//! JSON pointer naming the field at fault.
//!
//! Params arrive as a slice of the frame's text (see `frame`); a method
//! parses them only when it runs, and only up to its [`Params::MAX_BYTES`]
//! (64 KiB unless it says otherwise), so what a JSON tree of them costs is
//! bounded whatever the frame's size. serde's own errors do not say where
//! they happened, so the tree is read by [`Node`], a deserializer over a
//! `serde_json::Value` that puts the path in front of an error as it
//! passes back out of each object or array. A struct's rules that serde
//! cannot express (ranges, allowed values, non-empty strings) go in its
//! [`Params::check`], which reports a path the same way.

use std::fmt;

use serde::de::value::StrDeserializer;
use serde::de::{
    self, DeserializeOwned, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Visitor,
};
use serde::forward_to_deserialize_any;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::ErrorShape;

/// The most values a params tree may hold: a tree costs tens of bytes
/// per value, so this bounds what parsing any params can cost.
pub const MAX_PARAM_NODES: usize = 4096;

/// A request's parameters: a serde-derived struct plus the checks serde
/// cannot express.
pub trait Params: DeserializeOwned {
    /// The largest params text read: what parsing can cost is a small
    /// multiple of it.
    const MAX_BYTES: usize = 64 * 1024;

    fn check(&self) -> Result<(), Invalid> {
        Ok(())
    }
}

/// Why params were refused, and where: `path` is a JSON pointer (`""` for
/// the params themselves).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    path: String,
    message: String,
}

impl Invalid {
    /// A reason about the field at `path` (`"/client/id"`).
    pub fn at(path: &str, message: impl Into<String>) -> Invalid {
        Invalid {
            path: path.to_string(),
            message: message.into(),
        }
    }

    /// The reference's wording: `at /a/b: reason`, or the bare reason for
    /// the params as a whole.
    pub fn describe(&self) -> String {
        if self.path.is_empty() {
            self.message.clone()
        } else {
            format!("at {}: {}", self.path, self.message)
        }
    }

    fn within(mut self, segment: &str) -> Invalid {
        let mut path = String::with_capacity(segment.len() + 1 + self.path.len());
        path.push('/');
        for c in segment.chars() {
            // RFC 6901: `~` and `/` inside a key are escaped.
            match c {
                '~' => path.push_str("~0"),
                '/' => path.push_str("~1"),
                c => path.push(c),
            }
        }
        path.push_str(&self.path);
        self.path = path;
        self
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

impl std::error::Error for Invalid {}

impl de::Error for Invalid {
    fn custom<T: fmt::Display>(msg: T) -> Invalid {
        Invalid::at("", msg.to_string())
    }

    fn missing_field(field: &'static str) -> Invalid {
        Invalid::at("", format!("must have required property '{field}'"))
    }

    fn unknown_variant(_variant: &str, _expected: &'static [&'static str]) -> Invalid {
        Invalid::at("", "must be equal to one of the allowed values")
    }

    fn invalid_type(unexp: de::Unexpected, exp: &dyn de::Expected) -> Invalid {
        Invalid::at(
            "",
            format!("invalid type: {}, expected {exp}", describe(unexp)),
        )
    }

    fn invalid_value(unexp: de::Unexpected, exp: &dyn de::Expected) -> Invalid {
        Invalid::at(
            "",
            format!("invalid value: {}, expected {exp}", describe(unexp)),
        )
    }
}

/// serde's own wording for what was found, except that a fraction is not
/// printed: `Unexpected`'s `Display` would link float formatting (about
/// 13 KiB) for a message no client needs to the digit.
fn describe(u: de::Unexpected) -> String {
    use de::Unexpected as U;
    match u {
        U::Bool(b) => format!("boolean `{b}`"),
        U::Unsigned(n) => format!("integer `{n}`"),
        U::Signed(n) => format!("integer `{n}`"),
        U::Float(_) => "floating point number".into(),
        U::Char(c) => format!("character `{c}`"),
        U::Str(s) => format!("string {s:?}"),
        U::Bytes(_) => "byte array".into(),
        U::Unit => "null".into(),
        U::Option => "Option value".into(),
        U::NewtypeStruct => "newtype struct".into(),
        U::Seq => "sequence".into(),
        U::Map => "map".into(),
        U::Enum => "enum".into(),
        U::UnitVariant => "unit variant".into(),
        U::NewtypeVariant => "newtype variant".into(),
        U::TupleVariant => "tuple variant".into(),
        U::StructVariant => "struct variant".into(),
        U::Other(other) => other.into(),
    }
}

/// Reads `params` (absent and `null` count as `{}`) as `T` and checks it.
/// The error is the `INVALID_REQUEST` to answer with.
pub fn parse<T: Params>(method: &str, params: Option<&RawValue>) -> Result<T, ErrorShape> {
    let value = value(method, params, T::MAX_BYTES)?;
    from_value(method, &value)
}

/// The params as a JSON tree, at most `max_bytes` of text: for a method
/// that reads fields beyond its struct's.
pub fn value(
    method: &str,
    params: Option<&RawValue>,
    max_bytes: usize,
) -> Result<Value, ErrorShape> {
    let invalid = |why: String| ErrorShape::invalid(format!("invalid {method} params: {why}"));
    let Some(raw) = params else {
        return Ok(Value::Object(Map::new()));
    };
    let text = raw.get();
    if text.len() > max_bytes {
        return Err(invalid(format!("larger than {max_bytes} bytes")));
    }
    // A value tree costs tens of bytes per value whatever its text: a
    // count first keeps the tree of any params small.
    if values_in(text) > MAX_PARAM_NODES {
        return Err(invalid(format!("more than {MAX_PARAM_NODES} values")));
    }
    match serde_json::from_str(text).map_err(|e| invalid(e.to_string()))? {
        Value::Null => Ok(Value::Object(Map::new())),
        v => Ok(v),
    }
}

/// How many values `text` holds at most: one more than its separators
/// and openings outside strings.
fn values_in(text: &str) -> usize {
    1 + super::frame::outside_strings(text)
        .filter(|b| matches!(b, b',' | b'[' | b'{' | b':'))
        .count()
}

/// `T` from params already read as a tree, checked.
pub fn from_value<T: Params>(method: &str, value: &Value) -> Result<T, ErrorShape> {
    T::deserialize(Node(value))
        .and_then(|t| t.check().map(|()| t))
        .map_err(|e| ErrorShape::invalid(format!("invalid {method} params: {}", e.describe())))
}

/// Checks that a required string is not blank: the reference's
/// `NonEmptyString`.
pub fn non_empty(path: &str, s: &str) -> Result<(), Invalid> {
    if s.trim().is_empty() {
        Err(Invalid::at(path, "must NOT have fewer than 1 characters"))
    } else {
        Ok(())
    }
}

/// A deserializer over one JSON value that knows where it is: errors from
/// below get the key or index prepended on their way out.
struct Node<'de>(&'de Value);

impl<'de> de::Deserializer<'de> for Node<'de> {
    type Error = Invalid;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Invalid> {
        match self.0 {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Number(n) => match (n.as_u64(), n.as_i64()) {
                (Some(u), _) => visitor.visit_u64(u),
                (None, Some(i)) => visitor.visit_i64(i),
                // No params field is a fraction. Refusing here rather than
                // through `visit_f64` keeps float formatting (about 13 KiB)
                // out of the binary.
                _ => Err(de::Error::invalid_type(unexpected(self.0), &visitor)),
            },
            Value::String(s) => visitor.visit_borrowed_str(s),
            Value::Array(a) => visitor.visit_seq(Items {
                iter: a.iter().enumerate(),
            }),
            Value::Object(o) => visitor.visit_map(Fields {
                iter: o.iter(),
                value: None,
            }),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Invalid> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    /// Structs only from objects: serde would also take an array of the
    /// field values in order, which no client means.
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Invalid> {
        match self.0 {
            Value::Object(o) => visitor.visit_map(Fields {
                iter: o.iter(),
                value: None,
            }),
            other => Err(de::Error::invalid_type(unexpected(other), &visitor)),
        }
    }

    // Strings, integers and lists are asked for by type rather than
    // through `deserialize_any`, so each visitor is built with the one
    // path it can take: a smaller binary.

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Invalid> {
        match self.0 {
            Value::String(s) => visitor.visit_borrowed_str(s),
            other => Err(de::Error::invalid_type(unexpected(other), &visitor)),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Invalid> {
        self.deserialize_str(visitor)
    }

    fn deserialize_u64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Invalid> {
        match (self.0.as_u64(), self.0.as_i64()) {
            (Some(u), _) => visitor.visit_u64(u),
            // A negative number: the visitor says why it does not fit.
            (None, Some(i)) => visitor.visit_i64(i),
            _ => Err(de::Error::invalid_type(unexpected(self.0), &visitor)),
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Invalid> {
        match self.0 {
            Value::Array(a) => visitor.visit_seq(Items {
                iter: a.iter().enumerate(),
            }),
            other => Err(de::Error::invalid_type(unexpected(other), &visitor)),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Invalid> {
        visitor.visit_newtype_struct(self)
    }

    /// Unit variants written as strings (`"operator"`), which is all the
    /// params use.
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Invalid> {
        match self.0 {
            Value::String(s) => {
                let variant: StrDeserializer<'_, Invalid> = s.as_str().into_deserializer();
                visitor.visit_enum(variant)
            }
            _ => Err(Invalid::at("", "must be string")),
        }
    }

    /// A field no struct asked for is skipped whole, without a walk.
    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Invalid> {
        visitor.visit_unit()
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u128 f32 f64 char
        bytes byte_buf unit unit_struct tuple tuple_struct map
        identifier
    }
}

fn unexpected(v: &Value) -> de::Unexpected<'_> {
    match v {
        Value::Null => de::Unexpected::Unit,
        Value::Bool(b) => de::Unexpected::Bool(*b),
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => de::Unexpected::Unsigned(u),
            (None, Some(i)) => de::Unexpected::Signed(i),
            _ => de::Unexpected::Other("floating point number"),
        },
        Value::String(s) => de::Unexpected::Str(s),
        Value::Array(_) => de::Unexpected::Seq,
        Value::Object(_) => de::Unexpected::Map,
    }
}

struct Items<'de, I: Iterator<Item = (usize, &'de Value)>> {
    iter: I,
}

impl<'de, I: Iterator<Item = (usize, &'de Value)>> SeqAccess<'de> for Items<'de, I> {
    type Error = Invalid;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Invalid> {
        match self.iter.next() {
            None => Ok(None),
            Some((i, v)) => seed
                .deserialize(Node(v))
                .map(Some)
                .map_err(|e| e.within(&i.to_string())),
        }
    }
}

struct Fields<'de> {
    iter: serde_json::map::Iter<'de>,
    value: Option<(&'de String, &'de Value)>,
}

impl<'de> MapAccess<'de> for Fields<'de> {
    type Error = Invalid;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Invalid> {
        match self.iter.next() {
            None => Ok(None),
            Some((k, v)) => {
                self.value = Some((k, v));
                let key: StrDeserializer<'_, Invalid> = k.as_str().into_deserializer();
                seed.deserialize(key).map(Some)
            }
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Invalid> {
        match self.value.take() {
            Some((k, v)) => seed.deserialize(Node(v)).map_err(|e| e.within(k)),
            None => Err(Invalid::at("", "a value without a key")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "camelCase", expecting = "an object")]
    struct Inner {
        name: String,
        tags: Option<Vec<String>>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "lowercase")]
    enum Kind {
        One,
        Two,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "camelCase", expecting = "an object")]
    struct Outer {
        count: u64,
        inner: Inner,
        kind: Option<Kind>,
    }

    impl Params for Outer {
        fn check(&self) -> Result<(), Invalid> {
            non_empty("/inner/name", &self.inner.name)
        }
    }

    fn raw(v: &Value) -> Box<RawValue> {
        RawValue::from_string(v.to_string()).unwrap()
    }

    fn message(v: Value) -> String {
        parse::<Outer>("thing", Some(&raw(&v))).unwrap_err().message
    }

    #[test]
    fn good_params_parse_and_unknown_keys_are_ignored() {
        let v = json!({"count": 2, "inner": {"name": "x", "later": [1]}, "kind": "two", "x": {}});
        let p: Outer = parse("thing", Some(&raw(&v))).unwrap();
        assert_eq!(p.count, 2);
        assert_eq!(p.kind, Some(Kind::Two));
        assert_eq!(p.inner.tags, None);
        let v = json!({"count": 2, "inner": {"name": "x", "tags": null}, "kind": null});
        assert_eq!(parse::<Outer>("thing", Some(&raw(&v))).unwrap().kind, None);
    }

    #[test]
    fn errors_name_the_field_as_a_json_pointer() {
        assert_eq!(
            message(json!({"inner": {"name": "x"}})),
            "invalid thing params: must have required property 'count'"
        );
        assert_eq!(
            message(json!({"count": 1, "inner": {}})),
            "invalid thing params: at /inner: must have required property 'name'"
        );
        assert_eq!(
            message(json!({"count": 1, "inner": {"name": "x", "tags": ["a", 5]}})),
            "invalid thing params: at /inner/tags/1: invalid type: integer `5`, expected a string"
        );
        assert_eq!(
            message(json!({"count": 1, "inner": "x"})),
            "invalid thing params: at /inner: invalid type: string \"x\", expected an object"
        );
        assert_eq!(
            message(json!({"count": -1, "inner": {"name": "x"}})),
            "invalid thing params: at /count: invalid value: integer `-1`, expected u64"
        );
        assert_eq!(
            message(json!({"count": 1, "inner": {"name": "x"}, "kind": "three"})),
            "invalid thing params: at /kind: must be equal to one of the allowed values"
        );
        assert_eq!(
            message(json!({"count": 1, "inner": {"name": " "}})),
            "invalid thing params: at /inner/name: must NOT have fewer than 1 characters"
        );
        assert_eq!(
            message(json!([1])),
            "invalid thing params: invalid type: sequence, expected an object"
        );
        assert_eq!(
            parse::<Outer>("thing", None).unwrap_err().code,
            "INVALID_REQUEST"
        );
    }

    #[test]
    fn params_past_their_size_are_refused_before_they_are_parsed() {
        let big = json!({"count": 1, "inner": {"name": "x"}, "pad": "y".repeat(70_000)});
        assert_eq!(
            message(big),
            "invalid thing params: larger than 65536 bytes"
        );
        let r = RawValue::from_string("null".into()).unwrap();
        assert_eq!(value("thing", Some(&r), 10).unwrap(), json!({}));
        let many = format!("[{}]", vec!["0"; 5000].join(","));
        let r = RawValue::from_string(many).unwrap();
        assert_eq!(
            value("thing", Some(&r), 1 << 20).unwrap_err().message,
            "invalid thing params: more than 4096 values"
        );
        assert_eq!(values_in(r#"{"a": "x,y[{", "b": [1, 2]}"#), 7);
        // An escaped quote does not end a string; an escaped backslash does
        // not escape the quote after it.
        assert_eq!(values_in(r#"["a\",[", "b\\", 1]"#), 4);
    }

    #[test]
    fn pointer_segments_are_escaped() {
        let e = Invalid::at("", "bad").within("a/b~c");
        assert_eq!(e.describe(), "at /a~1b~0c: bad");
    }
}

//! A stream declared once: its name, keys, cursor and columns ([`StreamDef`]), from
//! which come both its catalog entry (JSON Schema) and its records.
//!
//! A connector lists a stream's columns as [`Field`]s; [`StreamDef::descriptor`] turns them
//! into the schema and [`StreamDef::record`] maps a source object onto them, so schema and
//! records cannot disagree. Source fields the declaration does not know (fields a source
//! adds later) are kept in each record's `_extra` object, and a value of an unexpected
//! type is moved there instead of failing the sync: nothing the source sent is lost, and
//! nothing breaks the load. Fields a stream uses otherwise, or must never store (a
//! secret such as Qlik's `licenseKey`), are listed in [`StreamDef::consumed`].

use serde_json::{Map, Value, json};

use crate::{StreamDescriptor, SyncMode};

/// The column holding source fields the connector does not know.
pub const EXTRA: &str = "_extra";

/// A column's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    /// Text (also enumerations, kept as text).
    String,
    /// An RFC 3339 timestamp, as text.
    DateTime,
    /// A whole number.
    Integer,
    /// Any number.
    Number,
    /// true or false.
    Boolean,
    /// A JSON array.
    Array,
    /// A JSON object.
    Object,
}

impl Ty {
    fn json_type(self) -> &'static str {
        match self {
            Ty::String | Ty::DateTime => "string",
            Ty::Integer => "integer",
            Ty::Number => "number",
            Ty::Boolean => "boolean",
            Ty::Array => "array",
            Ty::Object => "object",
        }
    }

    /// Whether `value` fits a column of this type (null always does).
    pub fn accepts(self, value: &Value) -> bool {
        match self {
            _ if value.is_null() => true,
            Ty::String | Ty::DateTime => value.is_string(),
            Ty::Integer => value.is_i64() || value.is_u64(),
            Ty::Number => value.is_number(),
            Ty::Boolean => value.is_boolean(),
            Ty::Array => value.is_array(),
            Ty::Object => value.is_object(),
        }
    }
}

/// One column of a stream.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    /// snake_case column name.
    pub column: &'static str,
    /// The source field it comes from; `None` for columns the connector derives (a
    /// parent's id, a flag).
    pub source: Option<&'static str>,
    /// Its type.
    pub ty: Ty,
    /// What it means, for the docs.
    pub description: &'static str,
}

/// A column copied from source field `source`.
pub const fn col(column: &'static str, source: &'static str, ty: Ty, description: &'static str) -> Field {
    Field { column, source: Some(source), ty, description }
}

/// A column the connector fills in itself.
pub const fn derived(column: &'static str, ty: Ty, description: &'static str) -> Field {
    Field { column, source: None, ty, description }
}

/// Who may read a stream, where the source answers according to the caller's rights (a
/// key acts with its user's): everyone it accepts, only its administrators, or everyone
/// but with less for the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Every caller the source accepts reads all of it.
    Everyone,
    /// Only administrators; the source refuses everyone else, so the stream fails for them.
    AdminOnly,
    /// Everyone, but callers who are not administrators get part of it, without an
    /// error: what they miss.
    Partial(&'static str),
}

/// A stream: name, docs, keys, columns.
#[derive(Debug)]
pub struct StreamDef {
    /// Stream name.
    pub name: &'static str,
    /// What one record is.
    pub description: &'static str,
    /// Primary-key columns.
    pub primary_key: &'static [&'static str],
    /// Cursor column of incremental streams.
    pub cursor: Option<&'static str>,
    /// Who may read it: declared with the stream, so `check`, the docs and the tests
    /// learn a stream's rights from one place.
    pub access: Access,
    /// Columns.
    pub fields: &'static [Field],
    /// Source fields that are neither columns nor `_extra`: used elsewhere (child
    /// streams, links), or never to be stored (a secret the source sends alongside).
    pub consumed: &'static [&'static str],
}

impl StreamDef {
    /// The catalog entry.
    pub fn descriptor(&self) -> StreamDescriptor {
        let mut properties = Map::new();
        for f in self.fields {
            let nullable = !self.primary_key.contains(&f.column);
            let ty = if nullable { json!([f.ty.json_type(), "null"]) } else { json!(f.ty.json_type()) };
            let mut p = json!({"type": ty, "description": f.description});
            if f.ty == Ty::DateTime {
                p["format"] = json!("date-time");
            }
            properties.insert(f.column.to_string(), p);
        }
        properties.insert(
            EXTRA.to_string(),
            json!({"type": "object", "description": "Source fields this connector version does not map to a column, as the source sent them."}),
        );
        StreamDescriptor {
            name: self.name.to_string(),
            description: self.description.to_string(),
            json_schema: json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "type": "object",
                "properties": properties,
                "required": self.primary_key,
                "additionalProperties": false,
            }),
            primary_key: self.primary_key.iter().map(|k| k.to_string()).collect(),
            cursor_field: self.cursor.map(str::to_string),
            supported_sync_modes: if self.cursor.is_some() {
                vec![SyncMode::Incremental, SyncMode::FullRefresh]
            } else {
                vec![SyncMode::FullRefresh]
            },
        }
    }

    /// Builds a record from source object `src`, with values for derived columns.
    ///
    /// `src` is consumed in one pass, each field moved to its column (or, when unknown
    /// or of an unexpected type, to `_extra` under its own name), so a record costs one
    /// walk over the source object rather than a search per column.
    pub fn record(&self, src: Map<String, Value>, derived: &[(&str, Value)]) -> Value {
        let mut extra = Map::new();
        let mut out = Map::new();
        let mut filled = vec![false; self.fields.len()];
        for (key, value) in src {
            match self.fields.iter().position(|f| f.source == Some(key.as_str())) {
                Some(i) if self.fields[i].ty.accepts(&value) => {
                    filled[i] = true;
                    out.insert(self.fields[i].column.to_string(), value);
                }
                // A number where the source documents a string (an id sent as 42) is kept as
                // its text: nothing is lost, and a key stays a key.
                Some(i) if self.fields[i].ty == Ty::String && value.is_number() => {
                    filled[i] = true;
                    out.insert(self.fields[i].column.to_string(), Value::String(value.to_string()));
                }
                None if self.consumed.contains(&key.as_str()) => {}
                _ => {
                    extra.insert(key, value);
                }
            }
        }
        for (f, _) in self.fields.iter().zip(filled).filter(|(_, filled)| !filled) {
            let value = match f.source {
                Some(_) => Value::Null,
                None => derived
                    .iter()
                    .find(|(c, _)| *c == f.column)
                    .map(|(_, v)| v.clone())
                    .unwrap_or(Value::Null),
            };
            out.insert(f.column.to_string(), value);
        }
        out.insert(EXTRA.to_string(), Value::Object(extra));
        Value::Object(out)
    }
}

/// Moves the fields of a nested source object to derived columns of `def`: `pairs` maps a
/// field of `object` to its column. Returns the column values (null when absent or of
/// another type than the column's) and what is left of `object`, which the caller keeps
/// in `_extra` so no field is dropped.
pub fn flatten(
    def: &StreamDef,
    mut object: Map<String, Value>,
    pairs: &[(&str, &'static str)],
) -> (Vec<(&'static str, Value)>, Map<String, Value>) {
    let columns = pairs
        .iter()
        .map(|(field, column)| {
            let ty = def.fields.iter().find(|f| f.column == *column).map(|f| f.ty);
            match object.remove(*field) {
                Some(v) if ty.is_some_and(|t| t.accepts(&v)) => (*column, v),
                Some(v) => {
                    object.insert((*field).to_string(), v);
                    (*column, Value::Null)
                }
                None => (*column, Value::Null),
            }
        })
        .collect();
    (columns, object)
}

/// The record of `src` whose nested objects `nested` (a field and its `flatten` pairs
/// each) are spread over derived columns of `def`; what is left of a nested object, or a
/// nested field that is not an object, stays in `_extra` under the field's name.
pub fn record_spreading(
    def: &StreamDef,
    mut src: Map<String, Value>,
    nested: &[(&str, &[(&str, &'static str)])],
) -> Value {
    let mut columns = Vec::new();
    let mut rest = Map::new();
    for (field, pairs) in nested {
        match src.remove(*field) {
            Some(Value::Object(object)) => {
                let (values, left) = flatten(def, object, pairs);
                columns.extend(values);
                if !left.is_empty() {
                    rest.insert(field.to_string(), Value::Object(left));
                }
            }
            Some(other) => {
                rest.insert(field.to_string(), other);
            }
            None => {}
        }
    }
    let mut record = def.record(src, &columns);
    if let Value::Object(extra) = &mut record[EXTRA] {
        extra.extend(rest);
    }
    record
}

#[cfg(test)]
mod tests {
    use super::*;

    const OVERVIEW: StreamDef = StreamDef {
        name: "overview",
        description: "A test stream.",
        primary_key: &["number"],
        cursor: None,
        access: Access::Everyone,
        fields: &[
            col("number", "licenseNumber", Ty::String, "Number."),
            col("status", "status", Ty::String, "Status."),
            col("trial", "trial", Ty::Boolean, "Trial."),
            derived("tenant", Ty::String, "Tenant."),
        ],
        consumed: &["allotments", "licenseKey"],
    };

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    #[test]
    fn record_keeps_unknown_fields_and_drops_consumed_ones() {
        let src = object(json!({
            "licenseNumber": "123", "licenseKey": "eyJsecret", "status": "SomethingNew",
            "trial": "not-a-bool", "brandNewField": {"a": 1}, "allotments": []
        }));
        let r = OVERVIEW.record(src, &[("tenant", json!("t1"))]);
        assert_eq!(r["number"], "123");
        assert_eq!(r["status"], "SomethingNew", "unknown enum values stay text");
        assert_eq!(r["trial"], Value::Null);
        assert_eq!(r["tenant"], "t1");
        assert_eq!(r["_extra"], json!({"trial": "not-a-bool", "brandNewField": {"a": 1}}));
        assert!(!r.to_string().contains("eyJsecret"));
    }

    #[test]
    fn a_number_where_text_is_documented_is_kept_as_text() {
        let r = OVERVIEW.record(object(json!({"licenseNumber": 9876543210_u64})), &[]);
        assert_eq!(r["number"], "9876543210");
        assert_eq!(r["_extra"], json!({}));
    }

    #[test]
    fn the_descriptor_requires_keys_and_lets_other_columns_be_null() {
        let d = OVERVIEW.descriptor();
        assert_eq!(d.json_schema["required"], json!(["number"]));
        assert_eq!(d.json_schema["properties"]["number"]["type"], "string");
        assert_eq!(d.json_schema["properties"]["trial"]["type"], json!(["boolean", "null"]));
        assert_eq!(d.supported_sync_modes, [SyncMode::FullRefresh]);
    }
}

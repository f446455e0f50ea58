//! Checking a whole document against its kind's field table.
//!
//! Only structure and size are checked here: unknown keys, automerge types
//! and limits. Values (enum words, SPDX ids, dates) are checked when written
//! locally, so that a peer running a newer version with more stages or a newer
//! SPDX list is not refused. Limits are checked with [`MERGE_HEADROOM`] so two
//! replicas that each filled a list offline can still merge.

use super::error::SchemaError;
use super::read::View;
use super::spec::{describe_value, names, Field, FieldType};
use super::{DocKind, MAX_KEY_BYTES, MERGE_HEADROOM};
use automerge::{ObjId, ObjType, Prop, ReadDoc, ScalarValue, Value};

/// The size a document may reach, given the limit edits respect.
fn hard(limit: usize) -> usize {
    limit.saturating_mul(MERGE_HEADROOM)
}

/// Joins a parent path and a key.
pub(crate) fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

/// Checks the fields of a map against a table; `path` is the map's own path.
pub(crate) fn check_fields<R: ReadDoc>(
    view: &View<'_, R>,
    kind: DocKind,
    obj: &ObjId,
    path: &str,
    fields: &'static [Field],
) -> Result<(), SchemaError> {
    for key in view.keys(obj) {
        let field_path = join(path, &key);
        let field = field_named(kind, fields, &key, &field_path)?;
        check_values(view, kind, obj, key.as_str(), &field_path, &field.ty)?;
    }
    Ok(())
}

/// [`check_fields`] for the keys `only` of `obj` (a key no longer there is fine).
pub(crate) fn check_some_fields<'k, R: ReadDoc>(
    view: &View<'_, R>,
    kind: DocKind,
    obj: &ObjId,
    fields: &'static [Field],
    only: impl IntoIterator<Item = &'k str>,
) -> Result<(), SchemaError> {
    for key in only {
        let values = view
            .get_all(obj, key)
            .map_err(|e| SchemaError::automerge("read", e))?;
        if values.is_empty() {
            continue;
        }
        let field = field_named(kind, fields, key, key)?;
        for (value, id) in values {
            check_value(view, kind, key, &field.ty, &value, &id)?;
        }
    }
    Ok(())
}

/// The schema's field called `key`, or the error naming the unknown field at `path`.
fn field_named(
    kind: DocKind,
    fields: &'static [Field],
    key: &str,
    path: &str,
) -> Result<&'static Field, SchemaError> {
    fields
        .iter()
        .find(|f| f.name == key)
        .ok_or_else(|| SchemaError::UnknownField {
            kind,
            path: path.to_string(),
            known: names(fields),
        })
}

/// Checks every concurrent value at a key or index, so a losing conflict cannot smuggle in a bad type.
fn check_values<R: ReadDoc, P: Into<Prop>>(
    view: &View<'_, R>,
    kind: DocKind,
    obj: &ObjId,
    prop: P,
    path: &str,
    ty: &FieldType,
) -> Result<(), SchemaError> {
    let values = view
        .get_all(obj, prop)
        .map_err(|e| SchemaError::automerge("read", e))?;
    for (value, id) in values {
        check_value(view, kind, path, ty, &value, &id)?;
    }
    Ok(())
}

/// Checks one value against its field type.
fn check_value<R: ReadDoc>(
    view: &View<'_, R>,
    kind: DocKind,
    path: &str,
    ty: &FieldType,
    value: &Value<'_>,
    id: &ObjId,
) -> Result<(), SchemaError> {
    let wrong = || SchemaError::WrongType {
        path: path.to_string(),
        expected: ty.describe(),
        found: describe_value(value),
    };
    match (ty, value) {
        (FieldType::Str { max, .. }, Value::Scalar(s)) => match s.as_ref() {
            ScalarValue::Str(text) => within(path, text.len(), *max),
            _ => Err(wrong()),
        },
        (FieldType::Num { .. }, Value::Scalar(s)) => match s.as_ref() {
            ScalarValue::Int(_) | ScalarValue::Uint(_) | ScalarValue::F64(_) => Ok(()),
            _ => Err(wrong()),
        },
        (FieldType::Text { max }, Value::Object(ObjType::Text)) => {
            let bound = view.text_bytes_bound(id);
            if bound.is_some_and(|b| b <= hard(*max)) {
                return Ok(());
            }
            let text = view
                .text(id)
                .map_err(|e| SchemaError::automerge("read", e))?;
            within(path, text.len(), *max)
        }
        (FieldType::List { max, item, .. }, Value::Object(ObjType::List)) => {
            let count = view.length(id);
            count_within(path, count, *max)?;
            for index in 0..count {
                check_values(
                    view,
                    kind,
                    id,
                    index,
                    &join(path, &(index + 1).to_string()),
                    item,
                )?;
            }
            Ok(())
        }
        (FieldType::Record(fields), Value::Object(ObjType::Map)) => {
            check_fields(view, kind, id, path, fields)
        }
        (
            FieldType::MapOf {
                max,
                value: value_ty,
                ..
            },
            Value::Object(ObjType::Map),
        ) => {
            let keys = view.keys(id);
            count_within(path, keys.len(), *max)?;
            for key in keys {
                let entry_path = join(path, &key);
                within(&entry_path, key.len(), MAX_KEY_BYTES)?;
                check_values(view, kind, id, key.as_str(), &entry_path, value_ty)?;
            }
            Ok(())
        }
        _ => Err(wrong()),
    }
}

/// Refuses a string or text over the hard limit.
fn within(path: &str, bytes: usize, max: usize) -> Result<(), SchemaError> {
    if bytes > hard(max) {
        Err(SchemaError::TooLarge {
            path: path.to_string(),
            bytes,
            max: hard(max),
        })
    } else {
        Ok(())
    }
}

/// Refuses a list or map over the hard limit.
fn count_within(path: &str, count: usize, max: usize) -> Result<(), SchemaError> {
    if count > hard(max) {
        Err(SchemaError::TooManyItems {
            path: path.to_string(),
            count,
            max: hard(max),
        })
    } else {
        Ok(())
    }
}

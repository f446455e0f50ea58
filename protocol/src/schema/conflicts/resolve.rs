//! Writing a resolution: one value over every concurrent version of a field.

use super::Settle;
use crate::schema::error::{EditError, SchemaError, ValueError};
use crate::schema::spec::{check_str, find as find_field, names, parse_number, FieldType};
use crate::schema::DocKind;
use automerge::transaction::Transactable;
use automerge::{ObjId, ObjType, Prop, ReadDoc, Value, ROOT};

/// Writes a resolution of the conflict on `path`: `value` over every concurrent version, in one
/// change that (being made on the current document) has all of them in its causal past.
///
/// A text that already reads as the chosen value is still touched (a character inserted and
/// deleted in the same change), so the change closes the conflict wherever it travels.
pub fn write_resolution<T: Transactable>(
    tx: &mut T,
    kind: DocKind,
    path: &str,
    value: &Settle,
) -> Result<(), EditError> {
    let (parent, prop, ty) = locate(&*tx, kind, path)?;
    let written = |e| EditError::automerge("written", e);
    match ty {
        FieldType::Text { max } => {
            let text = match tx
                .get(&parent, prop)
                .map_err(|e| EditError::automerge("read", e))?
            {
                Some((Value::Object(ObjType::Text), id)) => id,
                _ => return Err(missing(path, ty)),
            };
            let new = match value {
                // Typed text is settled by a person: an empty one is a slip, as for `set`.
                Settle::Typed(s) if s.trim().is_empty() => {
                    return Err(ValueError::Empty {
                        field: path.to_string(),
                    }
                    .into())
                }
                Settle::Typed(s) | Settle::Str(s) => s.clone(),
                other => return Err(wrong_value(path, other)),
            };
            if new.len() > *max {
                return Err(ValueError::TooLong {
                    field: path.to_string(),
                    bytes: new.len(),
                    max: *max,
                }
                .into());
            }
            let current = tx
                .text(&text)
                .map_err(|e| EditError::automerge("read", e))?;
            if current == new {
                tx.splice_text(&text, 0, 0, " ").map_err(written)?;
                tx.splice_text(&text, 0, 1, "").map_err(written)?;
                return Ok(());
            }
            tx.update_text(&text, &new).map_err(written)
        }
        FieldType::Str { max, check } => {
            let scalar = match value {
                Settle::Typed(raw) => {
                    let checked = check_str(path, *max, *check, raw)?;
                    if checked.is_empty() {
                        return Err(ValueError::Empty {
                            field: path.to_string(),
                        }
                        .into());
                    }
                    automerge::ScalarValue::Str(checked.into())
                }
                Settle::Str(s) => automerge::ScalarValue::Str(s.as_str().into()),
                other => return Err(wrong_value(path, other)),
            };
            tx.put(&parent, prop, scalar).map_err(written)
        }
        FieldType::Num { min, max, whole } => {
            let scalar = match value {
                Settle::Typed(raw) => parse_number(path, *min, *max, *whole, raw)?,
                Settle::Int(n) => automerge::ScalarValue::Int(*n),
                Settle::Uint(n) => automerge::ScalarValue::Uint(*n),
                Settle::F64(n) => automerge::ScalarValue::F64(*n),
                other => return Err(wrong_value(path, other)),
            };
            tx.put(&parent, prop, scalar).map_err(written)
        }
        other => Err(EditError::WrongEdit {
            field: path.to_string(),
            shape: other.describe(),
            hint: "name one value or text in it, such as `steps.2` or `bom.1.quantity`".to_string(),
        }),
    }
}

fn missing(path: &str, ty: &FieldType) -> EditError {
    SchemaError::WrongType {
        path: path.to_string(),
        expected: ty.describe(),
        found: "nothing".to_string(),
    }
    .into()
}

fn wrong_value(path: &str, value: &Settle) -> EditError {
    let shown = match value {
        Settle::Typed(s) | Settle::Str(s) => s.clone(),
        Settle::Int(n) => n.to_string(),
        Settle::Uint(n) => n.to_string(),
        Settle::F64(n) => n.to_string(),
    };
    ValueError::NotANumber {
        field: path.to_string(),
        value: shown,
    }
    .into()
}

/// Walks a conflict path (`steps.2`, `bom.1.quantity`, `licence.hardware`) to the object holding
/// its last part, with that part and its type.
fn locate<R: ReadDoc>(
    doc: &R,
    kind: DocKind,
    path: &str,
) -> Result<(ObjId, Prop, &'static FieldType), EditError> {
    let unknown = |known: Vec<&'static str>| EditError::UnknownField {
        kind,
        path: path.to_string(),
        known,
    };
    let mut segments = path.split('.');
    let head = segments.next().unwrap_or_default();
    let field = find_field(kind.fields(), head).ok_or_else(|| unknown(names(kind.fields())))?;
    let mut parent = ROOT;
    let mut prop = Prop::Map(head.to_string());
    let mut ty: &'static FieldType = &field.ty;
    for segment in segments {
        let (next_prop, next_ty): (Prop, &'static FieldType) = match ty {
            FieldType::Record(parts) => (
                Prop::Map(segment.to_string()),
                &find_field(parts, segment)
                    .ok_or_else(|| unknown(names(parts)))?
                    .ty,
            ),
            FieldType::MapOf { value, .. } => (Prop::Map(segment.to_string()), *value),
            FieldType::List { item, .. } => match segment.parse::<usize>() {
                Ok(n) if n >= 1 => (Prop::Seq(n - 1), *item),
                _ => return Err(unknown(vec!["a step or entry number, from 1"])),
            },
            _ => return Err(unknown(Vec::new())),
        };
        let holder = match doc.get(&parent, prop.clone()) {
            Ok(Some((Value::Object(_), id))) => id,
            _ => return Err(missing(path, ty)),
        };
        parent = holder;
        prop = next_prop;
        ty = next_ty;
    }
    Ok((parent, prop, ty))
}

//! Who changed what: the fields a change touched, and blame for one field.
//!
//! Both answer in change hashes; the node maps a hash to its signed author.
//! Curators auditing a design ("who changed the weight, and when?") and the
//! CLI's `log` read these.

use super::error::SchemaError;
use super::read::View;
use super::render::render_at;
use super::spec::{find, names, Field, FieldType};
use super::DocKind;
use automerge::{
    Automerge, ChangeHash, ObjId, ObjType, PatchAction, Prop, ReadDoc, ScalarValue, Value,
    ValueRef, ROOT,
};
use serde::Serialize;
use std::collections::BTreeSet;

/// One part of a field and the change that last wrote it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BlameSpan {
    /// The part's content: a run of text, a scalar, or an element rendered as JSON.
    pub text: String,
    /// The change that wrote it.
    pub change: ChangeHash,
    /// For a text run, its first character's offset (0-based, in characters).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<usize>,
    /// For a list element, its 1-based position.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<usize>,
    /// For a map entry or record part, its key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

impl BlameSpan {
    /// A span with no locator.
    fn new(text: String, change: ChangeHash) -> Self {
        BlameSpan {
            text,
            change,
            offset: None,
            position: None,
            key: None,
        }
    }
}

/// The top-level fields a change touched, sorted.
pub(crate) fn fields_touched(doc: &Automerge, change_hash: &ChangeHash) -> Vec<String> {
    let Some(change) = doc.get_change_by_hash(change_hash) else {
        return Vec::new();
    };
    let mut fields = BTreeSet::new();
    for patch in doc.diff(change.deps(), &[*change_hash]) {
        let field = match (patch.path.first(), &patch.action) {
            (Some((_, Prop::Map(key))), _) => Some(key.clone()),
            (Some(_), _) => None,
            (None, PatchAction::PutMap { key, .. } | PatchAction::DeleteMap { key }) => {
                Some(key.clone())
            }
            (
                None,
                PatchAction::Increment {
                    prop: Prop::Map(key),
                    ..
                }
                | PatchAction::Conflict {
                    prop: Prop::Map(key),
                },
            ) => Some(key.clone()),
            (None, _) => None,
        };
        fields.extend(field);
    }
    fields.into_iter().collect()
}

/// What a blame path points at.
struct Located {
    value: Value<'static>,
    id: ObjId,
    ty: &'static FieldType,
}

/// Blames a field or a dotted path into it (`summary`, `steps.2`, `licence.hardware`).
pub(crate) fn blame(
    doc: &Automerge,
    kind: DocKind,
    fields: &'static [Field],
    path: &str,
) -> Result<Vec<BlameSpan>, SchemaError> {
    let view = View::new(doc, None);
    let Some(found) = locate(&view, kind, fields, path)? else {
        return Ok(Vec::new());
    };
    let change = |id: &ObjId| doc.hash_for_opid(id);
    let spans = match (found.ty, &found.value) {
        (FieldType::Text { .. }, Value::Object(ObjType::Text)) => text_runs(doc, &found.id),
        (FieldType::List { item, .. }, Value::Object(ObjType::List)) => (0..view.length(&found.id))
            .filter_map(|index| {
                let (_, id) = view.get(&found.id, index)?;
                let mut span =
                    BlameSpan::new(element_text(&view, &found.id, index, item), change(&id)?);
                span.position = Some(index + 1);
                Some(span)
            })
            .collect(),
        (FieldType::Record(_) | FieldType::MapOf { .. }, Value::Object(ObjType::Map)) => view
            .keys(&found.id)
            .into_iter()
            .filter_map(|key| {
                let part_ty = match found.ty {
                    FieldType::Record(parts) => &find(parts, &key)?.ty,
                    FieldType::MapOf { value, .. } => *value,
                    _ => return None,
                };
                let (_, id) = view.get(&found.id, key.as_str())?;
                let mut span = BlameSpan::new(
                    element_text(&view, &found.id, key.as_str(), part_ty),
                    change(&id)?,
                );
                span.key = Some(key);
                Some(span)
            })
            .collect(),
        (FieldType::Str { .. } | FieldType::Num { .. }, Value::Scalar(s)) => change(&found.id)
            .map(|c| vec![BlameSpan::new(scalar_text(s.as_ref()), c)])
            .unwrap_or_default(),
        (ty, value) => {
            return Err(SchemaError::WrongType {
                path: path.to_string(),
                expected: ty.describe(),
                found: super::spec::describe_value(value),
            })
        }
    };
    Ok(spans)
}

/// Walks a dotted path: field names through records, keys through maps, 1-based numbers through lists.
fn locate(
    view: &View<'_, Automerge>,
    kind: DocKind,
    fields: &'static [Field],
    path: &str,
) -> Result<Option<Located>, SchemaError> {
    let mut segments = path.split('.');
    let head = segments.next().unwrap_or_default();
    let unknown = |known: Vec<&'static str>| SchemaError::UnknownField {
        kind,
        path: path.to_string(),
        known,
    };
    let field = find(fields, head).ok_or_else(|| unknown(names(fields)))?;
    let Some((value, id)) = view.get(&ROOT, head) else {
        return Ok(None);
    };
    let mut here = Located {
        value: owned(value),
        id,
        ty: &field.ty,
    };
    for segment in segments {
        let (prop, ty): (Prop, &'static FieldType) = match here.ty {
            FieldType::Record(parts) => (
                Prop::Map(segment.to_string()),
                &find(parts, segment)
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
        let expected = here.ty.obj_type();
        if expected.is_none_or(|t| here.value != Value::Object(t)) {
            return Ok(None);
        }
        let Some((value, id)) = view.get(&here.id, prop) else {
            return Ok(None);
        };
        here = Located {
            value: owned(value),
            id,
            ty,
        };
    }
    Ok(Some(here))
}

/// Detaches a value from the document borrow.
fn owned(value: Value<'_>) -> Value<'static> {
    match value {
        Value::Object(t) => Value::Object(t),
        Value::Scalar(s) => Value::Scalar(std::borrow::Cow::Owned(s.into_owned())),
    }
}

/// Maximal runs of characters inserted by the same change.
fn text_runs(doc: &Automerge, text: &ObjId) -> Vec<BlameSpan> {
    let mut spans: Vec<BlameSpan> = Vec::new();
    let mut offset = 0;
    for item in doc.list_range(text, ..) {
        let ValueRef::Scalar(automerge::ScalarValueRef::Str(chunk)) = &item.value else {
            continue;
        };
        let Some(change) = doc.hash_for_opid(&item.id()) else {
            continue;
        };
        match spans.last_mut() {
            Some(last) if last.change == change => last.text.push_str(chunk),
            _ => {
                let mut span = BlameSpan::new(chunk.to_string(), change);
                span.offset = Some(offset);
                spans.push(span);
            }
        }
        offset += chunk.chars().count();
    }
    spans
}

/// An element's content as blame shows it: strings bare, everything else as JSON.
fn element_text<P: Into<Prop>>(
    view: &View<'_, Automerge>,
    obj: &ObjId,
    prop: P,
    ty: &FieldType,
) -> String {
    match render_at(view, obj, prop, ty) {
        serde_json::Value::String(s) => s,
        other => other.to_string(),
    }
}

/// A scalar as blame shows it.
fn scalar_text(s: &ScalarValue) -> String {
    match s {
        ScalarValue::Str(text) => text.to_string(),
        ScalarValue::Int(n) => n.to_string(),
        ScalarValue::Uint(n) => n.to_string(),
        ScalarValue::F64(n) => n.to_string(),
        other => other.to_string(),
    }
}

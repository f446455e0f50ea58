//! Rendering a document as stable JSON for `--json` output.
//!
//! Every field of the kind appears, in a fixed shape whatever the document
//! holds: absent or mistyped scalars are `null`, texts `""`, lists `[]`. A
//! script reading the output never has to guess whether a key exists, and a
//! hostile document cannot make the renderer panic or change shape.

use super::read::View;
use super::spec::{Field, FieldType};
use automerge::{ObjId, ObjType, Prop, ReadDoc, ScalarValue, Value};
use serde_json::{Map, Value as Json};

/// Renders every field of a table from a map (missing map renders all defaults).
pub(crate) fn render_fields<R: ReadDoc>(
    view: &View<'_, R>,
    obj: Option<&ObjId>,
    fields: &'static [Field],
) -> Map<String, Json> {
    fields
        .iter()
        .map(|f| {
            let value = obj.and_then(|o| view.get(o, f.name));
            (f.name.to_string(), render_value(view, &f.ty, value))
        })
        .collect()
}

/// Renders the value at a key or index.
pub(crate) fn render_at<R: ReadDoc, P: Into<Prop>>(
    view: &View<'_, R>,
    obj: &ObjId,
    prop: P,
    ty: &FieldType,
) -> Json {
    render_value(view, ty, view.get(obj, prop))
}

/// Renders one value, or the type's default when it is absent or of the wrong type.
fn render_value<R: ReadDoc>(
    view: &View<'_, R>,
    ty: &FieldType,
    value: Option<(Value<'_>, ObjId)>,
) -> Json {
    match (ty, value) {
        (FieldType::Str { .. }, Some((Value::Scalar(s), _))) => match s.as_ref() {
            ScalarValue::Str(text) => Json::String(text.to_string()),
            _ => Json::Null,
        },
        (FieldType::Num { .. }, Some((Value::Scalar(s), _))) => scalar_number(s.as_ref()),
        (FieldType::Str { .. } | FieldType::Num { .. }, _) => Json::Null,
        (FieldType::Text { .. }, Some((Value::Object(ObjType::Text), id))) => {
            Json::String(view.text(&id).unwrap_or_default())
        }
        (FieldType::Text { .. }, _) => Json::String(String::new()),
        (FieldType::List { item, unique, .. }, Some((Value::Object(ObjType::List), id))) => {
            let mut items: Vec<Json> = Vec::new();
            for index in 0..view.length(&id) {
                let rendered = render_at(view, &id, index, item);
                // Two replicas adding the same tag offline leave it twice; a set shows it once.
                if *unique && (rendered.is_null() || holds(&items, &rendered, item)) {
                    continue;
                }
                items.push(rendered);
            }
            Json::Array(items)
        }
        (FieldType::List { .. }, _) => Json::Array(Vec::new()),
        (FieldType::Record(fields), Some((Value::Object(ObjType::Map), id))) => {
            Json::Object(render_fields(view, Some(&id), fields))
        }
        (FieldType::Record(fields), _) => Json::Object(render_fields(view, None, fields)),
        (FieldType::MapOf { value, .. }, Some((Value::Object(ObjType::Map), id))) => Json::Object(
            view.keys(&id)
                .into_iter()
                .map(|key| {
                    let rendered = render_at(view, &id, key.as_str(), value);
                    (key, rendered)
                })
                .collect(),
        ),
        (FieldType::MapOf { .. }, _) => Json::Object(Map::new()),
    }
}

/// A number scalar as JSON (`null` for non-numbers and non-finite floats).
fn scalar_number(s: &ScalarValue) -> Json {
    match s {
        ScalarValue::Int(n) => Json::from(*n),
        ScalarValue::Uint(n) => Json::from(*n),
        ScalarValue::F64(n) => serde_json::Number::from_f64(*n).map_or(Json::Null, Json::Number),
        _ => Json::Null,
    }
}

/// Whether a set already shows `item`: the same value, or for tags the same normal form (two
/// replicas that added `no-till` and `No-Till` offline show the one written first).
fn holds(items: &[Json], item: &Json, ty: &FieldType) -> bool {
    match (ty, item) {
        (
            FieldType::Str {
                check: super::StrCheck::Tag,
                ..
            },
            Json::String(tag),
        ) => items
            .iter()
            .any(|held| held.as_str().is_some_and(|h| super::same_tag(h, tag))),
        _ => items.contains(item),
    }
}

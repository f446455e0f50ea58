//! Generic writes driven by the field tables: set, unset, text, string lists and list entries.
//!
//! Every function validates before it writes anything, so an error leaves the
//! transaction as it was.

use super::edit::Edit;
use super::error::{EditError, SchemaError, ValueError};
use super::read::View;
use super::spec::{
    check_key, check_str, describe_value, find, names, parse_number, Field, FieldType, StrCheck,
};
use super::validate::join;
use super::DocKind;
use automerge::transaction::Transactable;
use automerge::{ObjId, ObjType, ScalarValue, Value, ROOT};

/// Where a scalar edit lands: a key of some map, and the type it must have.
pub(crate) struct Slot {
    /// The map holding the key; `None` when a document older than the field lacks it.
    parent: Option<ObjId>,
    /// For a dotted path, the top-level field whose map holds the key.
    holder: Option<&'static Field>,
    /// The key.
    key: String,
    /// The dotted path, for messages.
    path: String,
    /// The field's type.
    ty: &'static FieldType,
    /// For an entry of a map of entries, the most entries that map may hold.
    map_max: Option<usize>,
}

impl Slot {
    /// The holding map, created if missing; called only once the value has been checked.
    fn parent_mut<T: Transactable>(&self, tx: &mut T) -> Result<ObjId, EditError> {
        match (&self.parent, self.holder) {
            (Some(parent), _) => Ok(parent.clone()),
            (None, Some(holder)) => field_obj(tx, &ROOT, holder.name, holder.name, &holder.ty),
            (None, None) => Ok(ROOT),
        }
    }

    /// The object at the slot, if the document has it.
    fn existing<T: Transactable>(&self, tx: &T) -> Result<Option<ObjId>, EditError> {
        match &self.parent {
            Some(parent) => existing_obj(tx, parent, &self.key, &self.path, self.ty),
            None => Ok(None),
        }
    }

    /// The object at the slot, created if missing.
    fn object<T: Transactable>(&self, tx: &mut T) -> Result<ObjId, EditError> {
        let parent = self.parent_mut(tx)?;
        field_obj(tx, &parent, &self.key, &self.path, self.ty)
    }
}

/// Resolves `field` or `field.part` against a table, without writing anything.
pub(crate) fn resolve<T: Transactable>(
    tx: &T,
    kind: DocKind,
    fields: &'static [Field],
    path: &str,
) -> Result<Slot, EditError> {
    let (head, rest) = match path.split_once('.') {
        Some((h, r)) => (h, Some(r)),
        None => (path, None),
    };
    let unknown = |known: Vec<&'static str>| EditError::UnknownField {
        kind,
        path: path.to_string(),
        known,
    };
    let field = find(fields, head).ok_or_else(|| unknown(names(fields)))?;
    let Some(part) = rest else {
        return Ok(Slot {
            parent: Some(ROOT),
            holder: None,
            key: head.to_string(),
            path: path.to_string(),
            ty: &field.ty,
            map_max: None,
        });
    };
    let (ty, map_max) = match &field.ty {
        FieldType::Record(parts) => (
            &find(parts, part).ok_or_else(|| unknown(names(parts)))?.ty,
            None,
        ),
        FieldType::MapOf { max, key, value } => {
            check_key(head, *key, part)?;
            (*value, Some(*max))
        }
        other => {
            return Err(EditError::WrongEdit {
                field: head.to_string(),
                shape: other.describe(),
                hint: format!("it has no parts; name the field alone, `{head}`"),
            })
        }
    };
    Ok(Slot {
        parent: existing_obj(tx, &ROOT, head, head, &field.ty)?,
        holder: Some(field),
        key: part.to_string(),
        path: path.to_string(),
        ty,
        map_max,
    })
}

/// The object a field lives in, if the document has it; a value of another type is an error.
fn existing_obj<T: Transactable>(
    tx: &T,
    parent: &ObjId,
    key: &str,
    path: &str,
    ty: &FieldType,
) -> Result<Option<ObjId>, EditError> {
    let Some(obj_type) = ty.obj_type() else {
        return Err(EditError::WrongEdit {
            field: path.to_string(),
            shape: ty.describe(),
            hint: format!("it holds a single value: give it one with --set {path}=VALUE"),
        });
    };
    match tx
        .get(parent, key)
        .map_err(|e| EditError::automerge("read", e))?
    {
        None => Ok(None),
        Some((Value::Object(t), id)) if t == obj_type => Ok(Some(id)),
        Some((other, _)) => Err(SchemaError::WrongType {
            path: path.to_string(),
            expected: ty.describe(),
            found: describe_value(&other),
        }
        .into()),
    }
}

/// The object a field lives in; created if missing.
///
/// Skeletons create every object in a document's first change, so creation
/// here only happens for documents written before a field existed. Two
/// replicas doing it concurrently would make competing objects, which is why
/// it is a fallback and not the way fields are made.
pub(crate) fn field_obj<T: Transactable>(
    tx: &mut T,
    parent: &ObjId,
    key: &str,
    path: &str,
    ty: &FieldType,
) -> Result<ObjId, EditError> {
    if let Some(id) = existing_obj(&*tx, parent, key, path, ty)? {
        return Ok(id);
    }
    let obj_type = ty.obj_type().unwrap_or(ObjType::Map);
    tx.put_object(parent, key, obj_type)
        .map_err(|e| EditError::automerge("written", e))
}

/// Sets a scalar (or replaces a text) at a slot.
pub(crate) fn set<T: Transactable>(tx: &mut T, slot: &Slot, raw: &str) -> Result<(), EditError> {
    let value = match slot.ty {
        FieldType::Str { max, check } => {
            // Empty is refused as such, before a rule (an id, a date) could call it malformed.
            let value = match raw.trim() {
                "" => String::new(),
                _ => check_str(&slot.path, *max, *check, raw)?,
            };
            if value.is_empty() {
                return Err(ValueError::Empty {
                    field: slot.path.clone(),
                }
                .into());
            }
            ScalarValue::Str(value.into())
        }
        FieldType::Num { min, max, whole } => parse_number(&slot.path, *min, *max, *whole, raw)?,
        FieldType::Text { max } => {
            check_text_size(&slot.path, raw.len(), *max)?;
            let text = slot.object(tx)?;
            return tx
                .update_text(&text, raw)
                .map_err(|e| EditError::automerge("written", e));
        }
        other => return Err(not_a_scalar(&slot.path, other)),
    };
    check_map_room(&*tx, slot)?;
    let parent = slot.parent_mut(tx)?;
    tx.put(&parent, slot.key.as_str(), value)
        .map_err(|e| EditError::automerge("written", e))
}

/// Removes a scalar or map entry at a slot, or empties a text.
pub(crate) fn unset<T: Transactable>(tx: &mut T, slot: &Slot) -> Result<(), EditError> {
    match slot.ty {
        FieldType::Str { .. } | FieldType::Num { .. } => {
            let Some(parent) = &slot.parent else {
                return Ok(());
            };
            let present = tx
                .get(parent, slot.key.as_str())
                .map_err(|e| EditError::automerge("read", e))?
                .is_some();
            if present {
                tx.delete(parent, slot.key.as_str())
                    .map_err(|e| EditError::automerge("written", e))?;
            }
            Ok(())
        }
        FieldType::Text { .. } => match slot.existing(&*tx)? {
            Some(text) => tx
                .update_text(&text, "")
                .map_err(|e| EditError::automerge("written", e)),
            None => Ok(()),
        },
        other => Err(not_a_scalar(&slot.path, other)),
    }
}

/// The error for a scalar edit on a list or map.
fn not_a_scalar(path: &str, ty: &FieldType) -> EditError {
    let hint = match ty {
        FieldType::List {
            item: FieldType::Str { .. },
            ..
        } => format!("add or remove one item at a time: --add {path}=ITEM, --remove {path}=ITEM"),
        FieldType::List { .. } => list_edits(path),
        FieldType::Record(parts) => format!(
            "set one of its parts: {}",
            parts
                .iter()
                .map(|p| format!("{path}.{}", p.name))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        _ => format!("set one entry, such as `{path}.farmhack`"),
    };
    EditError::WrongEdit {
        field: path.to_string(),
        shape: ty.describe(),
        hint,
    }
}

/// Refuses a new key in a map of entries that is full.
fn check_map_room<T: Transactable>(tx: &T, slot: &Slot) -> Result<(), EditError> {
    let (Some(max), Some(parent)) = (slot.map_max, &slot.parent) else {
        return Ok(());
    };
    let view = View::new(tx, None);
    if view.get(parent, slot.key.as_str()).is_none() && view.keys(parent).len() >= max {
        let field = slot
            .holder
            .map_or(slot.path.as_str(), |h| h.name)
            .to_string();
        return Err(EditError::Full { field, max });
    }
    Ok(())
}

/// Refuses a text over its limit.
pub(crate) fn check_text_size(path: &str, bytes: usize, max: usize) -> Result<(), EditError> {
    if bytes > max {
        return Err(ValueError::TooLong {
            field: path.to_string(),
            bytes,
            max,
        }
        .into());
    }
    Ok(())
}

/// The slot of a text field and its limit.
fn text_slot<T: Transactable>(
    tx: &T,
    kind: DocKind,
    fields: &'static [Field],
    name: &str,
) -> Result<(Slot, usize), EditError> {
    let slot = resolve(tx, kind, fields, name)?;
    match slot.ty {
        FieldType::Text { max } => Ok((slot, *max)),
        other => Err(EditError::WrongEdit {
            field: slot.path.clone(),
            shape: other.describe(),
            hint: format!(
                "only text fields take --append, --text-file and --stdin; give it a value with --set {}=VALUE",
                slot.path
            ),
        }),
    }
}

/// Replaces a text field's content through a character diff, so concurrent edits elsewhere in it survive.
fn replace_text_field<T: Transactable>(
    tx: &mut T,
    kind: DocKind,
    fields: &'static [Field],
    name: &str,
    new: &str,
) -> Result<(), EditError> {
    let (slot, max) = text_slot(&*tx, kind, fields, name)?;
    check_text_size(&slot.path, new.len(), max)?;
    let text = slot.object(tx)?;
    tx.update_text(&text, new)
        .map_err(|e| EditError::automerge("written", e))
}

/// Replaces a text object's content through a character diff.
pub(crate) fn replace_text<T: Transactable>(
    tx: &mut T,
    text: &ObjId,
    path: &str,
    max: usize,
    new: &str,
) -> Result<(), EditError> {
    check_text_size(path, new.len(), max)?;
    tx.update_text(text, new)
        .map_err(|e| EditError::automerge("written", e))
}

/// Appends to a text field, verbatim.
fn append_text_field<T: Transactable>(
    tx: &mut T,
    kind: DocKind,
    fields: &'static [Field],
    name: &str,
    more: &str,
) -> Result<(), EditError> {
    let (slot, max) = text_slot(&*tx, kind, fields, name)?;
    let current = match slot.existing(&*tx)? {
        Some(text) => tx
            .text(&text)
            .map_err(|e| EditError::automerge("read", e))?
            .len(),
        None => 0,
    };
    check_text_size(&slot.path, current + more.len(), max)?;
    let text = slot.object(tx)?;
    let end = tx.length(&text);
    tx.splice_text(&text, end, 0, more)
        .map_err(|e| EditError::automerge("written", e))
}

/// The slot of a top-level list field, with its limit, item type and whether it is a set.
fn list_slot<T: Transactable>(
    tx: &T,
    kind: DocKind,
    fields: &'static [Field],
    name: &str,
) -> Result<(Slot, usize, &'static FieldType, bool), EditError> {
    let slot = resolve(tx, kind, fields, name)?;
    match slot.ty {
        FieldType::List { max, item, unique } => Ok((slot, *max, *item, *unique)),
        other => Err(EditError::WrongEdit {
            field: slot.path.clone(),
            shape: other.describe(),
            hint: format!(
                "only lists take --add and --remove; give it a value with --set {}=VALUE",
                slot.path
            ),
        }),
    }
}

/// A top-level list field, if the document has it (for edits that only read or remove).
pub(crate) fn existing_list<T: Transactable>(
    tx: &T,
    kind: DocKind,
    fields: &'static [Field],
    name: &str,
) -> Result<Option<ObjId>, EditError> {
    let (slot, ..) = list_slot(tx, kind, fields, name)?;
    slot.existing(tx)
}

/// A top-level list field with its limit, created if missing; call once the edit is checked.
pub(crate) fn list_field<T: Transactable>(
    tx: &mut T,
    kind: DocKind,
    fields: &'static [Field],
    name: &str,
) -> Result<(ObjId, usize), EditError> {
    let (slot, max, ..) = list_slot(&*tx, kind, fields, name)?;
    Ok((slot.object(tx)?, max))
}

/// The string rule of a list of strings, or the error for another kind of list.
fn string_items(field: &str, item: &FieldType) -> Result<(usize, StrCheck), EditError> {
    match item {
        FieldType::Str { max, check } => Ok((*max, *check)),
        _ => Err(not_a_scalar_list(field)),
    }
}

/// The error for adding or removing a plain item on a list of records or texts.
fn not_a_scalar_list(field: &str) -> EditError {
    EditError::WrongEdit {
        field: field.to_string(),
        shape: "a list of entries",
        hint: list_edits(field),
    }
}

/// How a list of records or texts is edited, by the flags a person types.
fn list_edits(field: &str) -> String {
    match field {
        "steps" => "it has edits of its own: --step TEXT adds one, --edit-step N=TEXT rewrites one, --move-step FROM=TO, --remove-step N",
        "bom" => "it has edits of its own: --bom-line \"name;quantity;unit;sourcing;reference\" adds a line, --remove-bom-line N removes one",
        "parts" => "it has edits of its own: --part \"name;material;quantity\" adds one",
        "contributors" => "it has edits of its own: --contributor NAME[:ROLE] credits one",
        "related" => "it has edits of its own: --related KIND=ID links a design",
        "outcomes" => "it has edits of its own: --outcome KIND[:DETAIL] records one",
        "built" => "it has an edit of its own: --built [PLACE] records that you built it",
        _ => "it has edits of its own (see --help)",
    }
    .to_string()
}

/// Adds a string to a list; a set ignores an item it already holds.
fn add_item<T: Transactable>(
    tx: &mut T,
    kind: DocKind,
    fields: &'static [Field],
    field: &str,
    raw: &str,
) -> Result<(), EditError> {
    let (slot, max, item, unique) = list_slot(&*tx, kind, fields, field)?;
    let (item_max, check) = string_items(field, item)?;
    let value = match raw.trim() {
        "" => String::new(),
        _ => check_str(field, item_max, check, raw)?,
    };
    if value.is_empty() {
        return Err(ValueError::Empty {
            field: field.to_string(),
        }
        .into());
    }
    if let Some(list) = slot.existing(&*tx)? {
        let view = View::new(&*tx, None);
        let count = view.length(&list);
        let same = |held: &str| match check {
            StrCheck::Tag => super::same_tag(held, &value),
            _ => held == value,
        };
        if unique && (0..count).any(|i| view.str(&list, i).is_some_and(|held| same(&held))) {
            return Ok(());
        }
        if count >= max {
            return Err(EditError::Full {
                field: field.to_string(),
                max,
            });
        }
    }
    let list = slot.object(tx)?;
    let end = tx.length(&list);
    tx.insert(&list, end, value)
        .map_err(|e| EditError::automerge("written", e))
}

/// Removes every copy of a string from a list (merges can leave more than one).
fn remove_item<T: Transactable>(
    tx: &mut T,
    kind: DocKind,
    fields: &'static [Field],
    field: &str,
    raw: &str,
) -> Result<(), EditError> {
    let (slot, _, item, _) = list_slot(&*tx, kind, fields, field)?;
    let (item_max, check) = string_items(field, item)?;
    // Normalise like add does ("Demo" finds "demo"), but still find values an older rule let in.
    let wanted = check_str(field, item_max, check, raw).unwrap_or_else(|_| raw.trim().to_string());
    let list = slot.existing(&*tx)?;
    let hits: Vec<usize> = match &list {
        Some(list) => {
            let view = View::new(&*tx, None);
            let same = |held: &str| match check {
                StrCheck::Tag => super::same_tag(held, &wanted),
                _ => held == wanted,
            };
            (0..view.length(list))
                .filter(|i| view.str(list, *i).is_some_and(|held| same(&held)))
                .collect()
        }
        None => Vec::new(),
    };
    let Some(list) = list.filter(|_| !hits.is_empty()) else {
        return Err(EditError::NoSuchItem {
            field: field.to_string(),
            item: wanted,
        });
    };
    for index in hits.into_iter().rev() {
        tx.delete(&list, index)
            .map_err(|e| EditError::automerge("written", e))?;
    }
    Ok(())
}

/// Appends a map entry with the given (already checked) scalar parts to a top-level list of entries.
pub(crate) fn append_entry<T: Transactable>(
    tx: &mut T,
    kind: DocKind,
    fields: &'static [Field],
    field: &str,
    parts: Vec<(&str, ScalarValue)>,
) -> Result<(), EditError> {
    let (slot, max, ..) = list_slot(&*tx, kind, fields, field)?;
    let count = slot.existing(&*tx)?.map_or(0, |list| tx.length(&list));
    if count >= max {
        return Err(EditError::Full {
            field: field.to_string(),
            max,
        });
    }
    let list = slot.object(tx)?;
    let written = |e| EditError::automerge("written", e);
    let entry = tx
        .insert_object(&list, count, ObjType::Map)
        .map_err(written)?;
    for (key, value) in parts {
        tx.put(&entry, key, value).map_err(written)?;
    }
    Ok(())
}

/// Checks a 1-based position of an existing entry and returns its index.
pub(crate) fn entry_index(field: &str, position: usize, count: usize) -> Result<usize, EditError> {
    if position == 0 || position > count {
        Err(EditError::NoSuchEntry {
            field: field.to_string(),
            position,
            count,
        })
    } else {
        Ok(position - 1)
    }
}

/// Reads one string part of each entry of a list of entries (`None` where absent or mistyped).
pub(crate) fn entry_strs<T: Transactable>(
    tx: &T,
    list: Option<&ObjId>,
    key: &str,
) -> Vec<Option<String>> {
    let Some(list) = list else {
        return Vec::new();
    };
    let view = View::new(tx, None);
    (0..view.length(list))
        .map(|i| {
            view.obj(list, i, ObjType::Map)
                .and_then(|entry| view.str(&entry, key))
        })
        .collect()
}

/// Checks a short optional string and turns it into its stored part.
pub(crate) fn opt_part(
    path: &str,
    key: &'static str,
    max: usize,
    check: StrCheck,
    value: &Option<String>,
) -> Result<Option<(&'static str, ScalarValue)>, EditError> {
    match value {
        None => Ok(None),
        Some(raw) => {
            let v = check_str(&join(path, key), max, check, raw)?;
            Ok((!v.is_empty()).then(|| (key, ScalarValue::Str(v.into()))))
        }
    }
}

/// Applies the edits every kind shares; kind-specific edits get `NotForKind`.
pub(crate) fn apply_generic<T: Transactable>(
    tx: &mut T,
    kind: DocKind,
    fields: &'static [Field],
    edit: &Edit,
) -> Result<(), EditError> {
    super::rules::check_keeps_required(kind, edit)?;
    match edit {
        Edit::Set { field, value } => {
            let slot = resolve(&*tx, kind, fields, field)?;
            set(tx, &slot, value)
        }
        Edit::Unset { field } => {
            let slot = resolve(&*tx, kind, fields, field)?;
            unset(tx, &slot)
        }
        Edit::ReplaceText { field, text } => replace_text_field(tx, kind, fields, field, text),
        Edit::AppendText { field, text } => append_text_field(tx, kind, fields, field, text),
        Edit::AddItem { field, item } => add_item(tx, kind, fields, field, item),
        Edit::RemoveItem { field, item } => remove_item(tx, kind, fields, field, item),
        other => Err(EditError::NotForKind {
            edit: other.name(),
            applies_to: other.only_for().unwrap_or(kind),
            kind,
        }),
    }
}

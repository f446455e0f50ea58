//! A design: one farm tool as the commons holds it.
//!
//! Fields follow the union of Farm Hack's tool page, L'Atelier Paysan's
//! machine page and the Open Know-How manifest, so a design can be exported to
//! either community or to `okh.toml` without losing anything.
//!
//! Build steps are a list of text objects rather than one long text, so two
//! people rewriting different steps (or different sentences of one step)
//! offline merge cleanly, and steps can be added concurrently.

use super::edit::{check_name, check_optional, BomLine, Edit, EditContext};
use super::error::{EditError, SchemaError};
use super::read::View;
use super::spec::{
    check_key, check_str, choice_field, describe_value, id_field, list_field, num_field, str_field,
    text_field, Field, FieldType, KeyRule, StrCheck,
};
use super::write::{
    append_entry, apply_generic, check_text_size, entry_index, entry_strs, existing_list,
    field_obj, list_field as list_obj, opt_part, replace_text,
};
use super::{
    DocKind, MAX_ID_BYTES, MAX_LIST_ITEMS, MAX_MAP_ENTRIES, MAX_RELEASE_HEADS, MAX_STEP_BYTES,
    MAX_STR_BYTES, MAX_TAGS, MAX_TAG_BYTES, MAX_TEXT_BYTES, MAX_TITLE_BYTES,
};
use crate::licence::MAX_LICENCE_BYTES;
use automerge::transaction::Transactable;
use automerge::{ChangeHash, ObjId, ObjType, ScalarValue, ROOT};
use std::str::FromStr;

/// How far along a design is (Farm Hack's newer scale, plus `idea` and `commercial`).
pub const STAGES: &[&str] = &[
    "idea",
    "concept",
    "prototype",
    "functional-prototype",
    "production-ready",
    "in-use",
    "commercial",
];

/// How another design relates to this one (Farm Hack's four kinds).
pub const RELATIONS: &[&str] = &["component", "assembly", "branch", "merge"];

/// Field names of a design, in display order.
pub const NAMES: &[&str] = &[
    "name",
    "summary",
    "problem",
    "how_it_works",
    "intended_use",
    "tags",
    "stage",
    "licence",
    "licensor",
    "contributors",
    "documentation_language",
    "version",
    "derivative_of",
    "variant_of",
    "related",
    "parts",
    "bom",
    "tools",
    "skills",
    "steps",
    "user_manual",
    "safety",
    "build_facts",
    "external_ids",
    "built",
    "releases",
    "files",
];

const TAG: FieldType = super::TAG_ITEM;
const NAMED_THING: FieldType = FieldType::Str {
    max: MAX_TITLE_BYTES,
    check: StrCheck::Free,
};
const STEP: FieldType = FieldType::Text {
    max: MAX_STEP_BYTES,
};
const LICENCE: FieldType = FieldType::Str {
    max: MAX_LICENCE_BYTES,
    check: StrCheck::Spdx,
};
const HEAD: FieldType = FieldType::Str {
    max: 64,
    check: StrCheck::Hash,
};
const EXTERNAL_ID: FieldType = FieldType::Str {
    max: MAX_STR_BYTES,
    check: StrCheck::Free,
};
const CONTRIBUTOR: FieldType = FieldType::Record(&[
    str_field("name", MAX_TITLE_BYTES),
    str_field("role", MAX_TITLE_BYTES),
]);
const RELATED: FieldType =
    FieldType::Record(&[choice_field("kind", RELATIONS), id_field("design")]);
const PART: FieldType = FieldType::Record(&[
    str_field("name", MAX_TITLE_BYTES),
    str_field("material", MAX_STR_BYTES),
    num_field("quantity", 0.0, super::edit::MAX_QUANTITY, false),
]);
const BOM_LINE: FieldType = FieldType::Record(&[
    str_field("name", MAX_TITLE_BYTES),
    num_field("quantity", 0.0, super::edit::MAX_QUANTITY, false),
    str_field("unit", MAX_TAG_BYTES),
    str_field("sourcing", MAX_STR_BYTES),
    str_field("reference", MAX_STR_BYTES),
]);
const BUILT: FieldType = FieldType::Record(&[
    str_field("by", MAX_ID_BYTES),
    num_field("at", i64::MIN as f64, i64::MAX as f64, true),
    str_field("place", MAX_STR_BYTES),
    str_field("note", MAX_STR_BYTES),
    // The farmOS equipment asset the builder's farm keeps for it (fifth release); the farm's
    // URL and the serial number only when the builder made them public.
    str_field("farmos_asset", MAX_TAG_BYTES),
    str_field("model", MAX_TITLE_BYTES),
    str_field("farm_url", MAX_STR_BYTES),
    str_field("serial", MAX_TITLE_BYTES),
]);
const RELEASE: FieldType = FieldType::Record(&[
    list_field("heads", MAX_RELEASE_HEADS, &HEAD, false),
    num_field("at", i64::MIN as f64, i64::MAX as f64, true),
    str_field("by", MAX_ID_BYTES),
]);
const RELEASES: FieldType = FieldType::MapOf {
    max: MAX_LIST_ITEMS,
    key: KeyRule::Label,
    value: &RELEASE,
};

/// The design's field table.
pub(crate) static FIELDS: &[Field] = &[
    str_field("name", MAX_TITLE_BYTES),
    text_field("summary", MAX_TEXT_BYTES),
    text_field("problem", MAX_TEXT_BYTES),
    text_field("how_it_works", MAX_TEXT_BYTES),
    text_field("intended_use", MAX_TEXT_BYTES),
    list_field("tags", MAX_TAGS, &TAG, true),
    choice_field("stage", STAGES),
    Field {
        name: "licence",
        ty: FieldType::Record(&[
            Field {
                name: "hardware",
                ty: LICENCE,
            },
            Field {
                name: "documentation",
                ty: LICENCE,
            },
            Field {
                name: "software",
                ty: LICENCE,
            },
        ]),
    },
    str_field("licensor", MAX_TITLE_BYTES),
    list_field("contributors", MAX_LIST_ITEMS, &CONTRIBUTOR, false),
    str_field("documentation_language", MAX_TAG_BYTES),
    str_field("version", MAX_TAG_BYTES),
    id_field("derivative_of"),
    id_field("variant_of"),
    list_field("related", MAX_LIST_ITEMS, &RELATED, false),
    list_field("parts", MAX_LIST_ITEMS, &PART, false),
    list_field("bom", MAX_LIST_ITEMS, &BOM_LINE, false),
    list_field("tools", MAX_LIST_ITEMS, &NAMED_THING, true),
    list_field("skills", MAX_LIST_ITEMS, &NAMED_THING, true),
    list_field("steps", MAX_LIST_ITEMS, &STEP, false),
    text_field("user_manual", MAX_TEXT_BYTES),
    text_field("safety", MAX_TEXT_BYTES),
    Field {
        name: "build_facts",
        ty: FieldType::Record(&[
            num_field("workshop_days", 0.0, 365.0, false),
            num_field("participants", 0.0, 10_000.0, true),
            num_field("weight_kg", 0.0, 1_000_000.0, false),
            str_field("special_tooling", MAX_STR_BYTES),
            str_field("prerequisites", MAX_STR_BYTES),
        ]),
    },
    Field {
        name: "external_ids",
        ty: FieldType::MapOf {
            max: MAX_MAP_ENTRIES,
            key: KeyRule::Slug,
            value: &EXTERNAL_ID,
        },
    },
    list_field("built", MAX_LIST_ITEMS, &BUILT, false),
    Field {
        name: "releases",
        ty: RELEASES,
    },
    crate::attachment::FILES_FIELD,
];

/// Writes the design's scalars of the skeleton (its objects are made generically).
pub(crate) fn init<T: Transactable>(tx: &mut T, name: &str) -> Result<(), SchemaError> {
    check_name("name", name)?;
    tx.put(ROOT, "name", name.trim())
        .map_err(|e| SchemaError::automerge("written", e))
}

/// Applies an edit to a design: its own edits here, the rest through the generic writer.
pub(crate) fn apply<T: Transactable>(
    tx: &mut T,
    edit: &Edit,
    ctx: &EditContext,
) -> Result<(), EditError> {
    let kind = DocKind::Design;
    match edit {
        Edit::Set { field, .. } | Edit::Unset { field } if is_release_path(field) => {
            Err(EditError::WrongEdit {
                field: field.clone(),
                shape: "a map of releases",
                hint: "a release is made once, with `hedgerow design release ID --version V`, and never changes"
                    .to_string(),
            })
        }
        Edit::AddStep { text, at } => {
            add_step(tx, text, *at)?;
            // Files on the steps after the new one move down with them.
            match at {
                Some(at) => {
                    let at = *at as u64;
                    super::files::renumber_steps(tx, |s| Some(if s >= at { s + 1 } else { s }))
                }
                None => Ok(()),
            }
        }
        Edit::EditStep { step, text } => {
            if text.trim().is_empty() {
                return Err(EditError::EmptyStep { step: Some(*step) });
            }
            check_text_size(&format!("steps.{step}"), text.len(), MAX_STEP_BYTES)?;
            let steps = present(tx, "steps")?;
            let index = step_index(count(tx, &steps), *step)?;
            let obj = step_obj(tx, steps.as_ref(), index, *step)?;
            replace_text(tx, &obj, &format!("steps.{step}"), MAX_STEP_BYTES, text)
        }
        Edit::RemoveStep { step } => {
            let steps = present(tx, "steps")?;
            let index = step_index(count(tx, &steps), *step)?;
            delete_at(tx, steps.as_ref(), index)?;
            let gone = *step as u64;
            super::files::renumber_steps(tx, |s| match s.cmp(&gone) {
                std::cmp::Ordering::Less => Some(s),
                std::cmp::Ordering::Equal => None,
                std::cmp::Ordering::Greater => Some(s - 1),
            })
        }
        Edit::MoveStep { from, to } => {
            move_step(tx, *from, *to)?;
            let (from, to) = (*from as u64, *to as u64);
            super::files::renumber_steps(tx, |s| {
                Some(if s == from {
                    to
                } else if from < to && s > from && s <= to {
                    s - 1
                } else if from > to && s >= to && s < from {
                    s + 1
                } else {
                    s
                })
            })
        }
        Edit::AddBomLine { line } => {
            let parts = bom_parts(line)?;
            append_entry(tx, kind, FIELDS, "bom", parts)
        }
        Edit::EditBomLine { position, line } => edit_bom_line(tx, *position, line),
        Edit::AddPart { part } => {
            part.check()?;
            let mut parts = vec![("name", ScalarValue::Str(part.name.trim().into()))];
            let material = &part.material;
            parts.extend(opt_part(
                "parts",
                "material",
                MAX_STR_BYTES,
                StrCheck::Free,
                material,
            )?);
            parts.extend(part.quantity.map(|q| ("quantity", quantity(q))));
            append_entry(tx, kind, FIELDS, "parts", parts)
        }
        Edit::RemoveBomLine { position } => remove_entry(tx, "bom", *position),
        Edit::RemovePart { position } => remove_entry(tx, "parts", *position),
        Edit::AddContributor { name, role } => {
            check_name("contributors.name", name)?;
            check_optional("contributors.role", role)?;
            let name = name.trim().to_string();
            let role = role.as_deref().map(str::trim).filter(|r| !r.is_empty());
            let list = present(tx, "contributors")?;
            let names = entry_strs(tx, list.as_ref(), "name");
            let roles = entry_strs(tx, list.as_ref(), "role");
            let known = names
                .iter()
                .zip(&roles)
                .any(|(n, r)| n.as_deref() == Some(name.as_str()) && r.as_deref() == role);
            if known {
                return Ok(());
            }
            let mut parts = vec![("name", ScalarValue::Str(name.into()))];
            parts.extend(role.map(|r| ("role", ScalarValue::Str(r.into()))));
            append_entry(tx, kind, FIELDS, "contributors", parts)
        }
        Edit::RemoveContributor { name } => {
            let name = name.trim();
            let list = present(tx, "contributors")?;
            let hits = entry_strs(tx, list.as_ref(), "name")
                .into_iter()
                .map(|n| n.as_deref() == Some(name))
                .collect();
            remove_hits(tx, list.as_ref(), "contributors", name, hits)
        }
        Edit::AddRelated { relation, design } => {
            let (relation, design) = related_pair(relation, design)?;
            let list = present(tx, "related")?;
            if related_hits(tx, list.as_ref(), &relation, &design).contains(&true) {
                return Ok(());
            }
            let parts = vec![
                ("kind", ScalarValue::Str(relation.into())),
                ("design", ScalarValue::Str(design.into())),
            ];
            append_entry(tx, kind, FIELDS, "related", parts)
        }
        Edit::RemoveRelated { relation, design } => {
            let (relation, design) = related_pair(relation, design)?;
            let list = present(tx, "related")?;
            let hits = related_hits(tx, list.as_ref(), &relation, &design);
            let item = format!("{relation} {design}");
            remove_hits(tx, list.as_ref(), "related", &item, hits)
        }
        Edit::AddBuilt { place, note } => {
            let mut parts = vec![
                ("by", ScalarValue::Str(ctx.author.as_str().into())),
                ("at", ScalarValue::Int(ctx.now_unix)),
            ];
            parts.extend(opt_part(
                "built",
                "place",
                MAX_STR_BYTES,
                StrCheck::Free,
                place,
            )?);
            parts.extend(opt_part(
                "built",
                "note",
                MAX_STR_BYTES,
                StrCheck::Free,
                note,
            )?);
            append_entry(tx, kind, FIELDS, "built", parts)
        }
        Edit::AddBuiltAsset { place, note, asset } => {
            let mut parts = vec![
                ("by", ScalarValue::Str(ctx.author.as_str().into())),
                ("at", ScalarValue::Int(ctx.now_unix)),
            ];
            for (key, max, value) in [
                ("place", MAX_STR_BYTES, place),
                ("note", MAX_STR_BYTES, note),
                ("farmos_asset", MAX_TAG_BYTES, &Some(asset.uuid.clone())),
                ("model", MAX_TITLE_BYTES, &asset.model),
                ("farm_url", MAX_STR_BYTES, &asset.farm_url),
                ("serial", MAX_TITLE_BYTES, &asset.serial),
            ] {
                parts.extend(opt_part("built", key, max, StrCheck::Free, value)?);
            }
            append_entry(tx, kind, FIELDS, "built", parts)
        }
        Edit::RemoveBuilt { position } => {
            let list = present(tx, "built")?;
            let authors = entry_strs(tx, list.as_ref(), "by");
            let index = entry_index("built", *position, authors.len())?;
            match authors.get(index).cloned().flatten() {
                Some(by) if by == ctx.author => delete_at(tx, list.as_ref(), index),
                other => Err(EditError::NotYours {
                    field: "built".to_string(),
                    position: *position,
                    by: other.unwrap_or_else(|| "an unknown author".to_string()),
                }),
            }
        }
        Edit::Release { version, heads } => release(tx, version, heads, ctx),
        generic => apply_generic(tx, kind, FIELDS, generic),
    }
}

/// The parts of a bill-of-materials line as stored, checked; absent parts left out.
fn bom_parts(line: &BomLine) -> Result<Vec<(&'static str, ScalarValue)>, EditError> {
    line.check()?;
    let mut parts = vec![("name", ScalarValue::Str(line.name.trim().into()))];
    parts.extend(line.quantity.map(|q| ("quantity", quantity(q))));
    for (key, max, value) in [
        ("unit", MAX_TAG_BYTES, &line.unit),
        ("sourcing", MAX_STR_BYTES, &line.sourcing),
        ("reference", MAX_STR_BYTES, &line.reference),
    ] {
        parts.extend(opt_part("bom", key, max, StrCheck::Free, value)?);
    }
    Ok(parts)
}

/// Rewrites BOM line `position` key by key: only the parts that differ are written, so a
/// concurrent edit of another part of the same line (or of another line) survives the merge.
fn edit_bom_line<T: Transactable>(
    tx: &mut T,
    position: usize,
    line: &BomLine,
) -> Result<(), EditError> {
    let parts = bom_parts(line)?;
    let list = present(tx, "bom")?;
    let index = entry_index("bom", position, count(tx, &list))?;
    let entry = list
        .as_ref()
        .and_then(|list| View::new(&*tx, None).obj(list, index, ObjType::Map))
        .ok_or_else(|| SchemaError::WrongType {
            path: format!("bom.{position}"),
            expected: BOM_LINE.describe(),
            found: "something else".to_string(),
        })?;
    let written = |e| EditError::automerge("written", e);
    for key in ["name", "quantity", "unit", "sourcing", "reference"] {
        let current = tx
            .get(&entry, key)
            .map_err(|e| EditError::automerge("read", e))?;
        match parts.iter().find(|(k, _)| *k == key) {
            Some((_, value)) => {
                let same = matches!(&current, Some((automerge::Value::Scalar(old), _)) if old.as_ref() == value);
                if !same {
                    tx.put(&entry, key, value.clone()).map_err(written)?;
                }
            }
            None if current.is_some() => tx.delete(&entry, key).map_err(written)?,
            None => {}
        }
    }
    Ok(())
}

/// Whether a path names the releases or a part of one.
fn is_release_path(field: &str) -> bool {
    field == "releases" || field.starts_with("releases.")
}

/// A quantity in its stored form (whole numbers as integers).
fn quantity(q: f64) -> ScalarValue {
    super::spec::number_value("quantity", f64::MIN, f64::MAX, false, q)
        .unwrap_or(ScalarValue::F64(q))
}

/// Checks a 1-based step number against the step count.
fn step_index(count: usize, step: usize) -> Result<usize, EditError> {
    if step == 0 || step > count {
        Err(EditError::NoSuchStep { step, count })
    } else {
        Ok(step - 1)
    }
}

/// A design's list field, if the document has it.
fn present<T: Transactable>(tx: &T, name: &str) -> Result<Option<ObjId>, EditError> {
    existing_list(tx, DocKind::Design, FIELDS, name)
}

/// The length of a list that may be absent.
fn count<T: Transactable>(tx: &T, list: &Option<ObjId>) -> usize {
    list.as_ref().map_or(0, |l| tx.length(l))
}

/// Deletes an element already checked to exist.
fn delete_at<T: Transactable>(
    tx: &mut T,
    list: Option<&ObjId>,
    index: usize,
) -> Result<(), EditError> {
    match list {
        Some(list) => tx
            .delete(list, index)
            .map_err(|e| EditError::automerge("written", e)),
        None => Ok(()),
    }
}

/// The text object of an existing step.
fn step_obj<T: Transactable>(
    tx: &T,
    steps: Option<&ObjId>,
    index: usize,
    step: usize,
) -> Result<ObjId, EditError> {
    let found = steps.map(|steps| tx.get(steps, index));
    match found {
        Some(Ok(Some((automerge::Value::Object(ObjType::Text), id)))) => Ok(id),
        other => Err(SchemaError::WrongType {
            path: format!("steps.{step}"),
            expected: STEP.describe(),
            found: match other {
                Some(Ok(Some((value, _)))) => describe_value(&value),
                _ => "nothing".to_string(),
            },
        }
        .into()),
    }
}

/// Inserts a new step as its own text object, so later edits to it merge per character.
fn add_step<T: Transactable>(tx: &mut T, text: &str, at: Option<usize>) -> Result<(), EditError> {
    if text.trim().is_empty() {
        return Err(EditError::EmptyStep { step: None });
    }
    check_text_size("steps", text.len(), MAX_STEP_BYTES)?;
    let count = count(tx, &present(tx, "steps")?);
    let index = match at {
        None => count,
        Some(p) if p >= 1 && p <= count + 1 => p - 1,
        Some(position) => {
            return Err(EditError::BadPosition {
                field: "steps".to_string(),
                position,
                count,
            })
        }
    };
    let (steps, max) = list_obj(tx, DocKind::Design, FIELDS, "steps")?;
    if count >= max {
        return Err(EditError::Full {
            field: "steps".to_string(),
            max,
        });
    }
    let written = |e| EditError::automerge("written", e);
    let obj = tx
        .insert_object(&steps, index, ObjType::Text)
        .map_err(written)?;
    tx.splice_text(&obj, 0, 0, text).map_err(written)
}

/// Moves a step by re-inserting its text.
///
/// automerge lists have no move, so a step is deleted and re-created: an
/// offline edit to that same step made concurrently with the move is lost in
/// the merge, and its blame restarts at the move. Edits to other steps are
/// unaffected.
fn move_step<T: Transactable>(tx: &mut T, from: usize, to: usize) -> Result<(), EditError> {
    let steps = present(tx, "steps")?;
    let count = count(tx, &steps);
    let index = step_index(count, from)?;
    let target = step_index(count, to)?;
    let (Some(steps), false) = (steps, index == target) else {
        return Ok(());
    };
    let old = step_obj(tx, Some(&steps), index, from)?;
    let text = tx.text(&old).map_err(|e| EditError::automerge("read", e))?;
    let written = |e| EditError::automerge("written", e);
    tx.delete(&steps, index).map_err(written)?;
    let obj = tx
        .insert_object(&steps, target, ObjType::Text)
        .map_err(written)?;
    tx.splice_text(&obj, 0, 0, &text).map_err(written)
}

/// Removes the entry at a 1-based position of a list of entries.
fn remove_entry<T: Transactable>(
    tx: &mut T,
    field: &str,
    position: usize,
) -> Result<(), EditError> {
    let list = present(tx, field)?;
    let index = entry_index(field, position, count(tx, &list))?;
    delete_at(tx, list.as_ref(), index)
}

/// Removes every entry picked by `hits` (merges can duplicate entries).
fn remove_hits<T: Transactable>(
    tx: &mut T,
    list: Option<&ObjId>,
    field: &str,
    item: &str,
    hits: Vec<bool>,
) -> Result<(), EditError> {
    let picked: Vec<usize> = hits
        .into_iter()
        .enumerate()
        .filter_map(|(i, hit)| hit.then_some(i))
        .collect();
    if picked.is_empty() {
        return Err(EditError::NoSuchItem {
            field: field.to_string(),
            item: item.to_string(),
        });
    }
    for index in picked.into_iter().rev() {
        delete_at(tx, list, index)?;
    }
    Ok(())
}

/// Checks a relation and a design id.
fn related_pair(relation: &str, design: &str) -> Result<(String, String), EditError> {
    Ok((
        check_str(
            "related.kind",
            MAX_TAG_BYTES,
            StrCheck::OneOf(RELATIONS),
            relation,
        )?,
        check_str("related.design", MAX_ID_BYTES, StrCheck::DocId, design)?,
    ))
}

/// Which entries of `related` are this relation to this design.
fn related_hits<T: Transactable>(
    tx: &T,
    list: Option<&ObjId>,
    relation: &str,
    design: &str,
) -> Vec<bool> {
    entry_strs(tx, list, "kind")
        .into_iter()
        .zip(entry_strs(tx, list, "design"))
        .map(|(k, d)| k.as_deref() == Some(relation) && d.as_deref() == Some(design))
        .collect()
}

/// Writes an immutable release pinning the given heads.
fn release<T: Transactable>(
    tx: &mut T,
    version: &str,
    heads: &[String],
    ctx: &EditContext,
) -> Result<(), EditError> {
    let version = version.trim();
    check_key("releases", KeyRule::Label, version)?;
    let mut pinned: Vec<String> = Vec::new();
    for head in heads {
        let hex = check_str("releases.heads", 64, StrCheck::Hash, head)?;
        let known = ChangeHash::from_str(&hex)
            .ok()
            .and_then(|h| tx.get_change_by_hash(&h))
            .is_some();
        if !known {
            return Err(EditError::UnknownHead {
                version: version.to_string(),
                head: hex,
            });
        }
        if !pinned.contains(&hex) {
            pinned.push(hex);
        }
    }
    if pinned.is_empty() {
        return Err(EditError::ReleaseWithoutHeads {
            version: version.to_string(),
        });
    }
    if pinned.len() > MAX_RELEASE_HEADS {
        return Err(EditError::Full {
            field: "releases.heads".to_string(),
            max: MAX_RELEASE_HEADS,
        });
    }
    let releases = field_obj(tx, &ROOT, "releases", "releases", &RELEASES)?;
    let view = View::new(&*tx, None);
    if view.get(&releases, version).is_some() {
        return Err(EditError::ReleaseExists {
            version: version.to_string(),
        });
    }
    if view.keys(&releases).len() >= MAX_LIST_ITEMS {
        return Err(EditError::Full {
            field: "releases".to_string(),
            max: MAX_LIST_ITEMS,
        });
    }
    let written = |e| EditError::automerge("written", e);
    let entry = tx
        .put_object(&releases, version, ObjType::Map)
        .map_err(written)?;
    let list = tx
        .put_object(&entry, "heads", ObjType::List)
        .map_err(written)?;
    for (index, hex) in pinned.into_iter().enumerate() {
        tx.insert(&list, index, hex).map_err(written)?;
    }
    tx.put(&entry, "at", ctx.now_unix).map_err(written)?;
    tx.put(&entry, "by", ctx.author.as_str()).map_err(written)
}

//! The two file edits (attach, detach), shared by designs and notes.
//!
//! The node stores a file's bytes first and then records its description here; these edits
//! only ever touch the `files` list (see [`crate::attachment`]).

use super::edit::{Edit, EditContext};
use super::error::EditError;
use super::write::{append_entry, entry_strs, existing_list};
use super::DocKind;
use crate::attachment::{
    carries_files, check_name, check_role, validate_new_file, AttachmentError,
};
use automerge::transaction::Transactable;
use automerge::{ObjType, ScalarValue, ROOT};

/// Applies a file edit; `None` when `edit` is not one.
pub(crate) fn apply<T: Transactable>(
    tx: &mut T,
    kind: DocKind,
    edit: &Edit,
    ctx: &EditContext,
) -> Option<Result<(), EditError>> {
    if !matches!(edit, Edit::AddFile { .. } | Edit::RemoveFile { .. }) {
        return None;
    }
    if !carries_files(kind) {
        return Some(Err(EditError::NotForKind {
            edit: edit.name(),
            applies_to: DocKind::Design,
            kind,
        }));
    }
    Some(match edit {
        Edit::AddFile { file } => add(tx, kind, file, ctx),
        Edit::RemoveFile { name, hash } => remove(tx, kind, name, &hash.to_hex()),
        _ => Ok(()),
    })
}

fn add<T: Transactable>(
    tx: &mut T,
    kind: DocKind,
    file: &crate::attachment::NewFile,
    ctx: &EditContext,
) -> Result<(), EditError> {
    validate_new_file(file)?;
    let name = check_name(&file.name)?;
    let role = check_role(&file.role)?;
    if let Some(step) = file.step {
        if kind != DocKind::Design {
            return Err(EditError::WrongEdit {
                field: "files.step".to_string(),
                shape: "a design's build step",
                hint: "only designs have build steps; attach the file without a step".to_string(),
            });
        }
        let count = tx
            .get(ROOT, "steps")
            .ok()
            .flatten()
            .and_then(|(value, obj)| {
                matches!(value, automerge::Value::Object(ObjType::List)).then_some(obj)
            })
            .map_or(0, |steps| tx.length(&steps));
        if step == 0 || step > count {
            return Err(EditError::NoSuchStep { step, count });
        }
    }
    let fields = kind.fields();
    let list = existing_list(&*tx, kind, fields, "files")?;
    let names = entry_strs(&*tx, list.as_ref(), "name");
    let hashes = entry_strs(&*tx, list.as_ref(), "hash");
    let hex = file.hash.to_hex();
    for (n, h) in names.iter().zip(&hashes) {
        if n.as_deref() == Some(name.as_str()) {
            if h.as_deref() == Some(hex.as_str()) {
                // The same file under the same name: attaching it again changes nothing.
                return Ok(());
            }
            return Err(AttachmentError::NameTaken {
                name,
                hash: h.as_deref().unwrap_or("?").chars().take(12).collect(),
            }
            .into());
        }
    }
    let mut parts = vec![
        ("name", ScalarValue::Str(name.into())),
        (
            "media_type",
            ScalarValue::Str(file.media_type.as_str().into()),
        ),
        // Whole numbers are stored as integers, as every number field is.
        ("size", ScalarValue::Int(file.size as i64)),
        ("hash", ScalarValue::Str(hex.into())),
        ("role", ScalarValue::Str(role.into())),
        ("by", ScalarValue::Str(ctx.author.as_str().into())),
        ("at", ScalarValue::Int(ctx.now_unix)),
    ];
    if let Some(caption) = file
        .caption
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty())
    {
        parts.push(("caption", ScalarValue::Str(caption.into())));
    }
    if let Some(step) = file.step {
        parts.push(("step", ScalarValue::Int(step as i64)));
    }
    append_entry(tx, kind, fields, "files", parts)
}

fn remove<T: Transactable>(
    tx: &mut T,
    kind: DocKind,
    name: &str,
    hex: &str,
) -> Result<(), EditError> {
    let list = existing_list(&*tx, kind, kind.fields(), "files")?;
    let names = entry_strs(&*tx, list.as_ref(), "name");
    let hashes = entry_strs(&*tx, list.as_ref(), "hash");
    let hits: Vec<usize> = names
        .iter()
        .zip(&hashes)
        .enumerate()
        .filter(|(_, (n, h))| n.as_deref() == Some(name) && h.as_deref() == Some(hex))
        .map(|(i, _)| i)
        .collect();
    let Some(list) = list.filter(|_| !hits.is_empty()) else {
        return Err(AttachmentError::NoSuchFile {
            given: name.to_string(),
        }
        .into());
    };
    for index in hits.into_iter().rev() {
        tx.delete(&list, index)
            .map_err(|e| EditError::automerge("written", e))?;
    }
    Ok(())
}

/// Keeps files on the build step they illustrate when steps are added, removed or moved:
/// `map` gives each old 1-based step number its new one (`None`: the step is gone, and the file
/// stays on the design without a step).
pub(crate) fn renumber_steps<T: Transactable>(
    tx: &mut T,
    map: impl Fn(u64) -> Option<u64>,
) -> Result<(), EditError> {
    let Ok(Some((automerge::Value::Object(ObjType::List), list))) = tx.get(ROOT, "files") else {
        return Ok(());
    };
    let written = |e| EditError::automerge("written", e);
    for index in 0..tx.length(&list) {
        let Ok(Some((automerge::Value::Object(ObjType::Map), entry))) = tx.get(&list, index) else {
            continue;
        };
        let step = match tx.get(&entry, "step") {
            Ok(Some((automerge::Value::Scalar(s), _))) => match s.as_ref() {
                ScalarValue::Int(n) => u64::try_from(*n).ok(),
                ScalarValue::Uint(n) => Some(*n),
                _ => None,
            },
            _ => None,
        };
        let Some(step) = step else { continue };
        match map(step) {
            Some(new) if new == step => {}
            Some(new) => tx
                .put(&entry, "step", ScalarValue::Int(new as i64))
                .map_err(written)?,
            None => tx.delete(&entry, "step").map_err(written)?,
        }
    }
    Ok(())
}

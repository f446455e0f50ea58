//! A profile: how an author presents themself to the commons.
//!
//! Only its owner may edit it (the replica enforces that); the schema keeps
//! it small because every node carries every profile.

use super::edit::Edit;
use super::error::{EditError, SchemaError};
use super::spec::{str_field, text_field, Field};
use super::write::apply_generic;
use super::{DocKind, MAX_BIO_BYTES, MAX_TITLE_BYTES};
use automerge::transaction::Transactable;
use automerge::ROOT;

/// Field names of a profile, in display order.
pub const NAMES: &[&str] = &["name", "location", "bio"];

/// The profile's field table.
pub(crate) static FIELDS: &[Field] = &[
    str_field("name", MAX_TITLE_BYTES),
    str_field("location", MAX_TITLE_BYTES),
    text_field("bio", MAX_BIO_BYTES),
];

/// Writes the profile's scalars of the skeleton.
pub(crate) fn init<T: Transactable>(tx: &mut T, name: &str) -> Result<(), SchemaError> {
    super::edit::check_name("name", name)?;
    tx.put(ROOT, "name", name.trim())
        .map_err(|e| SchemaError::automerge("written", e))
}

/// Applies an edit to a profile.
pub(crate) fn apply<T: Transactable>(tx: &mut T, edit: &Edit) -> Result<(), EditError> {
    apply_generic(tx, DocKind::Profile, FIELDS, edit)
}

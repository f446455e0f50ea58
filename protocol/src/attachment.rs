//! Attachments: the drawings, photos, plans and CAD files a design (or a build step, or a note)
//! carries, as the document records them.
//!
//! A document holds only each file's description (name, media type, size, BLAKE3 hash, role,
//! caption, who attached it and when) in its `files` list, signed like any other change; the
//! bytes live in the node's blob store, named by their hash, so a file used by many designs is
//! stored once and anything received can be checked against the hash the signed document gives.
//!
//! Pure: no I/O. The node hashes files while copying them ([`BlobHash`] wraps the result).
//!
//! Chunk-by-chunk verification for the network (BLAKE3's tree mode, with bao-tree proofs) lives
//! in `blob_transfer`; the blob store only needs whole-file verification, which
//! [`BlobHash::of`] and a streaming `blake3::Hasher` give.

use crate::schema::{self, DocKind, MAX_ID_BYTES, MAX_STR_BYTES, MAX_TAG_BYTES, MAX_TITLE_BYTES};
use automerge::{ChangeHash, ObjType, ReadDoc, ScalarValue, Value, ROOT};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// What a file is to the design, as the CLI's `--role` spells it.
pub const ROLES: &[&str] = &["drawing", "photo", "plan", "cad", "bom", "manual", "other"];

/// The role a file gets when none is given.
pub const DEFAULT_ROLE: &str = "other";

/// Largest size a document may record for one file (2^53, the largest whole number automerge's
/// JSON-compatible numbers hold exactly); node limits are far lower.
pub const MAX_RECORDED_SIZE: u64 = 1 << 53;

/// Longest media type, in bytes.
pub const MAX_MEDIA_TYPE_BYTES: usize = 127;

/// The BLAKE3 hash of a file's bytes: the name it is stored and fetched under.
///
/// Serialised as its hex text in JSON, as its 32 bytes in postcard (summaries).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlobHash(pub [u8; 32]);

impl Serialize for BlobHash {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str(&self.to_hex())
        } else {
            self.0.serialize(serializer)
        }
    }
}

impl<'de> Deserialize<'de> for BlobHash {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            let text = String::deserialize(deserializer)?;
            text.parse().map_err(serde::de::Error::custom)
        } else {
            <[u8; 32]>::deserialize(deserializer).map(BlobHash)
        }
    }
}

impl BlobHash {
    /// The hash of `bytes` (for small inputs; the node hashes files while streaming them).
    pub fn of(bytes: &[u8]) -> BlobHash {
        BlobHash(*blake3::hash(bytes).as_bytes())
    }

    /// Its 64-character lowercase hex form.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The first 12 hex characters, for lists.
    pub fn short(&self) -> String {
        self.to_hex()[..12].to_string()
    }
}

impl From<blake3::Hash> for BlobHash {
    fn from(hash: blake3::Hash) -> Self {
        BlobHash(*hash.as_bytes())
    }
}

impl fmt::Display for BlobHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for BlobHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlobHash({})", self.to_hex())
    }
}

impl FromStr for BlobHash {
    type Err = AttachmentError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || AttachmentError::BadHash {
            value: s.to_string(),
        };
        let bytes = hex::decode(s.trim()).map_err(|_| bad())?;
        let array: [u8; 32] = bytes.try_into().map_err(|_| bad())?;
        Ok(BlobHash(array))
    }
}

/// Why an attachment cannot be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttachmentError {
    /// A name that is empty, a path, or has control characters.
    #[error("`{name}` is not a file name to show others (no `/`, no control characters, 1 to {MAX_TITLE_BYTES} bytes); rename the file")]
    BadName {
        /// The name given.
        name: String,
    },
    /// A role that is not one of [`ROLES`].
    #[error("`{role}` is not a file role; use drawing, photo, plan, cad, bom, manual or other")]
    BadRole {
        /// The role given.
        role: String,
    },
    /// Not a 64-character hex BLAKE3 hash.
    #[error("`{value}` is not a BLAKE3 hash (64 hex characters)")]
    BadHash {
        /// The text given.
        value: String,
    },
    /// A size over [`MAX_RECORDED_SIZE`].
    #[error("a file of {size} bytes is over the {MAX_RECORDED_SIZE}-byte limit of a document")]
    TooLarge {
        /// The size given.
        size: u64,
    },
    /// Another file already has this name on the document.
    #[error("another file named `{name}` is already attached ({hash}); detach it first or rename this one")]
    NameTaken {
        /// The name.
        name: String,
        /// The hash of the file that has it, short.
        hash: String,
    },
    /// A media type that is not `type/subtype`.
    #[error("`{value}` is not a media type such as image/jpeg")]
    BadMediaType {
        /// The text given.
        value: String,
    },
    /// A caption over the size limit.
    #[error("the caption is {bytes} bytes; at most {MAX_STR_BYTES} are allowed")]
    CaptionTooLong {
        /// Its size.
        bytes: usize,
    },
    /// No attached file has this name or hash.
    #[error("no file named or hashed `{given}` is attached; `design files ID` lists them")]
    NoSuchFile {
        /// The name or hash prefix given.
        given: String,
    },
}

/// A file to attach, as the node describes it after storing its bytes (the editing author and
/// the time come from the edit's context).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewFile {
    /// The file's name as others see it (its base name).
    pub name: String,
    /// Its media type, e.g. `application/pdf` (see [`media_type_for`]).
    pub media_type: String,
    /// Its size in bytes.
    pub size: u64,
    /// BLAKE3 of its bytes.
    pub hash: BlobHash,
    /// One of [`ROLES`].
    pub role: String,
    /// A line about it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
    /// The 1-based build step it illustrates (designs only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<usize>,
}

/// One file as a document records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// The file's name.
    pub name: String,
    /// Its media type.
    pub media_type: String,
    /// Its size in bytes.
    pub size: u64,
    /// BLAKE3 of its bytes.
    pub hash: BlobHash,
    /// What it is to the design.
    pub role: String,
    /// A line about it, empty when none.
    pub caption: String,
    /// The build step it illustrates, when it belongs to one.
    pub step: Option<u64>,
    /// The author key that attached it.
    pub attached_by: String,
    /// When, unix seconds.
    pub attached_at: i64,
}

/// The field shape of one entry of a `files` list (shared by designs and notes).
pub(crate) const FILE_ENTRY: schema::FieldType = schema::FieldType::Record(&[
    schema::Field {
        name: "name",
        ty: schema::FieldType::Str {
            max: MAX_TITLE_BYTES,
            check: schema::StrCheck::Free,
        },
    },
    schema::Field {
        name: "media_type",
        ty: schema::FieldType::Str {
            max: MAX_MEDIA_TYPE_BYTES,
            check: schema::StrCheck::Free,
        },
    },
    schema::Field {
        name: "size",
        ty: schema::FieldType::Num {
            min: 0.0,
            max: MAX_RECORDED_SIZE as f64,
            whole: true,
        },
    },
    schema::Field {
        name: "hash",
        ty: schema::FieldType::Str {
            max: 64,
            check: schema::StrCheck::Hash,
        },
    },
    schema::Field {
        name: "role",
        ty: schema::FieldType::Str {
            max: MAX_TAG_BYTES,
            check: schema::StrCheck::OneOf(ROLES),
        },
    },
    schema::Field {
        name: "caption",
        ty: schema::FieldType::Str {
            max: MAX_STR_BYTES,
            check: schema::StrCheck::Free,
        },
    },
    schema::Field {
        name: "step",
        ty: schema::FieldType::Num {
            min: 1.0,
            max: 1_000_000.0,
            whole: true,
        },
    },
    schema::Field {
        name: "by",
        ty: schema::FieldType::Str {
            max: MAX_ID_BYTES,
            check: schema::StrCheck::Free,
        },
    },
    schema::Field {
        name: "at",
        ty: schema::FieldType::Num {
            min: i64::MIN as f64,
            max: i64::MAX as f64,
            whole: true,
        },
    },
]);

/// The `files` field every kind that carries attachments has.
pub(crate) const FILES_FIELD: schema::Field = schema::Field {
    name: "files",
    ty: schema::FieldType::List {
        max: schema::MAX_LIST_ITEMS,
        item: &FILE_ENTRY,
        unique: false,
    },
};

/// Whether documents of `kind` carry files.
pub fn carries_files(kind: DocKind) -> bool {
    matches!(kind, DocKind::Design | DocKind::Note)
}

/// Checks a file name: a base name others can save under, not a path.
///
/// Errors: [`AttachmentError::BadName`].
pub fn check_name(name: &str) -> Result<String, AttachmentError> {
    let trimmed = name.trim();
    let bad = trimmed.is_empty()
        || trimmed.len() > MAX_TITLE_BYTES
        || trimmed == "."
        || trimmed == ".."
        || trimmed.contains('/')
        || trimmed.contains('\\')
        || trimmed.chars().any(char::is_control);
    if bad {
        return Err(AttachmentError::BadName {
            name: name.to_string(),
        });
    }
    Ok(trimmed.to_string())
}

/// Checks a role word (case-insensitive) and returns it as listed in [`ROLES`].
///
/// Errors: [`AttachmentError::BadRole`].
pub fn check_role(role: &str) -> Result<&'static str, AttachmentError> {
    ROLES
        .iter()
        .find(|r| r.eq_ignore_ascii_case(role.trim()))
        .copied()
        .ok_or_else(|| AttachmentError::BadRole {
            role: role.to_string(),
        })
}

/// Checks every part of a file to attach: one variant of [`AttachmentError`] per broken rule
/// (`BadName`, `BadRole`, `TooLarge`, `BadMediaType`, `CaptionTooLong`).
pub fn validate_new_file(file: &NewFile) -> Result<(), AttachmentError> {
    check_name(&file.name)?;
    check_role(&file.role)?;
    if file.size > MAX_RECORDED_SIZE {
        return Err(AttachmentError::TooLarge { size: file.size });
    }
    let media = file.media_type.as_str();
    let well_formed = media.len() <= MAX_MEDIA_TYPE_BYTES
        && media
            .split_once('/')
            .is_some_and(|(a, b)| !a.is_empty() && !b.is_empty())
        && !media.chars().any(|c| c.is_whitespace() || c.is_control());
    if !well_formed {
        return Err(AttachmentError::BadMediaType {
            value: media.to_string(),
        });
    }
    if let Some(caption) = &file.caption {
        if caption.len() > MAX_STR_BYTES {
            return Err(AttachmentError::CaptionTooLong {
                bytes: caption.len(),
            });
        }
    }
    Ok(())
}

/// The media type of a file name, guessed from its extension (`application/octet-stream` when
/// unknown): the formats farm-tool designs are published in.
pub fn media_type_for(name: &str) -> &'static str {
    let ext = name
        .rsplit_once('.')
        .map(|(_, ext)| ext.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "pdf" => "application/pdf",
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "svg" => "image/svg+xml",
        "tif" | "tiff" => "image/tiff",
        "heic" => "image/heic",
        "dxf" => "image/vnd.dxf",
        "dwg" => "image/vnd.dwg",
        "step" | "stp" => "model/step",
        "stl" => "model/stl",
        "obj" => "model/obj",
        "3mf" => "model/3mf",
        "fcstd" => "application/x-freecad",
        "skp" => "application/vnd.sketchup.skp",
        "csv" => "text/csv",
        "txt" => "text/plain",
        "md" => "text/markdown",
        "html" | "htm" => "text/html",
        "json" => "application/json",
        "toml" => "application/toml",
        "ods" => "application/vnd.oasis.opendocument.spreadsheet",
        "odt" => "application/vnd.oasis.opendocument.text",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "zip" => "application/zip",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        _ => "application/octet-stream",
    }
}

/// The files a document records, at `heads` (its current state when `None`).
///
/// Entries that are not well-formed (a hostile or newer peer's) are left out, never a panic.
pub fn files<R: ReadDoc>(doc: &R, heads: Option<&[ChangeHash]>) -> Vec<FileEntry> {
    let view = schema::read_view(doc, heads);
    let Some(list) = view.obj(&ROOT, "files", ObjType::List) else {
        return Vec::new();
    };
    let num = |entry: &automerge::ObjId, key: &str| -> Option<i64> {
        match view.get(entry, key)? {
            (Value::Scalar(s), _) => match s.as_ref() {
                ScalarValue::Int(n) => Some(*n),
                ScalarValue::Uint(n) => i64::try_from(*n).ok(),
                ScalarValue::F64(f) if f.fract() == 0.0 => Some(*f as i64),
                _ => None,
            },
            _ => None,
        }
    };
    (0..view.length(&list))
        .filter_map(|i| {
            let entry = view.obj(&list, i, ObjType::Map)?;
            Some(FileEntry {
                name: view.str(&entry, "name")?,
                media_type: view
                    .str(&entry, "media_type")
                    .unwrap_or_else(|| "application/octet-stream".to_string()),
                size: u64::try_from(num(&entry, "size")?).ok()?,
                hash: view.str(&entry, "hash")?.parse().ok()?,
                role: view
                    .str(&entry, "role")
                    .unwrap_or_else(|| DEFAULT_ROLE.to_string()),
                caption: view.str(&entry, "caption").unwrap_or_default(),
                step: num(&entry, "step").and_then(|s| u64::try_from(s).ok()),
                attached_by: view.str(&entry, "by").unwrap_or_default(),
                attached_at: num(&entry, "at").unwrap_or(0),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_base_names() {
        assert_eq!(check_name(" plan.pdf ").as_deref(), Ok("plan.pdf"));
        for bad in ["", "..", "a/b.pdf", "a\\b", "bad\nname", &"x".repeat(201)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn roles_and_media_types() {
        assert_eq!(check_role("CAD"), Ok("cad"));
        assert!(check_role("sketch").is_err());
        assert_eq!(media_type_for("Crimper.PDF"), "application/pdf");
        assert_eq!(media_type_for("frame.step"), "model/step");
        assert_eq!(media_type_for("README"), "application/octet-stream");
    }

    #[test]
    fn hashes_round_trip_as_hex() {
        let hash = BlobHash::of(b"drum");
        assert_eq!(hash.to_hex().parse::<BlobHash>(), Ok(hash));
        assert!("abc".parse::<BlobHash>().is_err());
        assert_eq!(hash.to_string().len(), 64);
    }

    fn file(name: &str, bytes: &[u8], step: Option<usize>) -> NewFile {
        NewFile {
            name: name.into(),
            media_type: media_type_for(name).into(),
            size: bytes.len() as u64,
            hash: BlobHash::of(bytes),
            role: "drawing".into(),
            caption: Some("side view".into()),
            step,
        }
    }

    /// Attach, list, release, detach: the release still lists what it had, validation holds.
    #[test]
    fn files_are_recorded_released_and_detached() {
        use crate::schema::{apply_edit, init_document, Edit, EditContext, NewDocument};
        use automerge::AutoCommit;
        let ctx = EditContext {
            author: "tester".into(),
            now_unix: 1_764_000_000,
        };
        let mut doc = AutoCommit::new();
        init_document(&mut doc, &NewDocument::new(DocKind::Design, "Crimper")).expect("new");
        let edit = |doc: &mut AutoCommit, edit: Edit| {
            apply_edit(doc, DocKind::Design, &edit, &ctx).map(|_| doc.commit())
        };
        edit(
            &mut doc,
            Edit::AddStep {
                text: "Cut".into(),
                at: None,
            },
        )
        .expect("step");
        let plan = file("plan.pdf", b"%PDF", None);
        edit(&mut doc, Edit::AddFile { file: plan.clone() }).expect("attach");
        // The same file under the same name again changes nothing.
        edit(&mut doc, Edit::AddFile { file: plan.clone() }).expect("again");
        let photo = file("cut.jpg", b"jpeg", Some(1));
        edit(
            &mut doc,
            Edit::AddFile {
                file: photo.clone(),
            },
        )
        .expect("photo on step 1");
        let taken = apply_edit(
            &mut doc,
            DocKind::Design,
            &Edit::AddFile {
                file: file("plan.pdf", b"other", None),
            },
            &ctx,
        );
        assert!(matches!(
            taken,
            Err(crate::schema::EditError::File(
                AttachmentError::NameTaken { .. }
            ))
        ));
        let no_step = apply_edit(
            &mut doc,
            DocKind::Design,
            &Edit::AddFile {
                file: file("x.png", b"x", Some(4)),
            },
            &ctx,
        );
        assert!(matches!(
            no_step,
            Err(crate::schema::EditError::NoSuchStep { step: 4, count: 1 })
        ));
        let listed = files(&doc, None);
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[0].hash, plan.hash);
        assert_eq!(listed[0].caption, "side view");
        assert_eq!(listed[1].step, Some(1));
        assert_eq!(listed[1].attached_by, "tester");
        crate::schema::validate_document(&doc, DocKind::Design).expect("valid");
        let heads = doc.get_heads();
        edit(
            &mut doc,
            Edit::RemoveFile {
                name: "plan.pdf".into(),
                hash: plan.hash,
            },
        )
        .expect("detach");
        assert_eq!(files(&doc, None).len(), 1);
        assert_eq!(
            files(&doc, Some(&heads)).len(),
            2,
            "earlier heads keep the file"
        );
        let rendered = crate::schema::render(&doc, DocKind::Design, None);
        assert_eq!(rendered["files"][0]["name"], "cut.jpg");
        // Events carry no files.
        let mut event = AutoCommit::new();
        init_document(&mut event, &NewDocument::new(DocKind::Event, "Build day")).expect("event");
        assert!(apply_edit(
            &mut event,
            DocKind::Event,
            &Edit::AddFile { file: plan },
            &ctx
        )
        .is_err());
    }

    /// A document written before files existed (no `files` list) reads as having none and
    /// takes its first file.
    #[test]
    fn documents_without_files_read_fine() {
        use crate::schema::{apply_edit, Edit, EditContext};
        use automerge::transaction::Transactable;
        let mut doc = automerge::AutoCommit::new();
        doc.put(ROOT, "name", "Old design").expect("name");
        assert!(files(&doc, None).is_empty());
        crate::schema::validate_document(&doc, DocKind::Design).expect("valid");
        let ctx = EditContext {
            author: "tester".into(),
            now_unix: 0,
        };
        let plan = file("plan.pdf", b"%PDF", None);
        apply_edit(
            &mut doc,
            DocKind::Design,
            &Edit::AddFile { file: plan },
            &ctx,
        )
        .expect("attach");
        assert_eq!(files(&doc, None).len(), 1);
    }

    /// Files follow their build step when steps are added before it, moved or removed.
    #[test]
    fn files_follow_their_step() {
        use crate::schema::{apply_edit, init_document, Edit, EditContext, NewDocument};
        use automerge::AutoCommit;
        let ctx = EditContext {
            author: "tester".into(),
            now_unix: 0,
        };
        let mut doc = AutoCommit::new();
        init_document(&mut doc, &NewDocument::new(DocKind::Design, "Crimper")).expect("new");
        let edit = |doc: &mut AutoCommit, edit: Edit| {
            apply_edit(doc, DocKind::Design, &edit, &ctx).expect("edit");
        };
        for text in ["Cut", "Weld", "Paint"] {
            edit(
                &mut doc,
                Edit::AddStep {
                    text: text.into(),
                    at: None,
                },
            );
        }
        edit(
            &mut doc,
            Edit::AddFile {
                file: file("weld.jpg", b"w", Some(2)),
            },
        );
        edit(
            &mut doc,
            Edit::AddFile {
                file: file("paint.jpg", b"p", Some(3)),
            },
        );
        let steps = |doc: &AutoCommit| -> Vec<Option<u64>> {
            files(doc, None).iter().map(|f| f.step).collect()
        };
        edit(
            &mut doc,
            Edit::AddStep {
                text: "Measure".into(),
                at: Some(1),
            },
        );
        assert_eq!(steps(&doc), [Some(3), Some(4)]);
        edit(&mut doc, Edit::MoveStep { from: 4, to: 1 });
        assert_eq!(steps(&doc), [Some(4), Some(1)]);
        edit(&mut doc, Edit::RemoveStep { step: 4 });
        assert_eq!(steps(&doc), [None, Some(1)]);
        crate::schema::validate_document(&doc, DocKind::Design).expect("valid");
    }
}

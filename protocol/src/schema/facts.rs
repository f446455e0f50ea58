//! Typed readers for the few facts the node decides on: a document's title, a note's target,
//! a design's declared parent, its licence and the heads of its releases.
//!
//! They read the automerge document directly, with the same tolerance as the renderer (a
//! value of the wrong type counts as absent), so a decision never depends on the shape of
//! the `--json` output, which is free to change for display.

use super::read::View;
use super::DocKind;
use crate::DocId;
use automerge::{ChangeHash, ObjType, ReadDoc, ROOT};
use std::str::FromStr;

/// The field that names a document of `kind` in lists: a design's or profile's `name`, an
/// event's `title`, a note's `body`.
pub fn title_field(kind: DocKind) -> &'static str {
    match kind {
        DocKind::Design | DocKind::Profile => "name",
        DocKind::Event => "title",
        DocKind::Note => "body",
        // A charter has no fields; its title is fixed.
        DocKind::Charter => "",
    }
}

/// A document's title (see [`title_field`]) at its current state; `""` when absent or of the
/// wrong type.
pub fn title<R: ReadDoc>(doc: &R, kind: DocKind) -> String {
    let view = View::new(doc, None);
    let field = title_field(kind);
    match kind {
        // The note body is a collaborative text; the others are plain strings.
        DocKind::Note => view
            .obj(&ROOT, field, ObjType::Text)
            .and_then(|text| view.text(&text).ok())
            .unwrap_or_default(),
        DocKind::Design | DocKind::Event | DocKind::Profile => {
            view.str(&ROOT, field).unwrap_or_default()
        }
        DocKind::Charter => "charter".into(),
    }
}

/// The design or event a note is about, when its `target` holds a document id.
pub fn note_target<R: ReadDoc>(doc: &R) -> Option<DocId> {
    View::new(doc, None)
        .str(&ROOT, "target")
        .and_then(|target| target.parse().ok())
}

/// The design a design declares it derives from (`derivative_of`), when it holds a document id.
pub fn derivative_of<R: ReadDoc>(doc: &R) -> Option<DocId> {
    View::new(doc, None)
        .str(&ROOT, "derivative_of")
        .and_then(|id| id.parse().ok())
}

/// The note a note answers, when its `reply_to` holds a document id.
pub fn note_reply_to<R: ReadDoc>(doc: &R) -> Option<DocId> {
    View::new(doc, None)
        .str(&ROOT, "reply_to")
        .and_then(|parent| parent.parse().ok())
}

/// A design's licence expression for one part (`hardware`, `documentation` or `software`, with
/// or without the `licence.` prefix); `None` when not set.
pub fn licence<R: ReadDoc>(doc: &R, part: &str) -> Option<String> {
    let view = View::new(doc, None);
    let licence = view.obj(&ROOT, "licence", ObjType::Map)?;
    view.str(&licence, part.trim_start_matches("licence."))
        .filter(|expr| !expr.is_empty())
}

/// The heads a design's release `version` froze; `None` when there is no such release or one
/// of its heads is not a change hash.
pub fn release_heads<R: ReadDoc>(doc: &R, version: &str) -> Option<Vec<ChangeHash>> {
    let view = View::new(doc, None);
    let releases = view.obj(&ROOT, "releases", ObjType::Map)?;
    let release = view.obj(&releases, version, ObjType::Map)?;
    let heads = view.obj(&release, "heads", ObjType::List)?;
    (0..view.length(&heads))
        .map(|i| {
            view.str(&heads, i)
                .and_then(|h| ChangeHash::from_str(&h).ok())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{render, Edit, NewDocument};
    use automerge::transaction::Transactable;
    use automerge::{AutoCommit, ScalarValue};

    fn design(name: &str) -> AutoCommit {
        let mut doc = AutoCommit::new();
        crate::schema::init_document(&mut doc, &NewDocument::new(DocKind::Design, name))
            .expect("skeleton");
        doc
    }

    /// The readers agree with what the renderer shows for a well-formed document.
    #[test]
    fn readers_agree_with_the_rendered_document() {
        let mut doc = design("Roller crimper");
        let ctx = crate::schema::EditContext {
            author: "tester".into(),
            now_unix: 1_764_000_000,
        };
        crate::schema::apply_edit(
            &mut doc,
            DocKind::Design,
            &Edit::Set {
                field: "licence.hardware".into(),
                value: "CERN-OHL-S-2.0".into(),
            },
            &ctx,
        )
        .expect("licence");
        let heads = doc.get_heads();
        crate::schema::apply_edit(
            &mut doc,
            DocKind::Design,
            &Edit::Release {
                version: "1.0".into(),
                heads: heads.iter().map(|h| h.to_string()).collect(),
            },
            &ctx,
        )
        .expect("release");
        let rendered = render(&doc, DocKind::Design, None);
        assert_eq!(title(&doc, DocKind::Design), rendered["name"]);
        assert_eq!(
            licence(&doc, "licence.hardware").as_deref(),
            rendered["licence"]["hardware"].as_str()
        );
        assert_eq!(licence(&doc, "software"), None);
        assert_eq!(release_heads(&doc, "1.0"), Some(heads));
        assert_eq!(release_heads(&doc, "2.0"), None);

        let mut note = AutoCommit::new();
        let target = DocId([3; 32]);
        crate::schema::init_document(
            &mut note,
            &NewDocument::note(target.to_string(), None, "Built two drums"),
        )
        .expect("note");
        assert_eq!(note_target(&note), Some(target));
        assert_eq!(title(&note, DocKind::Note), "Built two drums");
    }

    /// A hostile document with facts of the wrong type reads as having none, never panics.
    #[test]
    fn mistyped_facts_read_as_absent() {
        let mut doc = AutoCommit::new();
        doc.put_object(ROOT, "name", ObjType::Text).expect("name");
        doc.put(ROOT, "target", ScalarValue::Int(4))
            .expect("target");
        let releases = doc
            .put_object(ROOT, "releases", ObjType::Map)
            .expect("releases");
        let release = doc
            .put_object(&releases, "1.0", ObjType::Map)
            .expect("release");
        let heads = doc
            .put_object(&release, "heads", ObjType::List)
            .expect("heads");
        doc.insert(&heads, 0, "not a hash").expect("head");
        doc.put(ROOT, "licence", "MIT").expect("licence");
        assert_eq!(title(&doc, DocKind::Design), "");
        assert_eq!(note_target(&doc), None);
        assert_eq!(release_heads(&doc, "1.0"), None);
        assert_eq!(licence(&doc, "hardware"), None);
    }
}

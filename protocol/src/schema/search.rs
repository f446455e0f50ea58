//! Filters for `design list` and `event list`: tags, a design's stage, and a
//! case-insensitive search over the words people look for a tool by.
//!
//! They read the automerge document directly, as [`super::facts`] does, and
//! treat a value of the wrong type as absent, so a hostile document can only
//! fail to match.

use super::read::View;
use super::spec::{check_str, StrCheck};
use super::{design, same_tag, DocKind, ValueError, MAX_TAG_BYTES};
use automerge::{ObjId, ObjType, ReadDoc, ROOT};

/// What a listing keeps: every given tag present, the stage equal, the text found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    /// Tags the document must all carry (compared as [`same_tag`] does).
    tags: Vec<String>,
    /// A design's stage, in its canonical spelling.
    stage: Option<String>,
    /// The search text, lowercased.
    text: Option<String>,
}

impl Filter {
    /// A filter from what the user typed; an unknown stage is refused with the stages there are.
    pub fn new(
        tags: &[String],
        stage: Option<&str>,
        text: Option<&str>,
    ) -> Result<Filter, ValueError> {
        let stage = stage
            .map(|s| check_str("stage", MAX_TAG_BYTES, StrCheck::OneOf(design::STAGES), s))
            .transpose()?;
        let text = text
            .map(|t| t.trim().to_lowercase())
            .filter(|t| !t.is_empty());
        Ok(Filter {
            tags: tags
                .iter()
                .filter(|t| !t.trim().is_empty())
                .cloned()
                .collect(),
            stage,
            text,
        })
    }

    /// Whether the filter keeps everything.
    pub fn is_empty(&self) -> bool {
        self.tags.is_empty() && self.stage.is_none() && self.text.is_none()
    }

    /// Whether a text search was asked for (then [`Filter::matches`] names the fields it hit).
    pub fn searches_text(&self) -> bool {
        self.text.is_some()
    }

    /// `None` when the document of `kind` is filtered out; else the fields the search text
    /// was found in (`name`, `summary`, `steps.2`...), empty when no text was asked for.
    pub fn matches<R: ReadDoc>(&self, doc: &R, kind: DocKind) -> Option<Vec<String>> {
        self.matches_fields(&SearchFields::read(doc, kind))
    }

    /// As [`Filter::matches`], over fields read earlier (a node keeps them per document, so a
    /// search does not load every document it looks through).
    pub fn matches_fields(&self, fields: &SearchFields) -> Option<Vec<String>> {
        if !self.tags.is_empty() {
            let all_held = self
                .tags
                .iter()
                .all(|wanted| fields.tags.iter().any(|tag| same_tag(tag, wanted)));
            if !all_held {
                return None;
            }
        }
        if let Some(stage) = &self.stage {
            let current = fields.stage.as_deref()?;
            if !current.eq_ignore_ascii_case(stage) {
                return None;
            }
        }
        let Some(text) = &self.text else {
            return Some(Vec::new());
        };
        let hits: Vec<String> = fields
            .texts
            .iter()
            .filter(|(_, content)| content.contains(text.as_str()))
            .map(|(field, _)| field.clone())
            .collect();
        (!hits.is_empty()).then_some(hits)
    }
}

/// What a [`Filter`] looks at in one document: its tags, stage and searched texts (lowercased).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SearchFields {
    /// The `tags` list as written.
    tags: Vec<String>,
    /// A design's `stage`, as written.
    stage: Option<String>,
    /// Each searched field's name and its text, lowercased.
    texts: Vec<(String, String)>,
}

impl SearchFields {
    /// Reads the searched fields of a document of `kind`.
    pub fn read<R: ReadDoc>(doc: &R, kind: DocKind) -> SearchFields {
        let view = View::new(doc, None);
        SearchFields {
            tags: strings(&view, "tags"),
            stage: view.str(&ROOT, "stage"),
            texts: searched_texts(&view, kind)
                .into_iter()
                .map(|(field, content)| (field, content.to_lowercase()))
                .collect(),
        }
    }

    /// Bytes of text held, to bound what a node keeps.
    pub fn text_bytes(&self) -> usize {
        let texts: usize = self.texts.iter().map(|(f, t)| f.len() + t.len()).sum();
        texts + self.tags.iter().map(String::len).sum::<usize>()
    }
}

fn searched_texts<R: ReadDoc>(view: &View<'_, R>, kind: DocKind) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let (title, texts): (&str, &[&str]) = match kind {
        DocKind::Design => ("name", &["summary"]),
        DocKind::Event => ("title", &["summary", "description"]),
        DocKind::Note => ("", &["body"]),
        DocKind::Profile => ("name", &["bio"]),
        DocKind::Charter => return out,
    };
    if let Some(value) = view.str(&ROOT, title) {
        out.push((title.to_string(), value));
    }
    for field in texts {
        if let Some(value) = text_at(view, &ROOT, *field) {
            out.push((field.to_string(), value));
        }
    }
    if kind == DocKind::Design {
        if let Some(steps) = view.obj(&ROOT, "steps", ObjType::List) {
            for i in 0..view.length(&steps) {
                if let Some(value) = text_at(view, &steps, i) {
                    out.push((format!("steps.{}", i + 1), value));
                }
            }
        }
    }
    out
}

/// The content of a text object at a key or index.
fn text_at<R: ReadDoc, P: Into<automerge::Prop>>(
    view: &View<'_, R>,
    obj: &ObjId,
    prop: P,
) -> Option<String> {
    view.obj(obj, prop, ObjType::Text)
        .and_then(|text| view.text(&text).ok())
}

/// The strings of a top-level list (non-strings skipped).
fn strings<R: ReadDoc>(view: &View<'_, R>, field: &str) -> Vec<String> {
    let Some(list) = view.obj(&ROOT, field, ObjType::List) else {
        return Vec::new();
    };
    (0..view.length(&list))
        .filter_map(|i| view.str(&list, i))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{apply_edit, init_document, Edit, EditContext, NewDocument};
    use automerge::AutoCommit;

    fn design(edits: &[Edit]) -> AutoCommit {
        let mut doc = AutoCommit::new();
        init_document(
            &mut doc,
            &NewDocument::new(DocKind::Design, "Roller crimper"),
        )
        .expect("skeleton");
        let ctx = EditContext {
            author: "tester".into(),
            now_unix: 1_764_000_000,
        };
        for edit in edits {
            apply_edit(&mut doc, DocKind::Design, edit, &ctx).expect("edit");
        }
        doc
    }

    #[test]
    fn search_names_the_fields_it_found_the_text_in() {
        let doc = design(&[
            Edit::Set {
                field: "summary".into(),
                value: "Crimps a cover crop flat".into(),
            },
            Edit::AddStep {
                text: "Weld the DRUM ends".into(),
                at: None,
            },
            Edit::AddStep {
                text: "Fill the drum with water".into(),
                at: None,
            },
            Edit::AddItem {
                field: "tags".into(),
                item: "No-Till".into(),
            },
            Edit::Set {
                field: "stage".into(),
                value: "prototype".into(),
            },
        ]);
        let search = |text: &str| {
            Filter::new(&[], None, Some(text))
                .expect("filter")
                .matches(&doc, DocKind::Design)
        };
        assert_eq!(
            search("drum"),
            Some(vec!["steps.1".into(), "steps.2".into()])
        );
        assert_eq!(search("CRIMP"), Some(vec!["name".into(), "summary".into()]));
        assert_eq!(search("harrow"), None);
        let tagged = Filter::new(&["no till".into()], Some("Prototype"), None).expect("filter");
        assert_eq!(tagged.matches(&doc, DocKind::Design), Some(vec![]));
        let other_stage = Filter::new(&[], Some("in-use"), None).expect("filter");
        assert_eq!(other_stage.matches(&doc, DocKind::Design), None);
        let both = Filter::new(&["no-till".into(), "dairy".into()], None, None).expect("filter");
        assert_eq!(both.matches(&doc, DocKind::Design), None);
    }

    #[test]
    fn an_unknown_stage_is_refused_with_the_stages_there_are() {
        let error = Filter::new(&[], Some("finished"), None).expect_err("unknown stage");
        assert!(error.to_string().contains("prototype"), "{error}");
    }
}

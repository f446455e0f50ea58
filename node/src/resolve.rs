//! What a person types for a document or a commons, turned into its id.
//!
//! Every command that takes an id goes through here ([`Replicas::resolve_doc`],
//! [`Replicas::resolve_commons`], and [`Replicas::resolve_references`] for ids inside edits:
//! `--add designs=`, `--related component=`, `--set derivative_of=`, ...), so one rule holds
//! everywhere: the full id; a prefix of [`MIN_ID_PREFIX`] or more characters, matched in its
//! own case first and in any case when that finds nothing; or the exact name of a design,
//! event or commons, in any case. Text that matches several gets an error listing them, with
//! their names. A document this node does not hold can only be named by its full id.

use crate::replicas::{NodeError, Replicas, MIN_ID_PREFIX};
use hedgerow_protocol::schema::{self, DocKind, Edit};
use hedgerow_protocol::{CommonsId, DocId};
use std::collections::HashSet;
use std::fmt::Display;

/// Most candidates an ambiguity error names.
const SHOWN_CANDIDATES: usize = 5;

/// Longest chain of declared ancestors followed (a guard against loops written concurrently).
const MAX_ANCESTRY: usize = 1000;

/// One thing typed text may name: its id and, for kinds that have one, its name.
#[derive(Clone, Debug)]
pub(crate) struct Candidate<I> {
    /// The id.
    pub id: I,
    /// Its name or title, when it can be named by it.
    pub name: Option<String>,
}

/// What typed text picks among candidates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Pick<I> {
    /// Exactly one.
    One(I),
    /// None, and the text was long enough to be a prefix.
    Nothing,
    /// None, and the text is too short to be a prefix (it names nothing either).
    TooShort,
    /// Several, with their names.
    Several(Vec<(I, Option<String>)>),
}

/// Picks what `given` names among `candidates`: its full id, else every candidate whose id
/// starts with it (in its case; in any case when none does) or whose name it is (any case).
pub(crate) fn pick<I: Copy + Display + PartialEq>(
    given: &str,
    candidates: &[Candidate<I>],
) -> Pick<I> {
    let text = given.trim();
    if let Some(exact) = candidates.iter().find(|c| c.id.to_string() == text) {
        return Pick::One(exact.id);
    }
    let long = text.chars().count() >= MIN_ID_PREFIX;
    let name = text.to_lowercase();
    let named = |c: &&Candidate<I>| {
        !name.is_empty()
            && c.name
                .as_deref()
                .is_some_and(|n| n.trim().to_lowercase() == name)
    };
    let mut found: Vec<&Candidate<I>> = candidates
        .iter()
        .filter(|c| named(c) || (long && c.id.to_string().starts_with(text)))
        .collect();
    if found.is_empty() && long {
        // Ids are base58, where case matters, but people retype them in any case.
        let lower = text.to_ascii_lowercase();
        found = candidates
            .iter()
            .filter(|c| c.id.to_string().to_ascii_lowercase().starts_with(&lower))
            .collect();
    }
    match found.as_slice() {
        [] if long => Pick::Nothing,
        [] => Pick::TooShort,
        [one] => Pick::One(one.id),
        several => Pick::Several(several.iter().map(|c| (c.id, c.name.clone())).collect()),
    }
}

/// The candidates of an ambiguity as one line: `ID (name), ID (name), and 3 more`.
pub(crate) fn describe<I: Display>(several: &[(I, Option<String>)]) -> Vec<String> {
    let mut out: Vec<String> = several
        .iter()
        .take(SHOWN_CANDIDATES)
        .map(
            |(id, name)| match name.as_deref().filter(|n| !n.is_empty()) {
                Some(name) => format!("{id} ({name})"),
                None => id.to_string(),
            },
        )
        .collect();
    if several.len() > SHOWN_CANDIDATES {
        out.push(format!("and {} more", several.len() - SHOWN_CANDIDATES));
    }
    out
}

/// Whether documents of `kind` can be named by their name or title.
fn named_kind(kind: DocKind) -> bool {
    matches!(kind, DocKind::Design | DocKind::Event)
}

impl Replicas {
    /// The documents held (of `kind` when given), with the names of designs and events.
    fn doc_candidates(&self, kind: Option<DocKind>) -> Result<Vec<Candidate<DocId>>, NodeError> {
        let mut out = Vec::new();
        for id in self.store().all_doc_ids()? {
            let summary = self.store().summary(&id)?;
            let found = match &summary {
                Some(s) => Some(s.kind),
                None => self.store().doc_genesis(&id)?.map(|g| g.body.kind),
            };
            let Some(found) = found.filter(|k| k.is_content()) else {
                continue;
            };
            if kind.is_some_and(|k| k != found) {
                continue;
            }
            let name = summary
                .filter(|_| named_kind(found))
                .map(|s| s.title)
                .filter(|t| !t.is_empty());
            out.push(Candidate { id, name });
        }
        Ok(out)
    }

    /// Resolves a document id, prefix or name, optionally requiring a kind.
    pub fn resolve_doc(&self, given: &str, kind: Option<DocKind>) -> Result<DocId, NodeError> {
        let what = kind.map(|k| k.as_str()).unwrap_or("document");
        let text = given.trim();
        if let Ok(id) = text.parse::<DocId>() {
            if let Some(genesis) = self.store().doc_genesis(&id)? {
                return self.of_kind(id, genesis.body.kind, kind);
            }
        }
        match pick(text, &self.doc_candidates(kind)?) {
            Pick::One(id) => Ok(id),
            Pick::Several(several) => Err(NodeError::Ambiguous {
                what,
                prefix: text.to_string(),
                candidates: describe(&several),
            }),
            none => {
                if kind.is_some() {
                    // A document of another kind gets the error that says so.
                    if let Pick::One(id) = pick(text, &self.doc_candidates(None)?) {
                        if let Some(genesis) = self.store().doc_genesis(&id)? {
                            return self.of_kind(id, genesis.body.kind, kind);
                        }
                    }
                }
                Err(match none {
                    Pick::TooShort => NodeError::PrefixTooShort(text.to_string()),
                    _ => NodeError::UnknownDoc {
                        what,
                        id: text.to_string(),
                    },
                })
            }
        }
    }

    /// `id` when it is of the `expected` kind (or none is expected).
    fn of_kind(
        &self,
        id: DocId,
        found: DocKind,
        expected: Option<DocKind>,
    ) -> Result<DocId, NodeError> {
        match expected {
            Some(expected) if expected != found => Err(NodeError::WrongKind {
                id,
                expected,
                found,
            }),
            _ => Ok(id),
        }
    }

    /// Resolves a commons id, prefix or name; with `None`, the only commons held.
    pub fn resolve_commons(&self, given: Option<&str>) -> Result<CommonsId, NodeError> {
        let all = self.store().all_commons()?;
        let Some(text) = given.map(str::trim) else {
            return match all.as_slice() {
                [] => Err(NodeError::NoCommons),
                [one] => Ok(one.body.id()),
                several => Err(NodeError::ChooseCommons(
                    several
                        .iter()
                        .map(|g| format!("{} ({})", g.body.name, g.body.id().short()))
                        .collect(),
                )),
            };
        };
        let candidates: Vec<Candidate<CommonsId>> = all
            .iter()
            .map(|g| Candidate {
                id: g.body.id(),
                name: Some(g.body.name.clone()),
            })
            .collect();
        match pick(text, &candidates) {
            Pick::One(id) => Ok(id),
            Pick::Nothing => Err(NodeError::UnknownCommons(text.to_string())),
            Pick::TooShort => Err(NodeError::PrefixTooShort(text.to_string())),
            Pick::Several(several) => Err(NodeError::Ambiguous {
                what: "commons",
                prefix: text.to_string(),
                candidates: describe(&several),
            }),
        }
    }

    /// The commons `commons join` means: one held (by id, prefix or name), or, for one not
    /// held yet, its full id (`Err(false)` when the text is neither).
    pub fn resolve_join(&self, given: &str) -> Result<(CommonsId, bool), NodeError> {
        match self.resolve_commons(Some(given)) {
            Ok(id) => Ok((id, true)),
            Err(NodeError::UnknownCommons(_) | NodeError::PrefixTooShort(_)) => given
                .trim()
                .parse::<CommonsId>()
                .map(|id| (id, false))
                .map_err(|_| NodeError::NeedFullId {
                    what: "commons",
                    given: given.trim().to_string(),
                }),
            Err(other) => Err(other),
        }
    }

    /// Rewrites every document an edit names (a prefix, a name) to its full id, checking it
    /// is of the kind its field wants and is not the edited document itself; returns the
    /// commons of the first one held, from which a new document can take its commons.
    ///
    /// `this` is the edited document (`None` while creating one). A full id of a document
    /// not held here is kept: it may arrive later.
    pub fn resolve_references(
        &mut self,
        this: Option<DocId>,
        kind: DocKind,
        edits: &mut [Edit],
    ) -> Result<Option<CommonsId>, NodeError> {
        let mut commons = None;
        for edit in edits.iter_mut() {
            let Some(reference) = schema::doc_reference(kind, edit) else {
                continue;
            };
            let field = reference.field;
            let wrap = |error: NodeError| NodeError::Reference {
                field: field.to_string(),
                error: Box::new(error),
            };
            let typed = reference.value.trim().to_string();
            if typed.is_empty() {
                // The schema refuses an empty value in words of its own.
                continue;
            }
            let id = match self.resolve_doc(&typed, reference.expects) {
                Ok(id) => id,
                Err(_) if reference.removes => continue,
                Err(NodeError::UnknownDoc { .. } | NodeError::PrefixTooShort(_)) => {
                    match typed.parse::<DocId>() {
                        Ok(id) => id,
                        Err(_) => {
                            return Err(wrap(NodeError::NeedFullId {
                                what: reference.expects.map_or("document", |k| k.as_str()),
                                given: typed,
                            }))
                        }
                    }
                }
                Err(other) => return Err(wrap(other)),
            };
            if Some(id) == this && !reference.removes {
                return Err(NodeError::SelfReference {
                    kind,
                    field: field.to_string(),
                });
            }
            *reference.value = id.to_string();
            if let Some(genesis) = self.store().doc_genesis(&id)? {
                commons.get_or_insert(genesis.body.commons);
            }
            if field == "derivative_of" {
                if let Some(this) = this {
                    self.check_declared_parent(this, id)?;
                }
            }
        }
        Ok(commons)
    }

    /// Refuses a `derivative_of` that lineage could not honour: on a fork (whose parent is
    /// fixed by its signed origin) anything but that parent, and on any design a parent that
    /// descends from it.
    fn check_declared_parent(&mut self, this: DocId, parent: DocId) -> Result<(), NodeError> {
        if let Some(fork) = self
            .store()
            .doc_genesis(&this)?
            .and_then(|g| g.body.fork.clone())
        {
            if fork.parent != parent {
                return Err(NodeError::ForkParentFixed {
                    parent: fork.parent,
                });
            }
            return Ok(());
        }
        if self.ancestry(parent)?.contains(&this) {
            return Err(NodeError::LineageLoop { parent });
        }
        Ok(())
    }

    /// A design's ancestors, nearest first: a fork's from its signed origin, and beyond a
    /// design that is no fork, the design its `derivative_of` names (when held here, on and on).
    pub fn ancestry(&mut self, id: DocId) -> Result<Vec<DocId>, NodeError> {
        let mut out = Vec::new();
        let mut seen = HashSet::from([id]);
        let mut current = id;
        while out.len() < MAX_ANCESTRY {
            let next = match self.store().doc_genesis(&current)? {
                None => break,
                Some(genesis) if genesis.body.fork.is_some() => {
                    genesis.body.lineage()[1..].to_vec()
                }
                Some(genesis) if genesis.body.kind == DocKind::Design => {
                    self.declared_parent(&current)?.into_iter().collect()
                }
                Some(_) => break,
            };
            let Some(last) = next.last().copied() else {
                break;
            };
            for ancestor in next {
                if !seen.insert(ancestor) {
                    return Ok(out);
                }
                out.push(ancestor);
            }
            current = last;
        }
        Ok(out)
    }

    /// The design a held design that is no fork names in `derivative_of`.
    pub(crate) fn declared_parent(&mut self, id: &DocId) -> Result<Option<DocId>, NodeError> {
        let replica = self.replica(id)?;
        Ok(schema::facts::derivative_of(replica.doc()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> DocId {
        DocId([n; 32])
    }

    fn candidates() -> Vec<Candidate<DocId>> {
        vec![
            Candidate {
                id: id(1),
                name: Some("Roller crimper".into()),
            },
            Candidate {
                id: id(2),
                name: Some("Seed drill".into()),
            },
            Candidate {
                id: id(3),
                name: None,
            },
        ]
    }

    #[test]
    fn a_full_id_a_prefix_in_any_case_or_a_name_picks_one() {
        let all = candidates();
        let full = id(2).to_string();
        assert_eq!(pick(&full, &all), Pick::One(id(2)));
        assert_eq!(pick(&full[..6], &all), Pick::One(id(2)));
        assert_eq!(pick(&full[..6].to_lowercase(), &all), Pick::One(id(2)));
        assert_eq!(pick(&full[..6].to_uppercase(), &all), Pick::One(id(2)));
        assert_eq!(pick("  roller CRIMPER ", &all), Pick::One(id(1)));
        assert_eq!(pick("Roller", &all), Pick::Nothing);
        assert_eq!(pick("hoe", &all), Pick::TooShort);
        assert_eq!(pick(&full[..3], &all), Pick::TooShort);
    }

    #[test]
    fn a_shared_name_is_ambiguous_and_lists_both() {
        let mut all = candidates();
        all.push(Candidate {
            id: id(4),
            name: Some("roller crimper".into()),
        });
        let Pick::Several(several) = pick("Roller Crimper", &all) else {
            panic!("ambiguous");
        };
        let described = describe(&several);
        assert_eq!(described.len(), 2);
        assert!(described[0].contains(&id(1).to_string()) && described[0].contains("Roller"));
    }
}

//! The edits a user can make, as they travel from the CLI to the node.
//!
//! An [`Edit`] is plain data (serde, tagged by `op`) so it can cross the local
//! control socket as JSON; [`super::apply_edit`] validates and applies it.
//! Positions in edits are 1-based, as the CLI prints them ("step 3").

use super::error::ValueError;
use super::spec::{check_str, number_value, parse_number, StrCheck};
use super::{DocKind, MAX_STR_BYTES, MAX_TAG_BYTES, MAX_TITLE_BYTES};
use serde::{Deserialize, Serialize};

/// Who is editing and when; both come from the node, not from the edit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EditContext {
    /// The printable key of the author making the edit.
    pub author: String,
    /// The edit's time, unix seconds.
    pub now_unix: i64,
}

/// One field-level edit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Edit {
    /// Sets a scalar by name or dotted path (`stage`, `licence.hardware`, `external_ids.farmhack`); on a text field, replaces its content.
    Set {
        /// Field name or dotted path.
        field: String,
        /// The value as typed; parsed per the field's type.
        value: String,
    },
    /// Removes a scalar or a map entry (`version`, `external_ids.okh`); on a text field, empties it.
    Unset {
        /// Field name or dotted path.
        field: String,
    },
    /// Replaces a text field's content with the smallest set of character changes.
    ReplaceText {
        /// A text field.
        field: String,
        /// The new content.
        text: String,
    },
    /// Appends to a text field, verbatim (add your own newline or space).
    AppendText {
        /// A text field.
        field: String,
        /// What to append.
        text: String,
    },
    /// Adds an item to a list of strings (tags, tools, skills, activities, organisers, topics, designs, mentions); already present is a no-op.
    AddItem {
        /// A list-of-strings field.
        field: String,
        /// The item.
        item: String,
    },
    /// Removes every copy of an item from a list of strings.
    RemoveItem {
        /// A list-of-strings field.
        field: String,
        /// The item.
        item: String,
    },
    /// Adds a build step at a 1-based position (at the end when absent).
    AddStep {
        /// The step's instructions.
        text: String,
        /// Where the new step goes; 1 makes it the first step.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        at: Option<usize>,
    },
    /// Rewrites a build step with minimal character changes.
    EditStep {
        /// 1-based step number.
        step: usize,
        /// The new instructions.
        text: String,
    },
    /// Removes a build step.
    RemoveStep {
        /// 1-based step number.
        step: usize,
    },
    /// Moves a build step to a new 1-based position.
    MoveStep {
        /// 1-based step number to move.
        from: usize,
        /// 1-based position it ends up at.
        to: usize,
    },
    /// Appends a bill-of-materials line.
    AddBomLine {
        /// The line.
        line: BomLine,
    },
    /// Rewrites a bill-of-materials line in place: parts given are set, parts left out removed.
    EditBomLine {
        /// 1-based line number.
        position: usize,
        /// The line as it should read.
        line: BomLine,
    },
    /// Removes a bill-of-materials line.
    RemoveBomLine {
        /// 1-based line number.
        position: usize,
    },
    /// Appends a part.
    AddPart {
        /// The part.
        part: Part,
    },
    /// Removes a part.
    RemovePart {
        /// 1-based part number.
        position: usize,
    },
    /// Credits a contributor (the same name and role twice is a no-op).
    AddContributor {
        /// Their name.
        name: String,
        /// What they did (designer, builder, translator...).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        role: Option<String>,
    },
    /// Removes every credit of a contributor by name.
    RemoveContributor {
        /// Their name.
        name: String,
    },
    /// Links a related design: component, assembly, branch or merge.
    AddRelated {
        /// component, assembly, branch or merge.
        relation: String,
        /// The related design's id.
        design: String,
    },
    /// Removes a related-design link.
    RemoveRelated {
        /// component, assembly, branch or merge.
        relation: String,
        /// The related design's id.
        design: String,
    },
    /// Records an outcome of an event.
    AddOutcome {
        /// new-design, new-release, units-built or documentation-improved.
        outcome: String,
        /// What came out (a design id, "3 units", ...).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
    /// Removes an outcome.
    RemoveOutcome {
        /// 1-based outcome number.
        position: usize,
    },
    /// Records "I have built this" for the editing author, now.
    AddBuilt {
        /// Where it was built.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        place: Option<String>,
        /// Anything to say about the build.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    /// Records "I have built this" for the editing author, now, naming the farmOS equipment
    /// asset the farm keeps for it (what identifies the farm only when made public).
    AddBuiltAsset {
        /// Where it was built.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        place: Option<String>,
        /// Anything to say about the build.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
        /// The farmOS asset and what of it goes into the document.
        asset: crate::interop::farmos::PublicAsset,
    },
    /// Withdraws one of the editing author's own build records.
    RemoveBuilt {
        /// 1-based record number.
        position: usize,
    },
    /// Names an immutable release of the design at the given heads.
    Release {
        /// The version name, e.g. `5.6`.
        version: String,
        /// The automerge heads it pins, hex.
        heads: Vec<String>,
    },
    /// Records a file whose bytes the node stored (designs and notes); the same name and hash
    /// already there is a no-op.
    AddFile {
        /// The file's description.
        file: crate::attachment::NewFile,
    },
    /// Removes every entry of a file (merges can duplicate one), by its name and hash.
    RemoveFile {
        /// The file's name.
        name: String,
        /// Its hash.
        hash: crate::attachment::BlobHash,
    },
    /// Settles a conflict on one field (`stage`, `steps.2`, `bom.1.quantity`): writes one
    /// value over every concurrent version (see [`super::conflicts`]).
    Resolve {
        /// The field's path, as the conflict names it.
        field: String,
        /// What to write.
        value: super::conflicts::Settle,
    },
}

impl Edit {
    /// The edit's name, as its serde tag.
    pub fn name(&self) -> &'static str {
        match self {
            Edit::Set { .. } => "set",
            Edit::Unset { .. } => "unset",
            Edit::ReplaceText { .. } => "replace_text",
            Edit::AppendText { .. } => "append_text",
            Edit::AddItem { .. } => "add_item",
            Edit::RemoveItem { .. } => "remove_item",
            Edit::AddStep { .. } => "add_step",
            Edit::EditStep { .. } => "edit_step",
            Edit::RemoveStep { .. } => "remove_step",
            Edit::MoveStep { .. } => "move_step",
            Edit::AddBomLine { .. } => "add_bom_line",
            Edit::EditBomLine { .. } => "edit_bom_line",
            Edit::RemoveBomLine { .. } => "remove_bom_line",
            Edit::AddPart { .. } => "add_part",
            Edit::RemovePart { .. } => "remove_part",
            Edit::AddContributor { .. } => "add_contributor",
            Edit::RemoveContributor { .. } => "remove_contributor",
            Edit::AddRelated { .. } => "add_related",
            Edit::RemoveRelated { .. } => "remove_related",
            Edit::AddOutcome { .. } => "add_outcome",
            Edit::RemoveOutcome { .. } => "remove_outcome",
            Edit::AddBuilt { .. } => "add_built",
            Edit::AddBuiltAsset { .. } => "add_built_asset",
            Edit::RemoveBuilt { .. } => "remove_built",
            Edit::Release { .. } => "release",
            Edit::AddFile { .. } => "add_file",
            Edit::RemoveFile { .. } => "remove_file",
            Edit::Resolve { .. } => "resolve",
        }
    }
}

impl Edit {
    /// The one kind of document this edit is for, if it is not shared by all kinds.
    pub fn only_for(&self) -> Option<DocKind> {
        match self {
            Edit::Set { .. }
            | Edit::Unset { .. }
            | Edit::ReplaceText { .. }
            | Edit::AppendText { .. }
            | Edit::AddItem { .. }
            | Edit::RemoveItem { .. }
            | Edit::Resolve { .. } => None,
            // Designs and notes carry files: `apply_edit` checks the kind for these.
            Edit::AddFile { .. } | Edit::RemoveFile { .. } => None,
            Edit::AddOutcome { .. } | Edit::RemoveOutcome { .. } => Some(DocKind::Event),
            _ => Some(DocKind::Design),
        }
    }
}

/// One bill-of-materials line.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BomLine {
    /// What it is ("steel tube 40x40x3").
    pub name: String,
    /// How many or how much.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantity: Option<f64>,
    /// Unit of the quantity (m, kg, pcs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// Where to get it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sourcing: Option<String>,
    /// A part number, standard or link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
}

/// The compact form `BomLine::parse` reads.
pub const BOM_LINE_FORMAT: &str = "name;quantity;unit;sourcing;reference";

/// The compact form `Part::parse` reads.
pub const PART_FORMAT: &str = "name;material;quantity";

/// Largest quantity a BOM line or part may give.
pub const MAX_QUANTITY: f64 = 1e9;

impl BomLine {
    /// Parses `name;quantity;unit;sourcing;reference`; only the name is required, and the reference keeps any further `;`.
    pub fn parse(input: &str) -> Result<BomLine, ValueError> {
        let mut fields = input.splitn(5, ';').map(str::trim);
        let name = required_name(
            fields.next(),
            input,
            "bill-of-materials line",
            BOM_LINE_FORMAT,
        )?;
        let quantity = optional_quantity(fields.next(), "bom.quantity")?;
        Ok(BomLine {
            name,
            quantity,
            unit: optional(fields.next()),
            sourcing: optional(fields.next()),
            reference: optional(fields.next()),
        })
    }

    /// Checks each part against its limits.
    pub(crate) fn check(&self) -> Result<(), ValueError> {
        check_name("bom.name", &self.name)?;
        check_quantity("bom.quantity", self.quantity)?;
        if let Some(unit) = &self.unit {
            check_str("bom.unit", MAX_TAG_BYTES, StrCheck::Free, unit)?;
        }
        check_optional("bom.sourcing", &self.sourcing)?;
        check_optional("bom.reference", &self.reference)
    }
}

/// One part of a design.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Part {
    /// What the part is ("frame", "tine").
    pub name: String,
    /// What it is made of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub material: Option<String>,
    /// How many the design needs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantity: Option<f64>,
}

impl Part {
    /// Parses `name;material;quantity`; only the name is required.
    pub fn parse(input: &str) -> Result<Part, ValueError> {
        let mut fields = input.splitn(3, ';').map(str::trim);
        let name = required_name(fields.next(), input, "part", PART_FORMAT)?;
        let material = optional(fields.next());
        let quantity = optional_quantity(fields.next(), "parts.quantity")?;
        Ok(Part {
            name,
            material,
            quantity,
        })
    }

    /// Checks each part against its limits.
    pub(crate) fn check(&self) -> Result<(), ValueError> {
        check_name("parts.name", &self.name)?;
        check_optional("parts.material", &self.material)?;
        check_quantity("parts.quantity", self.quantity)
    }
}

/// The first compact field, which must be a name.
fn required_name(
    first: Option<&str>,
    input: &str,
    what: &'static str,
    format: &'static str,
) -> Result<String, ValueError> {
    match first {
        Some(name) if !name.is_empty() => Ok(name.to_string()),
        _ => Err(ValueError::BadCompact {
            what,
            input: input.to_string(),
            format,
        }),
    }
}

/// An optional compact field (empty means absent).
fn optional(field: Option<&str>) -> Option<String> {
    field.filter(|f| !f.is_empty()).map(str::to_string)
}

/// An optional quantity, parsed like any number field.
fn optional_quantity(field: Option<&str>, path: &str) -> Result<Option<f64>, ValueError> {
    match optional(field) {
        None => Ok(None),
        Some(text) => match parse_number(path, 0.0, MAX_QUANTITY, false, &text)? {
            automerge::ScalarValue::Int(n) => Ok(Some(n as f64)),
            automerge::ScalarValue::F64(n) => Ok(Some(n)),
            _ => Ok(None),
        },
    }
}

/// A required name within the title limit.
pub(crate) fn check_name(field: &str, name: &str) -> Result<(), ValueError> {
    let name = check_str(field, MAX_TITLE_BYTES, StrCheck::Free, name)?;
    if name.is_empty() {
        return Err(ValueError::Empty {
            field: field.to_string(),
        });
    }
    Ok(())
}

/// An optional short string within [`MAX_STR_BYTES`].
pub(crate) fn check_optional(field: &str, value: &Option<String>) -> Result<(), ValueError> {
    if let Some(v) = value {
        check_str(field, MAX_STR_BYTES, StrCheck::Free, v)?;
    }
    Ok(())
}

/// An optional quantity within range.
fn check_quantity(field: &str, quantity: Option<f64>) -> Result<(), ValueError> {
    if let Some(q) = quantity {
        number_value(field, 0.0, MAX_QUANTITY, false, q)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bom_lines_parse_from_the_compact_form() {
        let line = BomLine::parse(
            "steel tube 40x40x3; 6,5 ; m ; local steel merchant ; EN 10219; cut to length",
        )
        .expect("valid line");
        assert_eq!(
            line,
            BomLine {
                name: "steel tube 40x40x3".into(),
                quantity: Some(6.5),
                unit: Some("m".into()),
                sourcing: Some("local steel merchant".into()),
                reference: Some("EN 10219; cut to length".into()),
            }
        );
        assert_eq!(
            BomLine::parse("M12 bolt;8").expect("name and quantity"),
            BomLine {
                name: "M12 bolt".into(),
                quantity: Some(8.0),
                ..BomLine::default()
            }
        );
        let err = BomLine::parse(" ;3;m").expect_err("no name");
        assert!(err.to_string().contains(BOM_LINE_FORMAT), "{err}");
        assert!(matches!(
            BomLine::parse("bolt;lots"),
            Err(ValueError::NotANumber { .. })
        ));
        assert!(matches!(
            BomLine::parse("bolt;-1"),
            Err(ValueError::OutOfRange { .. })
        ));
    }

    #[test]
    fn parts_parse_from_the_compact_form() {
        assert_eq!(
            Part::parse("tine;spring steel;12").expect("valid part"),
            Part {
                name: "tine".into(),
                material: Some("spring steel".into()),
                quantity: Some(12.0),
            }
        );
        assert!(Part::parse(";steel").is_err());
    }

    #[test]
    fn edits_travel_as_tagged_json() {
        let edit = Edit::AddStep {
            text: "Cut the tubes".into(),
            at: None,
        };
        let json = serde_json::to_value(&edit).expect("serialise");
        assert_eq!(
            json,
            serde_json::json!({"op": "add_step", "text": "Cut the tubes"})
        );
        let back: Edit = serde_json::from_value(json).expect("deserialise");
        assert_eq!(back, edit);
        let set: Edit = serde_json::from_str(
            r#"{"op":"set","field":"licence.hardware","value":"CERN-OHL-S-2.0"}"#,
        )
        .expect("set");
        assert_eq!(set.name(), "set");
        let bom: Edit =
            serde_json::from_str(r#"{"op":"add_bom_line","line":{"name":"bolt","quantity":4}}"#)
                .expect("bom");
        assert!(matches!(bom, Edit::AddBomLine { line } if line.quantity == Some(4.0)));
    }
}

//! Turns edit flags into schema edits, reading text from files and standard input.

use crate::args::EditArgs;
use anyhow::{anyhow, bail, Context, Result};
use hedgerow_protocol::schema::{BomLine, Edit, Part};
use std::io::Read;
use std::path::Path;

/// Splits `FIELD=VALUE`, naming the flag in the error.
fn split_pair<'a>(flag: &str, text: &'a str) -> Result<(&'a str, &'a str)> {
    text.split_once('=')
        .map(|(k, v)| (k.trim(), v))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| anyhow!("--{flag} expects FIELD=VALUE, got `{text}`"))
}

/// Reads a UTF-8 text file, refusing other encodings with a clear message.
pub fn read_text_file(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    String::from_utf8(bytes).map_err(|e| {
        anyhow!(
            "{} is not UTF-8 text (invalid byte at offset {}); save it as UTF-8 and retry",
            path.display(),
            e.utf8_error().valid_up_to()
        )
    })
}

/// Reads all of standard input as UTF-8 text.
pub fn read_stdin_text() -> Result<String> {
    let mut bytes = Vec::new();
    std::io::stdin()
        .read_to_end(&mut bytes)
        .context("cannot read standard input")?;
    String::from_utf8(bytes).map_err(|e| {
        anyhow!("standard input is not UTF-8 text (invalid byte at offset {}); convert it to UTF-8 and retry", e.utf8_error().valid_up_to())
    })
}

/// Builds the edits for one command, in a fixed order: fields, text, lists, steps, materials, credits.
pub fn edits_from_args(args: &EditArgs) -> Result<Vec<Edit>> {
    let mut edits = Vec::new();
    for pair in &args.set {
        let (field, value) = split_pair("set", pair)?;
        edits.push(Edit::Set {
            field: field.into(),
            value: value.into(),
        });
    }
    for field in &args.unset {
        edits.push(Edit::Unset {
            field: field.clone(),
        });
    }
    for pair in &args.text_file {
        let (field, path) = split_pair("text-file", pair)?;
        edits.push(Edit::ReplaceText {
            field: field.into(),
            text: read_text_file(Path::new(path))?,
        });
    }
    if let Some(field) = &args.stdin {
        edits.push(Edit::ReplaceText {
            field: field.clone(),
            text: read_stdin_text()?,
        });
    }
    for pair in &args.append {
        let (field, text) = split_pair("append", pair)?;
        edits.push(Edit::AppendText {
            field: field.into(),
            text: text.into(),
        });
    }
    for tag in &args.tag {
        edits.push(Edit::AddItem {
            field: "tags".into(),
            item: tag.clone(),
        });
    }
    for tag in &args.untag {
        edits.push(Edit::RemoveItem {
            field: "tags".into(),
            item: tag.clone(),
        });
    }
    for pair in &args.add {
        let (field, item) = split_pair("add", pair)?;
        edits.push(Edit::AddItem {
            field: field.into(),
            item: item.into(),
        });
    }
    for pair in &args.remove {
        let (field, item) = split_pair("remove", pair)?;
        edits.push(Edit::RemoveItem {
            field: field.into(),
            item: item.into(),
        });
    }
    for text in &args.step {
        edits.push(Edit::AddStep {
            text: text.clone(),
            at: None,
        });
    }
    for pair in &args.edit_step {
        let (step, text) = split_pair("edit-step", pair)?;
        edits.push(Edit::EditStep {
            step: parse_position("edit-step", step)?,
            text: text.into(),
        });
    }
    for step in &args.remove_step {
        edits.push(Edit::RemoveStep { step: *step });
    }
    for pair in &args.move_step {
        let (from, to) = split_pair("move-step", pair)?;
        edits.push(Edit::MoveStep {
            from: parse_position("move-step", from)?,
            to: parse_position("move-step", to.trim())?,
        });
    }
    for line in &args.bom_line {
        edits.push(Edit::AddBomLine {
            line: BomLine::parse(line).map_err(|e| anyhow!("--bom-line `{line}`: {e}"))?,
        });
    }
    for pair in &args.edit_bom_line {
        let (position, line) = split_pair("edit-bom-line", pair)?;
        let position = match position.parse::<usize>() {
            Ok(n) if n >= 1 => n,
            _ => bail!("--edit-bom-line: `{position}` is not a line number (1, 2, 3...)"),
        };
        edits.push(Edit::EditBomLine {
            position,
            line: BomLine::parse(line).map_err(|e| anyhow!("--edit-bom-line `{pair}`: {e}"))?,
        });
    }
    for position in &args.remove_bom_line {
        edits.push(Edit::RemoveBomLine {
            position: *position,
        });
    }
    for part in &args.part {
        edits.push(Edit::AddPart {
            part: Part::parse(part).map_err(|e| anyhow!("--part `{part}`: {e}"))?,
        });
    }
    for credit in &args.contributor {
        let (name, role) = match credit.split_once(':') {
            Some((name, role)) => (name.trim().to_string(), Some(role.trim().to_string())),
            None => (credit.trim().to_string(), None),
        };
        edits.push(Edit::AddContributor { name, role });
    }
    for pair in &args.related {
        let (relation, design) = split_pair("related", pair)?;
        edits.push(Edit::AddRelated {
            relation: relation.into(),
            design: design.trim().into(),
        });
    }
    for outcome in &args.outcome {
        let (kind, detail) = match outcome.split_once(':') {
            Some((kind, detail)) => (kind.trim().to_string(), Some(detail.trim().to_string())),
            None => (outcome.trim().to_string(), None),
        };
        edits.push(Edit::AddOutcome {
            outcome: kind,
            detail,
        });
    }
    if let Some(place) = &args.built {
        edits.push(Edit::AddBuilt {
            place: Some(place.clone()).filter(|p| !p.is_empty()),
            note: None,
        });
    }
    Ok(edits)
}

fn parse_position(flag: &str, text: &str) -> Result<usize> {
    match text.trim().parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => bail!("--{flag}: `{text}` is not a step number (1, 2, 3...)"),
    }
}

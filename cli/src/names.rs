//! Warnings about names people will type: two commons with one name can only be told apart
//! by id, so the commands that create, join or list commons say so on standard error.

use anyhow::Result;
use hedgerow_node::api::Request;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

/// Whether a request can leave two commons sharing a name (or lists them).
pub fn may_share_names(request: &Request) -> bool {
    matches!(
        request,
        Request::CommonsCreate { .. }
            | Request::CommonsCreateStewarded { .. }
            | Request::CommonsList
            | Request::Join { .. }
    )
}

/// One line per name that several commons held here share (compared in any case).
pub fn shared_names(list: &Value) -> Vec<String> {
    let mut by_name: BTreeMap<String, (String, Vec<String>)> = BTreeMap::new();
    for commons in list.as_array().into_iter().flatten() {
        let name = commons.get("name").and_then(Value::as_str).unwrap_or("");
        let id = commons.get("id").and_then(Value::as_str).unwrap_or("");
        let entry = by_name
            .entry(name.trim().to_lowercase())
            .or_insert_with(|| (name.trim().to_string(), Vec::new()));
        entry.1.push(id.chars().take(8).collect());
    }
    by_name
        .into_values()
        .filter(|(_, ids)| ids.len() > 1)
        .map(|(name, ids)| {
            format!(
                "warning: {} commons here are named `{name}` ({}); choose one by its id (or a prefix of 4 or more characters), not its name",
                ids.len(),
                ids.join(", ")
            )
        })
        .collect()
}

/// Prints [`shared_names`] of the commons this home holds to standard error.
pub fn warn_shared_names(home: &Path) -> Result<()> {
    let list = crate::send(home, Request::CommonsList)?;
    for line in shared_names(&list) {
        eprintln!("{}", crate::output::line(&line));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_shared_in_any_case_are_reported_once() {
        let list = serde_json::json!([
            {"id": "AAAAAAAAAAAA", "name": "Farm Hack tools"},
            {"id": "BBBBBBBBBBBB", "name": "farm hack tools "},
            {"id": "CCCCCCCCCCCC", "name": "Atelier"},
        ]);
        let lines = shared_names(&list);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].contains("AAAAAAAA, BBBBBBBB"), "{}", lines[0]);
    }
}

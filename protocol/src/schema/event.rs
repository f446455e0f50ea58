//! An event: a Farm Hack gathering, a self-build workshop, a farm visit.
//!
//! Events exist to produce documentation ("events that result in new,
//! complete documentation of tools"), so an event lists the designs worked on
//! and its outcomes, and notes taken during it point back to it.

use super::edit::{check_optional, Edit};
use super::error::EditError;
use super::read::View;
use super::spec::{
    check_str, choice_field, is_date, list_field, num_field, str_field, text_field, Field,
    FieldType, StrCheck,
};
use super::write::{append_entry, apply_generic, entry_index, existing_list, opt_part};
use super::{
    DocKind, MAX_ID_BYTES, MAX_LIST_ITEMS, MAX_STR_BYTES, MAX_TAGS, MAX_TAG_BYTES, MAX_TEXT_BYTES,
    MAX_TITLE_BYTES,
};
use automerge::transaction::Transactable;
use automerge::{ScalarValue, ROOT};
use std::cmp::Ordering;

/// What kind of event it is (Farm Hack's event types, plus workshops and farm visits).
pub const EVENT_KINDS: &[&str] = &[
    "design",
    "build",
    "skills",
    "documentation",
    "software-hackathon",
    "conceptual-forum",
    "workshop",
    "farm-visit",
];

/// What happens at an event.
pub const ACTIVITIES: &[&str] = &[
    "build",
    "design",
    "document",
    "charrette",
    "demo",
    "training",
];

/// Where an event is in its life.
pub const EVENT_STATUSES: &[&str] = &["planned", "ongoing", "done", "cancelled"];

/// What an event produced.
pub const OUTCOME_KINDS: &[&str] = &[
    "new-design",
    "new-release",
    "units-built",
    "documentation-improved",
];

/// Field names of an event, in display order.
pub const NAMES: &[&str] = &[
    "title",
    "kind",
    "activities",
    "summary",
    "description",
    "start",
    "end",
    "location",
    "organisers",
    "topics",
    "tags",
    "designs",
    "status",
    "outcomes",
];

const DATE: usize = "yyyy-mm-ddThh:mm".len();
const ACTIVITY: FieldType = FieldType::Str {
    max: MAX_TAG_BYTES,
    check: StrCheck::OneOf(ACTIVITIES),
};
const PERSON: FieldType = FieldType::Str {
    max: MAX_TITLE_BYTES,
    check: StrCheck::Free,
};
const TOPIC: FieldType = FieldType::Str {
    max: MAX_TAG_BYTES,
    check: StrCheck::Free,
};
const DESIGN_ID: FieldType = FieldType::Str {
    max: MAX_ID_BYTES,
    check: StrCheck::DocId,
};
const OUTCOME: FieldType = FieldType::Record(&[
    choice_field("kind", OUTCOME_KINDS),
    str_field("detail", MAX_STR_BYTES),
]);

/// The event's field table.
pub(crate) static FIELDS: &[Field] = &[
    str_field("title", MAX_TITLE_BYTES),
    choice_field("kind", EVENT_KINDS),
    list_field("activities", ACTIVITIES.len(), &ACTIVITY, true),
    text_field("summary", MAX_TEXT_BYTES),
    text_field("description", MAX_TEXT_BYTES),
    Field {
        name: "start",
        ty: FieldType::Str {
            max: DATE,
            check: StrCheck::Date,
        },
    },
    Field {
        name: "end",
        ty: FieldType::Str {
            max: DATE,
            check: StrCheck::Date,
        },
    },
    Field {
        name: "location",
        ty: FieldType::Record(&[
            str_field("name", MAX_TITLE_BYTES),
            str_field("address", MAX_STR_BYTES),
            str_field("country", MAX_TITLE_BYTES),
            num_field("lat", -90.0, 90.0, false),
            num_field("lon", -180.0, 180.0, false),
        ]),
    },
    list_field("organisers", MAX_TAGS, &PERSON, true),
    list_field("topics", MAX_TAGS, &TOPIC, true),
    // Added in the third release: events made by earlier ones lack it until first tagged.
    list_field("tags", MAX_TAGS, &super::TAG_ITEM, true),
    list_field("designs", MAX_LIST_ITEMS, &DESIGN_ID, true),
    choice_field("status", EVENT_STATUSES),
    list_field("outcomes", MAX_LIST_ITEMS, &OUTCOME, false),
];

/// Writes the event's scalars of the skeleton.
pub(crate) fn init<T: Transactable>(tx: &mut T, title: &str) -> Result<(), super::SchemaError> {
    super::edit::check_name("title", title)?;
    tx.put(ROOT, "title", title.trim())
        .map_err(|e| super::SchemaError::automerge("written", e))
}

/// Applies an edit to an event.
pub(crate) fn apply<T: Transactable>(tx: &mut T, edit: &Edit) -> Result<(), EditError> {
    let kind = DocKind::Event;
    match edit {
        Edit::Set { field, value } if field == "start" || field == "end" => {
            check_dates(tx, field, value)?;
            apply_generic(tx, kind, FIELDS, edit)
        }
        Edit::AddOutcome { outcome, detail } => {
            let outcome = check_str(
                "outcomes.kind",
                MAX_TAG_BYTES,
                StrCheck::OneOf(OUTCOME_KINDS),
                outcome,
            )?;
            check_optional("outcomes.detail", detail)?;
            let mut parts = vec![("kind", ScalarValue::Str(outcome.into()))];
            parts.extend(opt_part(
                "outcomes",
                "detail",
                MAX_STR_BYTES,
                StrCheck::Free,
                detail,
            )?);
            append_entry(tx, kind, FIELDS, "outcomes", parts)
        }
        Edit::RemoveOutcome { position } => {
            let list = existing_list(&*tx, kind, FIELDS, "outcomes")?;
            let count = list.as_ref().map_or(0, |l| tx.length(l));
            let index = entry_index("outcomes", *position, count)?;
            match list {
                Some(list) => tx
                    .delete(&list, index)
                    .map_err(|e| EditError::automerge("written", e)),
                None => Ok(()),
            }
        }
        generic => apply_generic(tx, kind, FIELDS, generic),
    }
}

/// Refuses a start or end that would put the end before the start.
fn check_dates<T: Transactable>(tx: &T, field: &str, raw: &str) -> Result<(), EditError> {
    let new = check_str(field, DATE, StrCheck::Date, raw)?;
    let other_field = if field == "start" { "end" } else { "start" };
    let Some(other) = View::new(tx, None)
        .str(&ROOT, other_field)
        .filter(|d| is_date(d))
    else {
        return Ok(());
    };
    let (start, end) = if field == "start" {
        (new, other)
    } else {
        (other, new)
    };
    if compare_dates(&start, &end) == Ordering::Greater {
        return Err(EditError::EndBeforeStart { start, end });
    }
    Ok(())
}

/// Orders two dates; a time is compared only when both have one, so an all-day end on the start day is fine.
pub(crate) fn compare_dates(a: &str, b: &str) -> Ordering {
    let (a_day, a_time) = a.split_once('T').map_or((a, None), |(d, t)| (d, Some(t)));
    let (b_day, b_time) = b.split_once('T').map_or((b, None), |(d, t)| (d, Some(t)));
    a_day.cmp(b_day).then_with(|| match (a_time, b_time) {
        (Some(x), Some(y)) => x.cmp(y),
        _ => Ordering::Equal,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_compare_by_day_then_time() {
        assert_eq!(compare_dates("2025-06-14", "2025-06-16"), Ordering::Less);
        assert_eq!(
            compare_dates("2025-06-14T09:00", "2025-06-14"),
            Ordering::Equal
        );
        assert_eq!(
            compare_dates("2025-06-14T17:00", "2025-06-14T09:00"),
            Ordering::Greater
        );
        assert_eq!(
            compare_dates("2025-07-01", "2025-06-30T23:00"),
            Ordering::Greater
        );
    }
}

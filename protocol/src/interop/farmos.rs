//! farmOS equipment: the asset CSV export read, rows matched to designs by name, and the
//! split of a "built" link between what the commons sees and what stays on the farm's node.
//!
//! farmOS (2.x, 3.x) exports assets as CSV from its asset lists ("Export CSV"): a header row,
//! then one row per asset, with `id` and `uuid` first, then the base fields (`name`, `type`,
//! `status`, `notes`, `flag`, `parent`, `id_tag`, `is_location`, `is_fixed`, `created`,
//! `changed`, `archived`, ...) and an equipment asset's own `manufacturer`, `model` and
//! `serial_number`. Columns are found by their header name, in any order, so exports with
//! more or fewer base fields read alike; `uuid` and `name` are required.

use serde::{Deserialize, Serialize};

/// Largest CSV file read, in bytes.
pub const MAX_FILE_BYTES: usize = 16 * 1024 * 1024;
/// Most rows read.
pub const MAX_ROWS: usize = 10_000;
/// The least similarity (0 to 1) at which a design is offered for a row.
pub const SUGGEST_AT: f64 = 0.85;

/// What of a farmOS asset a "built" record in the synced document carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicAsset {
    /// The asset's UUID (unique across farmOS instances; it names no farm by itself).
    pub uuid: String,
    /// The equipment's model, as the farm recorded it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The farm's farmOS URL: only when the builder published it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub farm_url: Option<String>,
    /// The serial number: only when the builder published it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
}

/// A farmOS equipment asset a design was built as, with everything the farm knows of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuiltAsset {
    /// The asset's UUID.
    pub uuid: String,
    /// The farm's farmOS URL.
    pub farm_url: Option<String>,
    /// The serial number.
    pub serial: Option<String>,
    /// The model.
    pub model: Option<String>,
}

impl BuiltAsset {
    /// What goes into the synced document: the UUID and model, plus the farm URL and the
    /// serial number when `public`.
    pub fn public_part(&self, public: bool) -> PublicAsset {
        PublicAsset {
            uuid: self.uuid.clone(),
            model: self.model.clone(),
            farm_url: self.farm_url.clone().filter(|_| public),
            serial: self.serial.clone().filter(|_| public),
        }
    }
}

/// Whether text is a UUID (8-4-4-4-12 hex digits).
pub fn is_uuid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()))
}

/// A CSV export that cannot be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CsvError {
    /// Larger than [`MAX_FILE_BYTES`].
    #[error("the file is {bytes} bytes; an equipment export is read up to {max} bytes")]
    TooLarge {
        /// Its size.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// The header lacks a column farmOS always exports.
    #[error("no `{column}` column in the header; is this a farmOS asset CSV export? (its header starts `id,uuid,name`)")]
    MissingColumn {
        /// The column.
        column: &'static str,
    },
    /// The CSV itself is malformed.
    #[error("not CSV at line {line}: {reason}")]
    NotCsv {
        /// 1-based line.
        line: u64,
        /// What the parser said.
        reason: String,
    },
    /// More than [`MAX_ROWS`] rows.
    #[error("more than {max} rows")]
    TooManyRows {
        /// The limit.
        max: usize,
    },
}

/// Why one row is skipped (the others still are read).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RowError {
    /// The uuid cell is not a UUID.
    #[error("`{0}` is not a UUID")]
    BadUuid(String),
    /// The row is not equipment.
    #[error("a `{0}` asset, not equipment")]
    NotEquipment(String),
    /// No name.
    #[error("no name")]
    NoName,
}

/// One equipment row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Equipment {
    /// 1-based row number (after the header).
    pub row: usize,
    /// farmOS's internal id on its own farm.
    pub id: Option<String>,
    /// The asset's UUID.
    pub uuid: String,
    /// Its name.
    pub name: String,
    /// Its manufacturer.
    pub manufacturer: Option<String>,
    /// Its model.
    pub model: Option<String>,
    /// Its serial number.
    pub serial_number: Option<String>,
    /// active or archived.
    pub status: Option<String>,
}

/// One data row of the CSV by its line number: the equipment, or why it was skipped.
pub type ParsedRow = (usize, Result<Equipment, RowError>);

/// Reads a farmOS asset CSV export: each row as equipment, or why it was skipped.
pub fn parse(bytes: &[u8]) -> Result<Vec<ParsedRow>, CsvError> {
    if bytes.len() > MAX_FILE_BYTES {
        return Err(CsvError::TooLarge {
            bytes: bytes.len(),
            max: MAX_FILE_BYTES,
        });
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(bytes);
    let not_csv = |e: csv::Error| CsvError::NotCsv {
        line: e.position().map_or(1, |p| p.line()),
        reason: e.to_string(),
    };
    let header: Vec<String> = reader
        .headers()
        .map_err(not_csv)?
        .iter()
        .map(|h| h.trim().to_lowercase().replace(' ', "_"))
        .collect();
    let column = |name: &str| header.iter().position(|h| h == name);
    let uuid_at = column("uuid").ok_or(CsvError::MissingColumn { column: "uuid" })?;
    let name_at = column("name").ok_or(CsvError::MissingColumn { column: "name" })?;
    let (id_at, type_at, status_at) = (column("id"), column("type"), column("status"));
    let (make_at, model_at) = (column("manufacturer"), column("model"));
    let serial_at = column("serial_number").or_else(|| column("serial"));
    let mut rows = Vec::new();
    for (i, record) in reader.records().enumerate() {
        if i >= MAX_ROWS {
            return Err(CsvError::TooManyRows { max: MAX_ROWS });
        }
        let record = record.map_err(not_csv)?;
        let cell = |at: Option<usize>| {
            at.and_then(|a| record.get(a))
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_string)
        };
        let row = i + 1;
        let kind = cell(type_at);
        let uuid = cell(Some(uuid_at)).unwrap_or_default();
        let result = if let Some(kind) = kind.filter(|k| k != "equipment") {
            Err(RowError::NotEquipment(kind))
        } else if !is_uuid(&uuid) {
            Err(RowError::BadUuid(uuid))
        } else {
            match cell(Some(name_at)) {
                None => Err(RowError::NoName),
                Some(name) => Ok(Equipment {
                    row,
                    id: cell(id_at),
                    uuid: uuid.to_lowercase(),
                    name,
                    manufacturer: cell(make_at),
                    model: cell(model_at),
                    serial_number: cell(serial_at),
                    status: cell(status_at),
                }),
            }
        };
        rows.push((row, result));
    }
    Ok(rows)
}

/// Lower case, words only: how names are compared.
fn words(text: &str) -> String {
    text.to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// How alike an asset's name (or model) is to a design's name, 0 to 1: a farm often names a
/// machine after the design with a number or place ("Roller crimper #2"), so a design name
/// contained whole in the asset's counts nearly as much as the same name.
pub fn similarity(asset: &Equipment, design: &str) -> f64 {
    let design = words(design);
    if design.is_empty() {
        return 0.0;
    }
    [Some(&asset.name), asset.model.as_ref()]
        .into_iter()
        .flatten()
        .map(|text| {
            let text = words(text);
            let padded = format!(" {text} ");
            if text == design {
                1.0
            } else if padded.contains(&format!(" {design} ")) {
                0.95
            } else {
                strsim::jaro_winkler(&text, &design)
            }
        })
        .fold(0.0, f64::max)
}

/// The design (index into `designs`) most like the asset, with its similarity, when at least
/// [`SUGGEST_AT`] and not tied with another design.
pub fn suggest(asset: &Equipment, designs: &[String]) -> Option<(usize, f64)> {
    let mut scored: Vec<(usize, f64)> = designs
        .iter()
        .enumerate()
        .map(|(i, d)| (i, similarity(asset, d)))
        .filter(|(_, s)| *s >= SUGGEST_AT)
        .collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1));
    match scored.as_slice() {
        [best, second, ..] if (best.1 - second.1).abs() < f64::EPSILON => None,
        [best, ..] => Some(*best),
        [] => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CSV: &str = "id,uuid,name,type,status,manufacturer,model,serial_number\n\
        3,0b6f2f4e-8f5e-4c1e-9a39-2a4f5d3c9e01,Roller crimper #2,equipment,active,Home built,RC-1.6,SN-77\n\
        4,not-a-uuid,Seeder,equipment,active,,,\n\
        5,1c6f2f4e-8f5e-4c1e-9a39-2a4f5d3c9e02,North field,land,active,,,\n";

    #[test]
    fn rows_read_by_header_name() {
        let rows = parse(CSV.as_bytes()).expect("reads");
        assert_eq!(rows.len(), 3);
        let first = rows[0].1.as_ref().expect("equipment");
        assert_eq!(first.name, "Roller crimper #2");
        assert_eq!(first.serial_number.as_deref(), Some("SN-77"));
        assert_eq!(rows[1].1, Err(RowError::BadUuid("not-a-uuid".into())));
        assert_eq!(rows[2].1, Err(RowError::NotEquipment("land".into())));
        assert_eq!(
            parse(b"id,name\n1,x\n"),
            Err(CsvError::MissingColumn { column: "uuid" })
        );
    }

    #[test]
    fn names_suggest_designs() {
        let rows = parse(CSV.as_bytes()).expect("reads");
        let asset = rows[0].1.as_ref().expect("equipment");
        let designs = vec!["Bicycle thresher".to_string(), "Roller Crimper".to_string()];
        assert_eq!(suggest(asset, &designs).map(|(i, _)| i), Some(1));
        assert_eq!(suggest(asset, &["Root washer".to_string()]), None);
    }

    #[test]
    fn only_public_links_name_the_farm() {
        let built = BuiltAsset {
            uuid: "0b6f2f4e-8f5e-4c1e-9a39-2a4f5d3c9e01".into(),
            farm_url: Some("https://farm.example".into()),
            serial: Some("SN-77".into()),
            model: Some("RC-1.6".into()),
        };
        assert_eq!(built.public_part(false).farm_url, None);
        assert_eq!(built.public_part(false).serial, None);
        assert_eq!(built.public_part(true).serial.as_deref(), Some("SN-77"));
    }
}

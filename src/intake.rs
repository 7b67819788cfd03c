//! File intake: leads from a CSV or JSONL file, each with its line number, so a malformed
//! row is reported where it is and the rest still run. CSV columns that are not canonical
//! fields become `attributes` (numbers parsed as numbers).

use std::io::BufRead;
use std::path::Path;

use serde_json::{Map, Number, Value};

use crate::lead::RawLead;

/// A row that could not be read as a lead.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct BadRow {
    pub line: u64,
    pub reason: String,
}

#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error("cannot read {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("{path}: unknown file type; use .csv, .jsonl or .ndjson")]
    UnknownFormat { path: String },
}

/// One row: its line number and the lead, or why it is not one.
pub type Row = (u64, Result<RawLead, BadRow>);

/// Reads every row of `path` (CSV by `.csv`, JSON lines by `.jsonl`/`.ndjson`/`.json`).
pub fn read_file(path: &Path) -> Result<Vec<Row>, IntakeError> {
    let err = |reason: String| IntakeError::Read {
        path: path.display().to_string(),
        reason,
    };
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_lowercase();
    match ext.as_str() {
        "csv" => {
            let file = std::fs::File::open(path).map_err(|e| err(e.to_string()))?;
            read_csv(file).map_err(err)
        }
        "jsonl" | "ndjson" | "json" => {
            let file = std::fs::File::open(path).map_err(|e| err(e.to_string()))?;
            Ok(read_jsonl(std::io::BufReader::new(file)))
        }
        _ => Err(IntakeError::UnknownFormat {
            path: path.display().to_string(),
        }),
    }
}

pub fn read_csv(input: impl std::io::Read) -> Result<Vec<Row>, String> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(input);
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| format!("the header row is unreadable: {e}"))?
        .iter()
        .map(|h| h.trim().to_lowercase())
        .collect();
    let mut rows = Vec::new();
    let mut record = csv::StringRecord::new();
    loop {
        let line = reader.position().line() + 1;
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                let line = record.position().map_or(line, |p| p.line());
                if record.iter().all(|c| c.trim().is_empty()) {
                    continue;
                }
                if record.len() != headers.len() {
                    rows.push((
                        line,
                        Err(BadRow {
                            line,
                            reason: format!(
                                "has {} columns, the header has {}",
                                record.len(),
                                headers.len()
                            ),
                        }),
                    ));
                    continue;
                }
                let mut map = Map::new();
                for (h, cell) in headers.iter().zip(record.iter()) {
                    let cell = cell.trim();
                    if cell.is_empty() {
                        continue;
                    }
                    let canonical = crate::lead::CANONICAL_FIELDS.contains(&h.as_str());
                    map.insert(
                        h.clone(),
                        if canonical {
                            Value::String(cell.into())
                        } else {
                            cell_value(cell)
                        },
                    );
                }
                rows.push((line, Ok(RawLead(map))));
            }
            Err(e) => {
                rows.push((
                    line,
                    Err(BadRow {
                        line,
                        reason: format!("unreadable CSV: {e}"),
                    }),
                ));
            }
        }
    }
    Ok(rows)
}

/// An attribute cell: a number when it reads as one, else text.
fn cell_value(cell: &str) -> Value {
    if let Ok(i) = cell.parse::<i64>() {
        return Value::Number(i.into());
    }
    match cell.parse::<f64>().ok().and_then(Number::from_f64) {
        Some(n) if !cell.eq_ignore_ascii_case("nan") && !cell.eq_ignore_ascii_case("inf") => {
            Value::Number(n)
        }
        _ => Value::String(cell.into()),
    }
}

pub fn read_jsonl(input: impl BufRead) -> Vec<Row> {
    let mut rows = Vec::new();
    for (i, line) in input.lines().enumerate() {
        let n = i as u64 + 1;
        let bad = |reason: String| (n, Err(BadRow { line: n, reason }));
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                rows.push(bad(format!("unreadable: {e}")));
                continue;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        rows.push(match serde_json::from_str::<Value>(&line) {
            Ok(Value::Object(map)) => (n, Ok(RawLead(map))),
            Ok(_) => bad("not a JSON object".into()),
            Err(e) => bad(format!("not valid JSON: {e}")),
        });
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_rows_keep_line_numbers_and_report_column_mismatches() {
        let csv = "email,company,budget\na@acme.io,Acme,50000\nb@acme.io,Acme\n\"c@acme.io\",\"Acme, Inc.\",big\n";
        let rows = read_csv(csv.as_bytes()).unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].0, 2);
        let first = rows[0].1.as_ref().unwrap();
        assert_eq!(first.0["budget"], Value::from(50000));
        let bad = rows[1].1.as_ref().unwrap_err();
        assert_eq!(bad.line, 3);
        assert!(bad.reason.contains("2 columns"));
        assert_eq!(
            rows[2].1.as_ref().unwrap().0["company"],
            Value::from("Acme, Inc.")
        );
    }

    #[test]
    fn jsonl_reports_lines_that_are_not_objects() {
        let rows = read_jsonl("{\"email\":\"a@acme.io\"}\nnot json\n[1]\n".as_bytes());
        assert!(rows[0].1.is_ok());
        assert_eq!(rows[1].1.as_ref().unwrap_err().line, 2);
        assert!(rows[2].1.as_ref().unwrap_err().reason.contains("object"));
    }
}

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
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(LineEndings::new(input));
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

/// Line endings as the csv crate counts them: `\r\n` (Windows, Excel) and a lone `\r`
/// (Excel for Mac's "CSV (Macintosh)") both become `\n`. The crate ends a row at either, but
/// counts lines only at a `\n` it has passed: errors in a `\r\n` file named the line before,
/// and in a `\r` file always line 1. Hand-written because it is a small filter around `Read`.
struct LineEndings<R> {
    inner: R,
    /// A `\r` that ended the last read: whether a `\n` follows is in the next one.
    held_cr: bool,
}

impl<R> LineEndings<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            held_cr: false,
        }
    }
}

impl<R: std::io::Read> std::io::Read for LineEndings<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if buf.len() < 2 {
            // Too small to hold a carried `\r` and a new byte; csv reads in 8 KiB blocks.
            return self.inner.read(buf);
        }
        loop {
            let n = self.inner.read(&mut buf[1..])?;
            if n == 0 {
                let held = std::mem::take(&mut self.held_cr);
                buf[0] = b'\n';
                return Ok(usize::from(held));
            }
            // Slot 0 holds the carried `\r`, if any.
            let (from, to) = (if self.held_cr { 0 } else { 1 }, n + 1);
            buf[0] = b'\r';
            self.held_cr = false;
            let mut w = 0;
            for i in from..to {
                match buf[i] {
                    b'\r' if i + 1 == to => self.held_cr = true,
                    b'\r' if buf[i + 1] == b'\n' => {}
                    b'\r' => {
                        buf[w] = b'\n';
                        w += 1;
                    }
                    b => {
                        buf[w] = b;
                        w += 1;
                    }
                }
            }
            // Only a carried `\r` came of this read: 0 would mean the end, so read on.
            if w > 0 {
                return Ok(w);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_ending_in_a_lone_carriage_return_are_numbered() {
        let csv = "email,company\ra@acme.io,Acme\rb@acme.io\r\"c@acme.io\",\"Acme\rInc.\"\r";
        let rows = read_csv(csv.as_bytes()).unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].0, 2);
        let bad = rows[1].1.as_ref().unwrap_err();
        assert_eq!(bad.line, 3, "{}", bad.reason);
        assert_eq!(
            rows[2].1.as_ref().unwrap().0["company"],
            Value::from("Acme\nInc.")
        );
        // A file with `\r\n` endings is left as it is.
        let rows = read_csv("email,company\r\na@acme.io,Acme\r\nb@acme.io\r\n".as_bytes()).unwrap();
        let lines: Vec<u64> = rows.iter().map(|r| r.0).collect();
        assert_eq!(lines, [2, 3], "{rows:?}");
    }

    /// A `\r\n` split across reads (the filter carries the `\r`), one byte a read.
    #[test]
    fn line_endings_survive_any_read_boundary() {
        struct Trickle<'a>(&'a [u8]);
        impl std::io::Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let Some((first, rest)) = self.0.split_first() else {
                    return Ok(0);
                };
                buf[0] = *first;
                self.0 = rest;
                Ok(1)
            }
        }
        let text = b"a\r\nb\rc\r\r\nd\r";
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut LineEndings::new(Trickle(text)), &mut out).unwrap();
        assert_eq!(out, b"a\nb\nc\n\nd\n");
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut LineEndings::new(&text[..]), &mut out).unwrap();
        assert_eq!(out, b"a\nb\nc\n\nd\n");
        let csv = "email,company\r\na@acme.io,Acme\r\nb@acme.io\r\n";
        let rows = read_csv(Trickle(csv.as_bytes())).unwrap();
        assert_eq!(rows[1].1.as_ref().unwrap_err().line, 3);
    }

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

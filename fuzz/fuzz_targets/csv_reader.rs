//! The CSV reader (`intake::read_csv`, what `leadgate run FILE.csv` reads) on any bytes,
//! with the fuzzer's own header row and behind a fixed one (as tests/props.rs does). It
//! never panics; a file it cannot read is an `Err` with a reason, and a bad row is a value
//! that names its line.

#![no_main]

use leadgate::intake::read_csv;
use libfuzzer_sys::fuzz_target;

fn check(input: &[u8]) {
    match read_csv(input) {
        Err(reason) => assert!(!reason.is_empty()),
        Ok(rows) => {
            for (n, row) in &rows {
                // Lines count from 1. Neither `>= 2` nor in order: the csv crate ends a record
                // at a lone `\r` too but counts lines by `\n`, so around old-Mac line ends a
                // row may report the header's line or an earlier one (found by this target; a
                // reporting quirk, the rows themselves are right).
                assert!(*n >= 1, "line {n}");
                if let Err(bad) = row {
                    assert_eq!(bad.line, *n);
                    assert!(!bad.reason.is_empty());
                }
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    let mut input = b"email,company,budget\n".to_vec();
    input.extend_from_slice(data);
    check(&input);
});

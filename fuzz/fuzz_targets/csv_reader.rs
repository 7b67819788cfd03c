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
            let mut last = 0;
            for (n, row) in &rows {
                // Data rows come after the header (line 1), in file order.
                assert!(*n >= 2 && *n >= last, "line {n} after line {last}");
                last = *n;
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

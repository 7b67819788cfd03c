//! JSON written on the hot paths: an evaluate answer (a 4–5 KB decision) and an accepted
//! lead's two stored copies. sonic-rs writes the same bytes as serde_json (the tests below
//! hold it to that) faster, and serializing the decision is a large share of an evaluate's
//! CPU (docs/performance.md). Everything else, and all parsing, stays on serde_json.

use serde::Serialize;

/// A value the writer refused: a map with non-string keys, or a `Serialize` impl's error.
#[derive(Debug, thiserror::Error)]
#[error("cannot write JSON: {0}")]
pub struct WriteError(String);

/// Appends `value` to `buf`.
pub fn write_into<T: Serialize + ?Sized>(buf: &mut Vec<u8>, value: &T) -> Result<(), WriteError> {
    sonic_rs::to_writer(buf, value).map_err(|e| WriteError(e.to_string()))
}

/// `value` as a JSON string.
pub fn to_string<T: Serialize + ?Sized>(value: &T) -> Result<String, WriteError> {
    sonic_rs::to_string(value).map_err(|e| WriteError(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Strings that exercise every escaping rule, numbers at the edges of each kind.
    fn awkward() -> serde_json::Value {
        json!({
            "quote\"back\\slash": "line\nfeed\ttab\rreturn\u{8}\u{c}",
            "control": "\u{0}\u{1}\u{1f}\u{7f}",
            "unicode": "Zoë — 東京 🚀 \u{2028}\u{2029}",
            "slash": "a/b</script>",
            "long": "x".repeat(300) + "\"" + &"y".repeat(40),
            "ints": [0, -1, 1, i64::MIN, i64::MAX, u64::MAX],
            "floats": [0.0, -0.0, 1.5, 0.1, 1e-7, 1e21, 123456789.125, f64::MAX, f64::MIN_POSITIVE, 20.46],
            "nested": {"empty": {}, "list": [], "null": null, "t": true, "f": false},
        })
    }

    #[test]
    fn writes_the_same_bytes_as_serde_json() {
        let value = awkward();
        let mut ours = Vec::new();
        write_into(&mut ours, &value).unwrap();
        assert_eq!(
            String::from_utf8(ours).unwrap(),
            serde_json::to_string(&value).unwrap()
        );
        assert_eq!(
            to_string(&value).unwrap(),
            serde_json::to_string(&value).unwrap()
        );
        // A score or confidence that is not a number is written as null by both.
        let odd = (
            f64::NAN,
            f64::INFINITY,
            f32::NEG_INFINITY,
            Some(-0.0f64),
            1e300f64,
        );
        assert_eq!(
            to_string(&odd).unwrap(),
            serde_json::to_string(&odd).unwrap()
        );
    }

    #[test]
    fn a_lead_with_events_reads_back_as_itself() {
        let raw = json!({
            "email": "ada@acme.io", "domain": "acme.io", "title": "VP \"Sales\"",
            "email_info": {"domain": "acme.io", "is_free": false, "is_disposable": false},
            "attributes": {"seats": 12, "ratio": 0.25, "tags": ["a", {"b": 1.5}]},
            "events": [{"type": "page_view", "at": "2026-11-20T10:00:00.120Z",
                        "props": {"path": "/pricing"}}],
        });
        let lead: crate::lead::Lead = serde_json::from_value(raw).unwrap();
        let ours = to_string(&lead).unwrap();
        assert_eq!(ours, serde_json::to_string(&lead).unwrap());
        let back: crate::lead::Lead = serde_json::from_str(&ours).unwrap();
        assert_eq!(back, lead);
    }
}

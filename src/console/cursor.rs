//! The leads list's keyset cursor: the last row's decision id and a fingerprint of the
//! filters it was made for, so a cursor replayed with other filters is refused instead of
//! answering a page of some other query.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CursorError {
    #[error("the cursor is not one this server made (garbled or truncated); copy `next_cursor` from the previous page or start again without it")]
    Garbled,
    #[error("the cursor is stale: it was made for other filters; repeat the filters it came with or start again without `cursor`")]
    OtherQuery,
}

/// Fingerprint of a query's filters (everything but `limit` and `cursor`).
pub fn fingerprint(filters: &str) -> String {
    let digest = Sha256::digest(filters.as_bytes());
    digest[..6].iter().map(|b| format!("{b:02x}")).collect()
}

pub fn encode(decision_id: i64, fingerprint: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("v1.{decision_id}.{fingerprint}"))
}

/// The decision id the next page starts below.
pub fn decode(cursor: &str, fingerprint: &str) -> Result<i64, CursorError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor.trim())
        .map_err(|_| CursorError::Garbled)?;
    let text = String::from_utf8(bytes).map_err(|_| CursorError::Garbled)?;
    let mut parts = text.splitn(3, '.');
    let (Some("v1"), Some(id), Some(fp)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(CursorError::Garbled);
    };
    let id: i64 = id.parse().map_err(|_| CursorError::Garbled)?;
    if id <= 0 {
        return Err(CursorError::Garbled);
    }
    if fp != fingerprint {
        return Err(CursorError::OtherQuery);
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_and_is_refused_for_other_filters_or_when_garbled() {
        let fp = fingerprint("grade=A");
        let c = encode(42, &fp);
        assert_eq!(decode(&c, &fp), Ok(42));
        assert_eq!(
            decode(&c, &fingerprint("grade=B")),
            Err(CursorError::OtherQuery)
        );
        assert_eq!(decode("not a cursor!", &fp), Err(CursorError::Garbled));
        assert_eq!(
            decode(&URL_SAFE_NO_PAD.encode("v1.-3.x"), &fp),
            Err(CursorError::Garbled)
        );
    }
}

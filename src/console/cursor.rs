//! The leads list's keyset cursor: the last row's position (decided at, decision id) and a fingerprint of the
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

/// Where a page ended: the list is ordered by decision time, then decision id, newest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub decided_at: i64,
    pub decision_id: i64,
}

pub fn encode(at: Position, fingerprint: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!(
        "v2.{}.{}.{fingerprint}",
        at.decided_at, at.decision_id
    ))
}

/// The position the next page starts below.
pub fn decode(cursor: &str, fingerprint: &str) -> Result<Position, CursorError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor.trim())
        .map_err(|_| CursorError::Garbled)?;
    let text = String::from_utf8(bytes).map_err(|_| CursorError::Garbled)?;
    let mut parts = text.splitn(4, '.');
    let (Some("v2"), Some(at), Some(id), Some(fp)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(CursorError::Garbled);
    };
    let decided_at: i64 = at.parse().map_err(|_| CursorError::Garbled)?;
    let decision_id: i64 = id.parse().map_err(|_| CursorError::Garbled)?;
    if decision_id <= 0 || decided_at < 0 {
        return Err(CursorError::Garbled);
    }
    if fp != fingerprint {
        return Err(CursorError::OtherQuery);
    }
    Ok(Position {
        decided_at,
        decision_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_and_is_refused_for_other_filters_or_when_garbled() {
        let fp = fingerprint("grade=A");
        let at = Position {
            decided_at: 1_700_000_000_000,
            decision_id: 42,
        };
        let c = encode(at, &fp);
        assert_eq!(decode(&c, &fp), Ok(at));
        assert_eq!(
            decode(&c, &fingerprint("grade=B")),
            Err(CursorError::OtherQuery)
        );
        assert_eq!(decode("not a cursor!", &fp), Err(CursorError::Garbled));
        assert_eq!(
            decode(&URL_SAFE_NO_PAD.encode("v2.5.-3.x"), &fp),
            Err(CursorError::Garbled)
        );
    }
}

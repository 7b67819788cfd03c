//! Console sessions: a token entered once on the login form becomes an HttpOnly,
//! SameSite=Strict cookie. The cookie is signed, not looked up: it carries its expiry, a tag
//! of the token that opened it and a nonce, under an HMAC-SHA256 keyed by a secret derived
//! from the installation's secret in the store. So every replica on one store accepts it and
//! a restart does not sign anyone out. Each request checks the signature, the expiry and
//! that the token is still in `[server] api_tokens` (removing a token ends its sessions);
//! whether it sees full emails is read from `[server] pii_tokens` at each request too.
//! The CSRF token that every state-changing form sends back is the HMAC of the nonce.
//! Without `api_tokens` (loopback only) a session is opened on the first page, so the CSRF
//! check is the same.
//!
//! Signing out drops the cookie in the browser and refuses the session on this process;
//! another replica refuses it once it expires or its token is removed.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The cookie's name.
pub const COOKIE: &str = "leadgate_session";

/// How long a session lasts without a new login.
const LIFETIME: Duration = Duration::from_secs(12 * 3600);

/// The tag of a session opened without a token (no `api_tokens`, loopback only).
const OPEN: &str = "open";

/// Most sign-outs remembered; past it the oldest are forgotten (they expire anyway).
const MOST_CLOSED: usize = 10_000;

/// What the key for console sessions is derived for (see `Store::derived_key`).
pub const KEY_PURPOSE: &str = "leadgate console sessions v1";

#[derive(Debug, Clone)]
pub struct Session {
    pub csrf: String,
    /// Whether the token that opened it may see full email addresses.
    pub pii: bool,
}

pub struct Sessions {
    key: [u8; 32],
    /// The tag of each token that may open a session, and whether it sees full emails.
    tokens: HashMap<String, bool>,
    /// Sessions signed out on this process: nonce → expiry (unix seconds).
    closed: Mutex<HashMap<String, i64>>,
}

impl Sessions {
    /// Sessions signed with `key`, for these `[server] api_tokens` and `pii_tokens`.
    pub fn new(key: [u8; 32], api_tokens: &[String], pii_tokens: &[String]) -> Self {
        let mut s = Sessions {
            key,
            tokens: HashMap::new(),
            closed: Mutex::default(),
        };
        s.tokens = api_tokens
            .iter()
            .map(|t| (s.tag(t), pii_tokens.contains(t)))
            .collect();
        s
    }

    /// Sessions under a key of this process's own: they end with it (tests, tools).
    pub fn ephemeral(api_tokens: &[String], pii_tokens: &[String]) -> Self {
        let mut key = [0u8; 32];
        // The OS random source failing leaves a zero key: sessions still expire and still
        // need a listed token, and the daemon always passes a real key.
        let _ = getrandom::fill(&mut key);
        Self::new(key, api_tokens, pii_tokens)
    }

    fn mac(&self, parts: &[&str]) -> Hmac<Sha256> {
        // Any key length is valid for HMAC: `new_from_slice` cannot fail here.
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        for p in parts {
            mac.update(p.as_bytes());
            mac.update(b".");
        }
        mac
    }

    fn hex_mac(&self, parts: &[&str]) -> String {
        let out = self.mac(parts).finalize().into_bytes();
        out.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// A token's tag: short, keyed (it says nothing of the token to a cookie's reader).
    fn tag(&self, token: &str) -> String {
        self.hex_mac(&["token", token])[..16].to_string()
    }

    /// Opens a session for `token` (None: no tokens are configured); answers the cookie's
    /// value and the session.
    pub fn open(&self, token: Option<&str>) -> (String, Session) {
        let tag = token.map_or_else(|| OPEN.to_string(), |t| self.tag(t));
        let expires = chrono::Utc::now().timestamp() + LIFETIME.as_secs() as i64;
        let nonce = uuid::Uuid::new_v4().simple().to_string();
        let exp = expires.to_string();
        let mac = self.hex_mac(&[&exp, &tag, &nonce]);
        let id = format!("{exp}.{tag}.{nonce}.{mac}");
        let session = self
            .session(&tag, &nonce)
            .expect("a tag made here is known");
        (id, session)
    }

    fn session(&self, tag: &str, nonce: &str) -> Option<Session> {
        let pii = if tag == OPEN {
            // Open sessions exist only while no token is configured (loopback only).
            if !self.tokens.is_empty() {
                return None;
            }
            true
        } else {
            *self.tokens.get(tag)?
        };
        Some(Session {
            csrf: self.hex_mac(&["csrf", nonce])[..32].to_string(),
            pii,
        })
    }

    /// The session a cookie's value names, when its signature holds, it has not expired,
    /// its token is still configured and it was not signed out here.
    pub fn get(&self, id: &str) -> Option<Session> {
        let mut parts = id.split('.');
        let (exp, tag, nonce, mac) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let sent: Vec<u8> = (0..mac.len())
            .step_by(2)
            .map(|i| {
                mac.get(i..i + 2)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
            })
            .collect::<Option<_>>()?;
        self.mac(&[exp, tag, nonce]).verify_slice(&sent).ok()?;
        let expires: i64 = exp.parse().ok()?;
        if expires <= chrono::Utc::now().timestamp() || self.lock().contains_key(nonce) {
            return None;
        }
        self.session(tag, nonce)
    }

    /// Signs the session out on this process.
    pub fn close(&self, id: &str) {
        let mut parts = id.split('.');
        let (Some(exp), Some(_), Some(nonce)) = (parts.next(), parts.next(), parts.next()) else {
            return;
        };
        let now = chrono::Utc::now().timestamp();
        let mut closed = self.lock();
        closed.retain(|_, e| *e > now);
        if closed.len() >= MOST_CLOSED {
            if let Some(oldest) = closed
                .iter()
                .min_by_key(|(_, e)| **e)
                .map(|(k, _)| k.clone())
            {
                closed.remove(&oldest);
            }
        }
        closed.insert(
            nonce.to_string(),
            exp.parse().unwrap_or(now + LIFETIME.as_secs() as i64),
        );
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, i64>> {
        // A panic while holding the lock leaves a map that is still whole.
        self.closed.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The `Set-Cookie` value for a session id.
pub fn set_cookie(id: &str) -> String {
    format!(
        "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
        LIFETIME.as_secs()
    )
}

/// The `Set-Cookie` value that ends the session in the browser.
pub fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// The session id in a `Cookie` header.
pub fn from_cookie_header(header: &str) -> Option<&str> {
    header
        .split(';')
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> (Vec<String>, Vec<String>) {
        (
            vec![
                "admin-token-0123456789".into(),
                "rep-token-0123456789ab".into(),
            ],
            vec!["admin-token-0123456789".into()],
        )
    }

    #[test]
    fn a_session_is_found_by_its_cookie_until_closed() {
        let (api, pii) = tokens();
        let s = Sessions::new([7; 32], &api, &pii);
        let (id, session) = s.open(Some(&api[0]));
        let header = format!("other=1; {COOKIE}={id}");
        let found = s.get(from_cookie_header(&header).unwrap()).unwrap();
        assert_eq!(found.csrf, session.csrf);
        assert!(found.pii);
        s.close(&id);
        assert!(s.get(&id).is_none());
        assert!(s.get("forged").is_none());
    }

    #[test]
    fn another_replica_with_the_same_key_accepts_the_session_and_a_forgery_is_refused() {
        let (api, pii) = tokens();
        let (a, b) = (
            Sessions::new([7; 32], &api, &pii),
            Sessions::new([7; 32], &api, &pii),
        );
        let (id, session) = a.open(Some(&api[1]));
        let there = b.get(&id).expect("the same key accepts it");
        assert_eq!(there.csrf, session.csrf);
        assert!(!there.pii, "the rep's token is not in pii_tokens");
        // Another key, a changed expiry, a changed tag: all refused.
        assert!(Sessions::new([8; 32], &api, &pii).get(&id).is_none());
        let far = (chrono::Utc::now().timestamp() + 10 * 365 * 86_400).to_string();
        let mut parts: Vec<&str> = id.split('.').collect();
        parts[0] = &far;
        assert!(a.get(&parts.join(".")).is_none());
        let admin_tag = a.tag(&api[0]);
        let mut parts: Vec<&str> = id.split('.').collect();
        parts[1] = &admin_tag;
        assert!(
            a.get(&parts.join(".")).is_none(),
            "a rep cannot make itself admin"
        );
    }

    #[test]
    fn removing_a_token_ends_its_sessions_and_pii_follows_the_config() {
        let (api, pii) = tokens();
        let (id, _) = Sessions::new([7; 32], &api, &pii).open(Some(&api[0]));
        let without = Sessions::new([7; 32], &api[1..], &[]);
        assert!(without.get(&id).is_none());
        let not_pii = Sessions::new([7; 32], &api, &[]);
        assert!(!not_pii.get(&id).unwrap().pii);
        // A session opened without tokens is refused once tokens are configured.
        let (open, session) = Sessions::new([7; 32], &[], &[]).open(None);
        assert!(session.pii);
        assert!(Sessions::new([7; 32], &api, &pii).get(&open).is_none());
        assert!(Sessions::new([7; 32], &[], &[]).get(&open).is_some());
    }

    #[test]
    fn an_expired_session_is_refused() {
        let s = Sessions::new([7; 32], &[], &[]);
        let exp = (chrono::Utc::now().timestamp() - 1).to_string();
        let nonce = "0123456789abcdef";
        let mac = s.hex_mac(&[&exp, OPEN, nonce]);
        assert!(s.get(&format!("{exp}.{OPEN}.{nonce}.{mac}")).is_none());
        let exp = (chrono::Utc::now().timestamp() + 60).to_string();
        let mac = s.hex_mac(&[&exp, OPEN, nonce]);
        assert!(s.get(&format!("{exp}.{OPEN}.{nonce}.{mac}")).is_some());
    }
}

//! Console sessions: a token entered once on the login form becomes an HttpOnly,
//! SameSite=Strict cookie naming a session held in memory (a restart asks again). Each
//! session has its own CSRF token, which every state-changing form sends back.
//! Without `api_tokens` (loopback only) a session is opened on the first page, so the CSRF
//! check is the same.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The cookie's name.
pub const COOKIE: &str = "leadgate_session";

/// How long a session lasts without a new login.
const LIFETIME: Duration = Duration::from_secs(12 * 3600);

/// Most sessions held; the oldest are dropped past it (a bound on memory, not a limit anyone
/// should reach).
const MOST: usize = 10_000;

#[derive(Debug, Clone)]
pub struct Session {
    pub csrf: String,
    /// Whether the token that opened it may see full email addresses.
    pub pii: bool,
    expires: Instant,
}

#[derive(Default)]
pub struct Sessions {
    held: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    /// Opens a session; answers its id (the cookie's value).
    pub fn open(&self, pii: bool) -> (String, Session) {
        let id = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let session = Session {
            csrf: uuid::Uuid::new_v4().simple().to_string(),
            pii,
            expires: Instant::now() + LIFETIME,
        };
        let mut held = self.lock();
        let now = Instant::now();
        held.retain(|_, s| s.expires > now);
        if held.len() >= MOST {
            if let Some(oldest) = held
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(k, _)| k.clone())
            {
                held.remove(&oldest);
            }
        }
        held.insert(id.clone(), session.clone());
        (id, session)
    }

    pub fn get(&self, id: &str) -> Option<Session> {
        let held = self.lock();
        held.get(id).filter(|s| s.expires > Instant::now()).cloned()
    }

    pub fn close(&self, id: &str) {
        self.lock().remove(id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        // A panic while holding the lock leaves a map that is still whole.
        self.held.lock().unwrap_or_else(|e| e.into_inner())
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

    #[test]
    fn a_session_is_found_by_its_cookie_until_closed() {
        let s = Sessions::default();
        let (id, session) = s.open(true);
        let header = format!("other=1; {COOKIE}={id}");
        let found = s.get(from_cookie_header(&header).unwrap()).unwrap();
        assert_eq!(found.csrf, session.csrf);
        assert!(found.pii);
        s.close(&id);
        assert!(s.get(&id).is_none());
        assert!(s.get("forged").is_none());
    }
}

//! OAuth 2.0 access tokens for connectors with `auth = { kind = "oauth2", token_url }`
//! (Salesforce): the refresh-token grant when a refresh token is configured, else client
//! credentials. One [`TokenSource`] per connector is shared by every worker:
//!
//! - a token is refreshed before it expires (`expires_in`, or the manifest's `lifetime`
//!   when the vendor sends none, less [`REFRESH_MARGIN`]);
//! - a 401 refreshes it, but only if nobody has since: each token carries a generation, and
//!   a caller holding a stale one just picks up the new token;
//! - one refresh at a time: the token lives behind a `tokio::sync::Mutex` held across the
//!   refresh call, so fifty workers that all need a token cause one request to the vendor.
//!
//! Hand-written rather than the `oauth2` crate: two form posts and a JSON answer, and the
//! crate would bring its own HTTP client stack beside ours. Must not: log or return tokens
//! or secrets in errors (only the vendor's `error` / `error_description`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::error::{ConnectorError, ErrorKind};

/// A token expiring sooner than this is refreshed before use: a call made with it must not
/// see it expire in flight.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(60);
/// Token lifetime when neither the vendor (`expires_in`) nor the manifest (`lifetime`) says:
/// Salesforce's default session timeout. A shorter org policy shows up as a 401 and is
/// refreshed then.
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(2 * 3600);
/// Longest wait for the token endpoint.
pub const TOKEN_TIMEOUT: Duration = Duration::from_secs(15);

/// How leadgate proves itself to the token endpoint.
#[derive(Clone)]
pub enum Grant {
    RefreshToken {
        client_id: String,
        client_secret: Option<String>,
        refresh_token: String,
    },
    ClientCredentials {
        client_id: String,
        client_secret: String,
    },
}

impl std::fmt::Debug for Grant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Grant::RefreshToken { .. } => "RefreshToken(***)",
            Grant::ClientCredentials { .. } => "ClientCredentials(***)",
        })
    }
}

impl Grant {
    pub fn name(&self) -> &'static str {
        match self {
            Grant::RefreshToken { .. } => "refresh_token",
            Grant::ClientCredentials { .. } => "client_credentials",
        }
    }
}

/// A live access token. `Debug` hides it.
#[derive(Clone)]
pub struct Token {
    pub access_token: String,
    /// Salesforce's `instance_url`: the org's API host.
    pub instance_url: Option<String>,
    pub expires_at: Instant,
    /// Increases with each refresh; a 401 names the generation it was refused with.
    pub generation: u64,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("instance_url", &self.instance_url)
            .field("generation", &self.generation)
            .finish()
    }
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    instance_url: Option<String>,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
    /// A rotated refresh token (HubSpot, Outreach): the old one may stop working.
    #[serde(default)]
    refresh_token: Option<String>,
}

/// Keeps a rotated refresh token durably (the store); called with the new token.
pub type RotationKeeper =
    Arc<dyn Fn(String) -> futures::future::BoxFuture<'static, ()> + Send + Sync>;

#[derive(Deserialize)]
struct TokenRefusal {
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    error_description: Option<String>,
}

/// The shared token of one connector.
pub struct TokenSource {
    connector: String,
    token_url: reqwest::Url,
    grant: Grant,
    lifetime: Duration,
    client: reqwest::Client,
    current: Mutex<Option<Token>>,
    refreshes: AtomicU64,
    /// The refresh token to use instead of the configured one, once rotated.
    rotated: std::sync::Mutex<Option<String>>,
    keeper: std::sync::OnceLock<RotationKeeper>,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSource")
            .field("connector", &self.connector)
            .field("token_url", &self.token_url.as_str())
            .field("grant", &self.grant)
            .finish()
    }
}

impl TokenSource {
    pub fn new(
        connector: &str,
        token_url: reqwest::Url,
        grant: Grant,
        lifetime: Option<Duration>,
        client: reqwest::Client,
    ) -> Self {
        Self {
            connector: connector.to_string(),
            token_url,
            grant,
            lifetime: lifetime.unwrap_or(DEFAULT_LIFETIME),
            client,
            current: Mutex::new(None),
            refreshes: AtomicU64::new(0),
            rotated: std::sync::Mutex::new(None),
            keeper: std::sync::OnceLock::new(),
        }
    }

    pub fn connector(&self) -> &str {
        &self.connector
    }

    /// SHA-256 (hex) of the configured refresh token: names the rotation chain it started,
    /// so a newly configured token is not shadowed by an old chain. `None` without one.
    pub fn configured_fingerprint(&self) -> Option<String> {
        use sha2::Digest;
        match &self.grant {
            Grant::RefreshToken { refresh_token, .. } => {
                let digest = sha2::Sha256::digest(refresh_token.as_bytes());
                Some(digest.iter().map(|b| format!("{b:02x}")).collect())
            }
            Grant::ClientCredentials { .. } => None,
        }
    }

    /// Uses `refresh_token` (one kept from an earlier rotation) for the next refresh.
    pub fn use_refresh_token(&self, refresh_token: String) {
        *self.rotated.lock().unwrap_or_else(|p| p.into_inner()) = Some(refresh_token);
    }

    /// The OAuth authorization-code grant (a public app's install): trades `code` for a
    /// token pair and returns the refresh token, which the caller keeps; the access token
    /// is used until it expires.
    pub async fn exchange_code(
        &self,
        code: &str,
        redirect_uri: &str,
    ) -> Result<String, ConnectorError> {
        let id = &self.connector;
        let (client_id, client_secret) = match &self.grant {
            Grant::RefreshToken {
                client_id,
                client_secret,
                ..
            } => (client_id.as_str(), client_secret.as_deref()),
            Grant::ClientCredentials {
                client_id,
                client_secret,
            } => (client_id.as_str(), Some(client_secret.as_str())),
        };
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("client_id", client_id),
            ("redirect_uri", redirect_uri),
            ("code", code),
        ];
        if let Some(s) = client_secret {
            form.push(("client_secret", s));
        }
        let response = self
            .client
            .post(self.token_url.clone())
            .timeout(TOKEN_TIMEOUT)
            .header(reqwest::header::ACCEPT, "application/json")
            .form(&form)
            .send()
            .await
            .map_err(|e| {
                ConnectorError::new(
                    ErrorKind::Connect,
                    None,
                    format!(
                        "cannot reach the {id} token endpoint {}: {}",
                        self.token_url,
                        e.without_url()
                    ),
                )
            })?;
        let status = response.status().as_u16();
        let body = response.bytes().await.unwrap_or_default();
        if !(200..300).contains(&status) {
            let said = serde_json::from_slice::<TokenRefusal>(&body)
                .ok()
                .and_then(|r| r.error_description.or(r.error))
                .unwrap_or_default();
            return Err(ConnectorError::new(
                ErrorKind::AuthFailed,
                Some(status),
                format!("{id} refused the authorization code (HTTP {status}) {said}; codes are single-use and short-lived: install the app again for a new one, with the same redirect URI"),
            ));
        }
        let answer: TokenAnswer = serde_json::from_slice(&body).map_err(|e| {
            ConnectorError::new(
                ErrorKind::BadResponse,
                Some(status),
                format!("the {id} token endpoint answered without an access_token: {e}"),
            )
        })?;
        let refresh = answer
            .refresh_token
            .clone()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ConnectorError::new(
                    ErrorKind::BadResponse,
                    Some(status),
                    format!("the {id} token endpoint answered the code without a refresh_token"),
                )
            })?;
        let lifetime = answer
            .expires_in
            .as_ref()
            .and_then(|v| {
                v.as_u64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            })
            .map(Duration::from_secs)
            .unwrap_or(self.lifetime);
        self.use_refresh_token(refresh.clone());
        let mut current = self.current.lock().await;
        let generation = current.as_ref().map_or(0, |t| t.generation) + 1;
        *current = Some(Token {
            access_token: answer.access_token,
            instance_url: answer.instance_url,
            expires_at: Instant::now() + lifetime,
            generation,
        });
        Ok(refresh)
    }

    /// Where rotated refresh tokens are kept; set once.
    pub fn keep_rotations_with(&self, keeper: RotationKeeper) {
        let _ = self.keeper.set(keeper);
    }

    /// How many times a token was fetched (reports, tests).
    pub fn refreshes(&self) -> u64 {
        self.refreshes.load(Ordering::SeqCst)
    }

    /// A token good for at least [`REFRESH_MARGIN`]; fetches one if needed (one caller
    /// fetches, the others wait for it).
    pub async fn token(&self) -> Result<Token, ConnectorError> {
        let mut current = self.current.lock().await;
        if let Some(t) = current.as_ref() {
            if t.expires_at > Instant::now() + REFRESH_MARGIN {
                return Ok(t.clone());
            }
        }
        let fresh = self
            .fetch(current.as_ref().map_or(0, |t| t.generation))
            .await?;
        *current = Some(fresh.clone());
        Ok(fresh)
    }

    /// After a 401 with the token of `generation`: refreshes unless another caller already
    /// has, and returns the token to retry with.
    pub async fn refused(&self, generation: u64) -> Result<Token, ConnectorError> {
        let mut current = self.current.lock().await;
        if let Some(t) = current.as_ref() {
            if t.generation > generation && t.expires_at > Instant::now() {
                return Ok(t.clone());
            }
        }
        let fresh = self
            .fetch(
                current
                    .as_ref()
                    .map_or(generation, |t| t.generation.max(generation)),
            )
            .await?;
        *current = Some(fresh.clone());
        Ok(fresh)
    }

    async fn fetch(&self, previous: u64) -> Result<Token, ConnectorError> {
        let id = &self.connector;
        self.refreshes.fetch_add(1, Ordering::SeqCst);
        let mut form: Vec<(&str, &str)> = vec![("grant_type", self.grant.name())];
        let rotated = self
            .rotated
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut used_refresh: Option<&str> = None;
        match &self.grant {
            Grant::RefreshToken {
                client_id,
                client_secret,
                refresh_token,
            } => {
                form.push(("client_id", client_id));
                if let Some(s) = client_secret {
                    form.push(("client_secret", s));
                }
                let token = rotated.as_deref().unwrap_or(refresh_token);
                used_refresh = Some(token);
                form.push(("refresh_token", token));
            }
            Grant::ClientCredentials {
                client_id,
                client_secret,
            } => {
                form.push(("client_id", client_id));
                form.push(("client_secret", client_secret));
            }
        }
        let response = self
            .client
            .post(self.token_url.clone())
            .timeout(TOKEN_TIMEOUT)
            .header(reqwest::header::ACCEPT, "application/json")
            .form(&form)
            .send()
            .await
            .map_err(|e| {
                let kind = if e.is_timeout() {
                    ErrorKind::Timeout
                } else {
                    ErrorKind::Connect
                };
                ConnectorError::new(
                    kind,
                    None,
                    format!(
                        "cannot reach the {id} token endpoint {}: {}",
                        self.token_url,
                        e.without_url()
                    ),
                )
            })?;
        let status = response.status().as_u16();
        let body = response.bytes().await.unwrap_or_default();
        if !(200..300).contains(&status) {
            let refusal: Option<TokenRefusal> = serde_json::from_slice(&body).ok();
            let said = refusal
                .map(|r| match (r.error, r.error_description) {
                    (Some(e), Some(d)) => format!(": {e} ({d})"),
                    (Some(e), None) => format!(": {e}"),
                    (None, Some(d)) => format!(": {d}"),
                    (None, None) => String::new(),
                })
                .unwrap_or_default();
            let (kind, hint) = match status {
                400 | 401 | 403 => (
                    ErrorKind::AuthFailed,
                    format!("check [providers.{id}] api_key (client id), api_secret (client secret) and refresh_token"),
                ),
                429 => (ErrorKind::RateLimited, "too many token requests; retrying later".to_string()),
                _ => (ErrorKind::Upstream, "the token endpoint failed; retrying later".to_string()),
            };
            return Err(ConnectorError::new(
                kind,
                Some(status),
                format!(
                    "{id} refused the OAuth {} grant (HTTP {status}){said}; {hint}",
                    self.grant.name()
                ),
            ));
        }
        let answer: TokenAnswer = serde_json::from_slice(&body).map_err(|e| {
            ConnectorError::new(
                ErrorKind::BadResponse,
                Some(status),
                format!("the {id} token endpoint answered without an access_token: {e}"),
            )
        })?;
        let lifetime = answer
            .expires_in
            .as_ref()
            .and_then(|v| {
                v.as_u64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            })
            .map(Duration::from_secs)
            .unwrap_or(self.lifetime);
        if let (Some(new), Some(used)) = (answer.refresh_token.as_deref(), used_refresh) {
            if !new.is_empty() && new != used {
                self.use_refresh_token(new.to_string());
                if let Some(keep) = self.keeper.get() {
                    keep(new.to_string()).await;
                }
                tracing::info!(connector = %id, "the token endpoint rotated the refresh token; keeping the new one");
            }
        }
        tracing::info!(connector = %id, grant = self.grant.name(), "fetched an OAuth access token");
        Ok(Token {
            access_token: answer.access_token,
            instance_url: answer.instance_url,
            expires_at: Instant::now() + lifetime,
            generation: previous + 1,
        })
    }
}

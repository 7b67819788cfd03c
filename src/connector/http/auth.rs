//! Auth kinds: a closed set, matched exhaustively. A new kind is code; a new vendor is data.

use reqwest::RequestBuilder;

use crate::connector::manifest::AuthConfig;

/// The secrets for one connector, from `[providers.ID]`. Never logged: `Debug` hides them.
#[derive(Clone, Default)]
pub struct Credentials {
    pub api_key: Option<String>,
    pub api_secret: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("api_key", &self.api_key.as_ref().map(|_| "***"))
            .field("api_secret", &self.api_secret.as_ref().map(|_| "***"))
            .finish()
    }
}

impl Credentials {
    /// A key that is set and not blank.
    pub fn key(&self) -> Option<&str> {
        self.api_key
            .as_deref()
            .map(str::trim)
            .filter(|k| !k.is_empty())
    }
}

/// Adds a query-parameter key to the URL (the only kind that changes the URL).
pub fn apply_to_url(auth: &AuthConfig, creds: &Credentials, url: &mut reqwest::Url) {
    if let AuthConfig::ApiKeyQuery { param } = auth {
        url.query_pairs_mut()
            .append_pair(param, creds.key().unwrap_or_default());
    }
}

/// Adds header credentials to the request.
pub fn apply_to_request(
    auth: &AuthConfig,
    creds: &Credentials,
    request: RequestBuilder,
) -> RequestBuilder {
    let key = creds.key().unwrap_or_default();
    match auth {
        AuthConfig::None | AuthConfig::ApiKeyQuery { .. } => request,
        AuthConfig::Bearer | AuthConfig::OAuth2 { .. } => request.bearer_auth(key),
        AuthConfig::ApiKeyHeader { header, prefix } => request.header(
            header.as_str(),
            format!("{}{key}", prefix.as_deref().unwrap_or_default()),
        ),
        AuthConfig::Basic { key_is_username } => {
            let secret = creds.api_secret.as_deref().unwrap_or_default();
            let (user, pass) = if *key_is_username {
                (key, secret)
            } else {
                (secret, key)
            };
            request.basic_auth(user, Some(pass))
        }
    }
}

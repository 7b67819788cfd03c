//! What the edge refuses before a handler decides anything: a foreign Host or Origin in
//! token-less mode, a body that is not JSON, a webhook flood from one address; and the one
//! counter (and debug line) every 4xx answer goes through.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::error::Refusal;
use super::{ApiError, AppState, ErrorCode};

/// The edge's own state beside the handlers'.
pub struct Edge {
    /// The port this server listens on: in token-less mode only `Host`/`Origin` values naming
    /// a loopback address with this port are served. `None` (a router without a socket, in
    /// tests) accepts any port on a loopback name.
    pub listen_port: Option<u16>,
    /// Webhook requests per peer address; `None` is no limit.
    pub webhook_limit: Option<Arc<DefaultKeyedRateLimiter<IpAddr>>>,
    /// How long a request body may take to arrive.
    pub body_read_timeout: std::time::Duration,
    /// The key console session cookies are signed with, shared by the replicas of one store
    /// (`Store::derived_key`); `None` (tests, tools) is a key of this process's own.
    pub session_key: Option<[u8; 32]>,
}

impl Default for Edge {
    fn default() -> Self {
        Self::new(
            None,
            crate::settings::DEFAULT_WEBHOOK_RATE,
            crate::settings::DEFAULT_WEBHOOK_BURST,
        )
    }
}

impl Edge {
    /// `rate` webhook requests a second per peer address, `burst` back to back; 0 is no limit.
    pub fn new(listen_port: Option<u16>, rate: u32, burst: u32) -> Self {
        let webhook_limit = NonZeroU32::new(rate).map(|rate| {
            let burst = NonZeroU32::new(burst).unwrap_or(rate);
            Arc::new(RateLimiter::keyed(
                Quota::per_second(rate).allow_burst(burst),
            ))
        });
        Self {
            listen_port,
            webhook_limit,
            body_read_timeout: crate::settings::DEFAULT_BODY_READ_TIMEOUT,
            session_key: None,
        }
    }

    /// Forgets addresses whose allowance is full again, so the table does not grow with every
    /// address that ever called (the daemon calls this once a minute).
    pub fn forget_quiet_clients(&self) {
        if let Some(limit) = &self.webhook_limit {
            limit.retain_recent();
            limit.shrink_to_fit();
        }
    }
}

/// In token-less mode (loopback only), refuses a request whose `Host` or `Origin` is not this
/// server: a web page the admin visits could otherwise reach it by DNS rebinding or a
/// cross-site form. A request without either header (curl with HTTP/1.0, in-process tests)
/// cannot come from a browser page and is served.
pub async fn require_local_origin(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let port = state.edge.listen_port;
    let headers = request.headers();
    let host_ok = headers
        .get(header::HOST)
        .is_none_or(|h| h.to_str().is_ok_and(|h| is_local_authority(h, port)));
    let origin_ok = headers.get(header::ORIGIN).is_none_or(|o| {
        o.to_str().is_ok_and(|o| {
            o.strip_prefix("http://")
                .or_else(|| o.strip_prefix("https://"))
                .is_some_and(|authority| is_local_authority(authority, port))
        })
    });
    if host_ok && origin_ok {
        return next.run(request).await;
    }
    let which = if host_ok { "Origin" } else { "Host" };
    ApiError::new(
        ErrorCode::Forbidden,
        format!("the {which} header does not name this server; without [server] api_tokens only requests to its own loopback address are served"),
    )
    .into_response()
}

/// `localhost:8080`, `127.0.0.1:8080`, `[::1]:8080` (with `port`, or any port when `None`).
fn is_local_authority(authority: &str, port: Option<u16>) -> bool {
    let (host, given_port) = match authority.rsplit_once(':') {
        // `[::1]` alone has colons but no port after the bracket.
        Some((h, p)) if !p.contains(']') => (h, p.parse::<u16>().ok()),
        _ => (authority, Some(80)),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    let port_ok = match (port, given_port) {
        (None, _) => true,
        (Some(p), Some(g)) => p == g,
        (Some(_), None) => false,
    };
    loopback && port_ok
}

/// The `Content-Type: application/json` a JSON route needs: a browser can send `text/plain`
/// across sites without asking first, `application/json` only after a CORS preflight that
/// leadgate never grants.
pub struct JsonContentType;

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for JsonContentType {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        if is_json(&parts.headers) {
            Ok(Self)
        } else {
            Err(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                "send the body as JSON with Content-Type: application/json",
            )
            .field("Content-Type"))
        }
    }
}

pub(super) fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| {
            let mime = mime.trim();
            mime.eq_ignore_ascii_case("application/json")
                || (mime.len() > 5 && mime[mime.len() - 5..].eq_ignore_ascii_case("+json"))
        })
}

/// Webhooks answer before any signature is checked, so a flood is refused per peer address
/// before it costs a parse.
pub async fn limit_webhooks(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    if let Some(limit) = &state.edge.webhook_limit {
        let peer = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
        if limit.check_key(&peer).is_err() {
            let mut response = ApiError::new(
                ErrorCode::TooManyRequests,
                "too many webhook requests from this address; slow down",
            )
            .into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
            return response;
        }
    }
    next.run(request).await
}

/// Counts every 4xx in `leadgate_requests_refused_total{route,code}` and logs it at debug with
/// its reason. Both labels come from fixed sets: the matched route's template and the error
/// table's code.
pub async fn count_refusals(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string());
    let response = next.run(request).await;
    if response.status().is_client_error() {
        refused(route.as_deref().unwrap_or(UNMATCHED), &response);
    }
    response
}

/// The route label of a request no route matched.
pub const UNMATCHED: &str = "unmatched";

/// Records one refused request.
pub fn refused(route: &str, response: &Response) {
    let (code, reason) = match response.extensions().get::<Refusal>() {
        Some(r) => (r.code, r.reason.as_str()),
        None => (code_for(response.status()), "answered by the HTTP layer"),
    };
    metrics::counter!("leadgate_requests_refused_total", "route" => route.to_string(), "code" => code.as_str())
        .increment(1);
    // Debug-formatted: a reason quoting input cannot forge a log line. Reasons mask emails.
    tracing::debug!(route, code = code.as_str(), reason = ?reason, "request refused");
}

/// The error code of a 4xx that no handler answered (an extractor's own rejection).
fn code_for(status: axum::http::StatusCode) -> ErrorCode {
    use axum::http::StatusCode as S;
    match status {
        S::PAYLOAD_TOO_LARGE => ErrorCode::PayloadTooLarge,
        S::UNSUPPORTED_MEDIA_TYPE => ErrorCode::UnsupportedMediaType,
        S::REQUEST_TIMEOUT => ErrorCode::RequestTimeout,
        S::NOT_FOUND => ErrorCode::NotFound,
        S::METHOD_NOT_ALLOWED => ErrorCode::MethodNotAllowed,
        S::UNAUTHORIZED => ErrorCode::Unauthorized,
        S::FORBIDDEN => ErrorCode::Forbidden,
        S::TOO_MANY_REQUESTS => ErrorCode::TooManyRequests,
        S::UNPROCESSABLE_ENTITY => ErrorCode::InvalidLead,
        _ => ErrorCode::BadRequest,
    }
}

/// The body could not be read: too large, too slow, or cut off.
pub fn body_error(r: &axum::extract::rejection::BytesRejection) -> ApiError {
    use std::error::Error as _;
    if r.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::new(
            ErrorCode::PayloadTooLarge,
            "the request body is larger than the server's limit",
        );
    }
    let mut source = r.source();
    while let Some(e) = source {
        if e.is::<tower_http::timeout::TimeoutError>() {
            return ApiError::new(
                ErrorCode::RequestTimeout,
                "the request body did not arrive within [server] body_read_timeout",
            );
        }
        source = e.source();
    }
    ApiError::new(ErrorCode::InvalidJson, r.body_text())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_names_with_the_listen_port_are_local() {
        for ok in [
            "127.0.0.1:8080",
            "localhost:8080",
            "LOCALHOST:8080",
            "[::1]:8080",
        ] {
            assert!(is_local_authority(ok, Some(8080)), "{ok}");
        }
        for bad in [
            "attacker.example:8080",
            "attacker.example",
            "127.0.0.1:9999",
            "127.0.0.1",
            "10.0.0.1:8080",
            "localhost.attacker.example:8080",
        ] {
            assert!(!is_local_authority(bad, Some(8080)), "{bad}");
        }
        assert!(is_local_authority("127.0.0.1:1234", None));
        assert!(!is_local_authority("attacker.example:1234", None));
    }

    #[test]
    fn json_media_types() {
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::CONTENT_TYPE, v.parse().unwrap());
            is_json(&h)
        };
        assert!(with("application/json"));
        assert!(with("application/json; charset=utf-8"));
        assert!(with("application/vnd.api+json"));
        assert!(!with("text/plain"));
        assert!(!with("application/x-www-form-urlencoded"));
        assert!(!is_json(&HeaderMap::new()));
    }
}

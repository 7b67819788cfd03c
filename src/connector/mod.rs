//! Connectors: the engine that runs `connectors/*.toml`. A manifest is data — base URL,
//! auth, rate limit, timeout, cost per call, and named operations (request template, response
//! rules, status map, response map) — so a RevOps admin adds a provider by writing a file.
//! Code is needed only for a new auth kind, a new driver, or a signature scheme.
//!
//! - [`manifest`] — the manifest as written (serde, unknown keys rejected, versioned)
//! - [`spec`]     — the checked manifest: templates and JSONPaths compiled, every issue named
//! - [`registry`] — every manifest in the connectors folder, by id
//! - [`http`]     — one attempt of one operation: template, auth, send, classify, map
//! - [`error`]    — what a failed call means, as fields (kind, blame, retry-after)
//!
//! Must not: retry, wait, cache or budget (that is `crate::resilience`), or know about the
//! waterfall (that is `crate::enrich`). CRM and nurture connectors use the same engine
//! through their named operations (`hubspot.toml` `[operations.upsert_contact]` ...).

pub mod error;
pub mod http;
pub mod manifest;
pub mod oauth;
pub mod registry;
pub mod spec;

pub use error::{Blame, ConnectorError, ErrorKind};
pub use http::{Answer, Exchange, HttpConnector, Prepared};
pub use manifest::{ConnectorKind, StatusOutcome};
pub use registry::Registry;
pub use spec::Manifest;

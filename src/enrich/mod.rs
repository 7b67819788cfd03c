//! Enrich stage: asks providers, in waterfall order, for what they know about the lead's
//! company and person, validates their answers, and merges them field by field with
//! provenance.
//!
//! A provider that fails is recorded and skipped; enrichment never fails a lead. The
//! waterfall knows nothing of HTTP: providers (the local file, the manifest-driven HTTP
//! connectors wrapped in `crate::resilience`) sit behind [`Provider`].
//!
//! - [`Waterfall`]     — order, `stop_when`, per-field order, validation, the decision trail
//! - [`HttpProvider`]  — a connector manifest behind cache, park, breaker, budget, retry, limiter
//! - [`LocalFileProvider`] — the team's own firmographics CSV, offline
//! - [`build`]         — providers from `[enrichment]`, `[providers.ID]` and the manifests
//! - [`report`]        — every connector's configuration and health, for the CLI and the API
//! - [`erasures`]     — another process's erasure drops this one's cached answers

pub mod build;
pub mod erasures;
mod http_provider;
mod local_file;
mod provider;
pub mod report;
mod stats;
pub mod usage;
mod validate;
mod waterfall;

pub use http_provider::{Halt, HttpProvider, HttpProviderParts, SharedCache};
pub use local_file::{LocalFileError, LocalFileProvider};
pub use provider::{
    Lookup, NotConfigured, Provider, ProviderAnswer, ProviderStatus, Reply, Skip, SkipKind,
};
pub use validate::Validation;
pub use waterfall::Waterfall;

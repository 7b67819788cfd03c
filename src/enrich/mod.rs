//! Enrich stage: asks providers, in waterfall order, for what they know about the lead's
//! company and person, and merges their answers field by field with provenance.
//!
//! A provider that fails is recorded and skipped; enrichment never fails a lead. This module
//! knows nothing of HTTP: providers (the local file, the manifest-driven HTTP connectors)
//! sit behind [`Provider`].

mod local_file;
mod provider;
mod waterfall;

pub use local_file::{LocalFileError, LocalFileProvider};
pub use provider::{Lookup, Provider, ProviderAnswer};
pub use waterfall::Waterfall;

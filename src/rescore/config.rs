//! `[rescore]` in leadgate.toml, apart from the sweep so that the settings can name it
//! without importing the sweep (which reads the settings).

use serde::Deserialize;

/// `[rescore]` in leadgate.toml.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RescoreConfig {
    /// On by default when a score can move at rest (an event rule exists).
    pub enabled: Option<bool>,
    /// How often the sweep looks (`15m`).
    pub every: Option<String>,
    /// People per claim and per write transaction.
    pub batch: Option<usize>,
}

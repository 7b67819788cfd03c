//! Prometheus metrics. The recorder is process-global (the `metrics` crate's design); it is
//! installed once and every server in the process renders from it.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::lead::Decision;

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's Prometheus handle, installing the recorder on first use.
pub fn prometheus() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new();
            // Scores are 0–100: buckets of ten points, so `/metrics` shows the distribution
            // the drift report compares (the exporter's default would be a summary).
            let builder = builder
                .set_buckets_for_metric(Matcher::Full(LEAD_SCORE.into()), &SCORE_BUCKETS)
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            // Fails only if another recorder was set first; then this handle renders empty.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// The histogram of decided leads' scores.
pub const LEAD_SCORE: &str = "leadgate_lead_score";
const SCORE_BUCKETS: [f64; 10] = [10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0, 100.0];

/// Records a decision's scores in [`LEAD_SCORE`]: the primary score as `score="primary"`,
/// and the model's own (probability × 100) as `score="model"` when a model is configured.
pub fn record_scores(d: &Decision) {
    metrics::histogram!(LEAD_SCORE, "score" => "primary").record(d.score as f64);
    if let Some(card) = d.scores.get(crate::score::MODEL_SCORE) {
        metrics::histogram!(LEAD_SCORE, "score" => "model").record(card.score as f64);
    }
}

//! Prometheus metrics. The recorder is process-global (the `metrics` crate's design); it is
//! installed once and every server in the process renders from it.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::score::exported::{LEAD_SCORE, SCORE_BUCKETS};

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

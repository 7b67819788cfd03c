//! Prometheus metrics. The recorder is process-global (the `metrics` crate's design); it is
//! installed once and every server in the process renders from it.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's Prometheus handle, installing the recorder on first use.
pub fn prometheus() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // Fails only if another recorder was set first; then this handle renders empty.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

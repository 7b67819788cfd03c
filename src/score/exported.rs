//! The score distribution exported to `/metrics`: recorded by the worker that decides a
//! lead, bucketed by the HTTP edge's exporter. Here so that deciding does not depend on the
//! HTTP edge.

use crate::lead::Decision;

/// The histogram of decided leads' scores.
pub const LEAD_SCORE: &str = "leadgate_lead_score";

/// Scores are 0–100: buckets of ten points.
pub const SCORE_BUCKETS: [f64; 10] = [10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0, 100.0];

/// Records a decision's scores in [`LEAD_SCORE`]: the primary score as `score="primary"`,
/// and the model's own (probability × 100) as `score="model"` when a model is configured.
pub fn record_scores(d: &Decision) {
    metrics::histogram!(LEAD_SCORE, "score" => "primary").record(d.score as f64);
    if let Some(card) = d.scores.get(super::MODEL_SCORE) {
        metrics::histogram!(LEAD_SCORE, "score" => "model").record(card.score as f64);
    }
}

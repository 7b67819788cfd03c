//! How good a set of predicted probabilities is: ranking (ROC AUC, PR AUC), probability
//! quality (log loss, Brier) and a reliability table by decile.

use serde::Serialize;

use super::train::{auc, calibration, log_loss, Decile};

/// One evaluation of predictions against outcomes.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Evaluation {
    pub auc: f64,
    pub pr_auc: f64,
    pub log_loss: f64,
    pub brier: f64,
    pub deciles: Vec<Decile>,
}

impl Evaluation {
    pub fn of(p: &[f64], y: &[bool]) -> Self {
        Self {
            auc: auc(p, y),
            pr_auc: average_precision(p, y),
            log_loss: log_loss(p, y),
            brier: brier(p, y),
            deciles: calibration(p, y, 10),
        }
    }
}

/// Mean squared error of the probabilities.
pub fn brier(p: &[f64], y: &[bool]) -> f64 {
    let n = p.len().max(1) as f64;
    p.iter()
        .zip(y)
        .map(|(p, y)| (p - f64::from(u8::from(*y))).powi(2))
        .sum::<f64>()
        / n
}

/// PR AUC as average precision (scikit-learn's `average_precision_score`): Σ (Rₙ − Rₙ₋₁) Pₙ
/// over the distinct score thresholds, highest first — no interpolation, so it is not
/// optimistic the way the trapezoid under a PR curve is.
pub fn average_precision(p: &[f64], y: &[bool]) -> f64 {
    let positives = y.iter().filter(|v| **v).count() as f64;
    if positives == 0.0 {
        return f64::NAN;
    }
    let mut idx: Vec<usize> = (0..p.len()).collect();
    idx.sort_by(|a, b| p[*b].total_cmp(&p[*a]));
    let (mut tp, mut seen, mut ap, mut last_recall) = (0.0, 0.0, 0.0, 0.0);
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j < idx.len() && p[idx[j]] == p[idx[i]] {
            seen += 1.0;
            if y[idx[j]] {
                tp += 1.0;
            }
            j += 1;
        }
        let recall = tp / positives;
        ap += (recall - last_recall) * (tp / seen);
        last_recall = recall;
        i = j;
    }
    ap
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn average_precision_matches_scikit_learn() {
        // average_precision_score([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.8333…
        let ap = average_precision(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true]);
        assert!((ap - 5.0 / 6.0).abs() < 1e-12, "{ap}");
        assert_eq!(average_precision(&[0.9, 0.1], &[true, false]), 1.0);
    }

    #[test]
    fn brier_is_the_mean_squared_error() {
        assert!((brier(&[0.8, 0.3], &[true, false]) - (0.04 + 0.09) / 2.0).abs() < 1e-12);
    }
}

//! Calibration of the model's probability: Platt scaling, p = σ(slope · z + offset) over
//! the model's raw log-odds z, fitted on out-of-fold predictions of the training rows.
//!
//! Platt rather than isotonic: it is linear in log-odds, so every per-feature contribution
//! scales by `slope` and the factors still add up exactly to the calibrated model part; an
//! isotonic step function would need a catch-all "calibration" factor and is noisy on the
//! few hundred positives a team typically has.

use serde::{Deserialize, Serialize};

use super::train::newton;

/// A fitted Platt scaling.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Platt {
    pub slope: f64,
    pub offset: f64,
    /// How many out-of-fold predictions it was fitted on, and in how many folds.
    pub rows: usize,
    pub folds: usize,
}

impl Platt {
    /// Fits σ(slope · z + offset) to the outcomes by maximum likelihood, with Platt's
    /// smoothed targets ((N₊ + 1)/(N₊ + 2) and 1/(N₋ + 2)) so separable folds do not
    /// send the slope to infinity. `None` when the fit is not increasing (slope ≤ 0):
    /// such a model ranks backwards and calibrating it would hide that.
    pub fn fit(z: &[f64], y: &[bool], folds: usize) -> Option<Self> {
        let pos = y.iter().filter(|v| **v).count() as f64;
        let neg = y.len() as f64 - pos;
        if pos == 0.0 || neg == 0.0 {
            return None;
        }
        let (hi, lo) = ((pos + 1.0) / (pos + 2.0), 1.0 / (neg + 2.0));
        let x: Vec<Vec<f64>> = z.iter().map(|z| vec![*z]).collect();
        let t: Vec<f64> = y.iter().map(|y| if *y { hi } else { lo }).collect();
        let (beta, _) = newton(&x, &t, 0.0).ok()?;
        let (offset, slope) = (beta[0], beta[1]);
        (slope > 0.0 && slope.is_finite() && offset.is_finite()).then_some(Self {
            slope,
            offset,
            rows: z.len(),
            folds,
        })
    }

    /// Calibrated log-odds.
    pub fn apply(&self, z: f64) -> f64 {
        self.slope * z + self.offset
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.slope > 0.0 && self.slope.is_finite() && self.offset.is_finite() {
            Ok(())
        } else {
            Err(format!(
                "calibration slope {} / offset {} is not an increasing finite map",
                self.slope, self.offset
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platt_recovers_a_known_scaling() {
        // Outcomes drawn from σ(2z − 1): the fit should find slope ≈ 2, offset ≈ −1.
        let mut rng = crate::score::train::SplitMix64(9);
        let mut z = Vec::new();
        let mut y = Vec::new();
        for _ in 0..20_000 {
            let u = (rng.next() >> 11) as f64 / (1u64 << 53) as f64;
            let v = (rng.next() >> 11) as f64 / (1u64 << 53) as f64;
            let zi = 4.0 * u - 2.0;
            z.push(zi);
            y.push(v < crate::score::model::sigmoid(2.0 * zi - 1.0));
        }
        let p = Platt::fit(&z, &y, 5).unwrap();
        assert!((p.slope - 2.0).abs() < 0.1, "{p:?}");
        assert!((p.offset + 1.0).abs() < 0.1, "{p:?}");
    }

    #[test]
    fn a_backwards_ranking_is_not_calibrated() {
        let z = [-2.0, -1.0, 1.0, 2.0, -1.5, 1.5];
        let y = [true, true, false, false, true, false];
        assert!(Platt::fit(&z, &y, 2).is_none());
    }
}

//! Grades: named score bands from thresholds.

use std::collections::BTreeMap;

/// The grade below every configured threshold, unless one starts at 0.
pub const FLOOR_GRADE: &str = "cold";

#[derive(Debug, Clone)]
pub struct Grades {
    /// (lowest score, name), highest first.
    bands: Vec<(i64, String)>,
}

impl Default for Grades {
    fn default() -> Self {
        Self::new(&BTreeMap::from([
            ("hot".to_string(), 80),
            ("warm".to_string(), 50),
            ("cool".to_string(), 20),
        ]))
        .expect("the built-in grades are valid")
    }
}

impl Grades {
    pub fn new(thresholds: &BTreeMap<String, i64>) -> Result<Self, String> {
        if thresholds.is_empty() {
            return Ok(Self::default());
        }
        let mut bands: Vec<(i64, String)> = Vec::new();
        for (name, &min) in thresholds {
            if !(0..=100).contains(&min) {
                return Err(format!(
                    "grade `{name}` starts at {min}; thresholds are 0–100"
                ));
            }
            if let Some((_, other)) = bands.iter().find(|(m, _)| *m == min) {
                return Err(format!("grades `{other}` and `{name}` both start at {min}"));
            }
            bands.push((min, name.clone()));
        }
        bands.sort_by_key(|b| std::cmp::Reverse(b.0));
        Ok(Self { bands })
    }

    pub fn grade(&self, score: i64) -> &str {
        self.bands
            .iter()
            .find(|(min, _)| score >= *min)
            .map_or(FLOOR_GRADE, |(_, name)| name.as_str())
    }

    /// Grade names, highest first, the floor last.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.bands.iter().map(|(_, n)| n.clone()).collect();
        if self.bands.last().is_none_or(|(m, _)| *m > 0) {
            names.push(FLOOR_GRADE.into());
        }
        names
    }
}

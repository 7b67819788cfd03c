//! Score stage: rule points grouped by dimension, event points that decay with a half-life,
//! per-dimension caps, a total clamped to 0–100, a grade from thresholds, and the factors
//! that explain it — for the default score (`lead`) and every named score (`fit`,
//! `engagement`, a product line, a weighted combination), optionally blended with a
//! predictive model trained on the team's own outcomes.
//!
//! Every score's factors sum exactly to its unrounded total: caps scale a dimension's
//! factors, clamping to 0–100 adds a `limit` factor, blending scales the rule factors and
//! splits the model's share across its features. Arithmetic is in hundredths of a point.
//!
//! Scoring reads the enriched lead and nothing else; it never changes it.

mod account;
mod at_rest;
pub mod calibrate;
mod config;
pub mod drift;
pub mod exported;
pub mod features;
pub mod gbm;
mod grades;
pub mod metrics;
pub mod model;
pub mod producible;
pub mod store_training;
pub mod train;
pub mod treeshap;

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

pub use account::{
    half_life_ms, AccountEngagement, AccountRollup, AccountRows, AccountScore, RunningTotal,
};
pub use config::{
    AccountConfig, EventRuleConfig, ListConfig, ModelConfig, NamedScoreConfig, ScoreRefs,
    ScoreRuleConfig, ScoringConfig,
};
pub use grades::Grades;
pub use model::{Model, ModelError};

use crate::lead::{intern, EnrichedLead, Event, Factor, Matched, Name, ScoreCard, ScoredLead};
use crate::rules::{
    Condition, Evaluator, FieldPath, FieldTable, Fields, RuleContext, RuleFile, Scope, SharedVal,
};
use crate::settings::{ConfigErrors, ConfigIssue};

/// The id of the score the top-level rules make.
pub const DEFAULT_SCORE: &str = "lead";
/// The id of the model's own score (probability × 100), when a model is configured.
pub const MODEL_SCORE: &str = "model";
/// The dimension of the factors that clamp a total into 0–100.
pub const LIMIT_DIMENSION: &str = "limit";
/// The dimension of the model's factors.
pub const MODEL_DIMENSION: &str = "model";
/// Account engagement fades by half a month after the decision that measured it: a quarter
/// later an account that went quiet has cooled to an eighth.
pub const DEFAULT_ACCOUNT_HALF_LIFE: Duration = Duration::from_secs(30 * 86_400);
/// Hundredths of a point: the resolution of every factor.
const CENTI: f64 = 100.0;

/// A scoring rule, compiled.
#[derive(Debug)]
pub struct ScoreRule {
    pub id: Name,
    pub dimension: Name,
    pub when: Condition,
    pub points: f64,
    pub description: Option<Name>,
    /// See `Part::rank`.
    rank: u32,
    /// `points` in hundredths, rounded once at load rather than for every lead it matches.
    cp: i64,
    /// The fields `when` reads, as an index into the scorer's distinct field sets: rules
    /// that read the same fields quote the same values, built once per lead.
    fields: usize,
}

/// An event rule, compiled: points per matching event, fading with age.
#[derive(Debug)]
pub struct EventRule {
    pub id: Name,
    pub dimension: Name,
    pub event_type: String,
    pub when: Option<Condition>,
    pub points: f64,
    pub half_life: Option<Duration>,
    pub max: Option<f64>,
    /// How long the person's history keeps events of this type (issue 25).
    pub retention: Option<Duration>,
    pub description: Option<Name>,
    /// See `Part::rank`.
    rank: u32,
    /// The `event` fields `when` reads, when it reads nothing else of the event (see
    /// `Condition::event_reads`): events alike in them share one evaluation.
    reads: Option<Vec<String>>,
}

/// A score, ready to compute.
#[derive(Debug)]
struct ScoreDef {
    id: String,
    body: Body,
    caps: BTreeMap<String, f64>,
    grades: Grades,
}

#[derive(Debug)]
enum Body {
    /// Indices into the scorer's rules and events.
    Rules {
        rules: Vec<usize>,
        events: Vec<usize>,
    },
    /// (index of an earlier score, weight).
    Combine(Vec<(usize, f64)>),
}

/// The model and how it blends into a score.
#[derive(Debug)]
struct Blend {
    model: Model,
    weight: f64,
    /// Index of the score it blends into.
    score: usize,
    explain_top: usize,
    /// What naming the model's factors needs, made once at load: per lead, only the values
    /// and the log-odds change.
    extractor: features::Extractor,
    /// The model's columns made ready for encoding one lead (see `model::Encoder`).
    encoder: model::Encoder,
    /// Per model feature: its factor's rule (`model: NAME`), the name its value is shown
    /// under, and the factor's rank (see `Part::rank`).
    names: Vec<(Name, Arc<str>, u32)>,
    /// Per model feature: its name's place among the model's feature names, so ordering
    /// effects of equal size compares integers.
    name_order: Vec<u32>,
    /// `model: baseline` and its rank.
    baseline: (Factor, u32),
    /// `model: other features` by how many features it sums (0 to all), and its rank.
    others: (Vec<Factor>, u32),
}

/// One lead's explanation by the model, shared by the blended score and the model's card.
struct Explained {
    /// Each feature's contribution to the calibrated log-odds, in model order.
    logits: Vec<f64>,
    /// Each feature's value, in model order.
    values: Vec<Option<features::RawValue>>,
    /// The factors once made (the first card makes them, the second reuses them).
    made: Option<MadeFactors>,
}

/// The model's factors of one lead, made once: `hits.made` indices and the feature places
/// they stand for.
struct MadeFactors {
    baseline: u32,
    /// (made index, feature place), largest effect first.
    top: Vec<(u32, usize)>,
    /// The features summed into `model: other features`, in the same order, and its index.
    rest: Vec<usize>,
    other: Option<u32>,
}

impl Blend {
    fn new(model: Model, weight: f64, score: usize, explain_top: usize) -> Self {
        let extractor = features::Extractor::new(model.features.iter().map(|f| f.name.as_str()));
        let encoder = model.encoder();
        let mut by_name: Vec<usize> = (0..model.features.len()).collect();
        by_name.sort_by(|a, b| model.features[*a].name.cmp(&model.features[*b].name));
        let mut name_order = vec![0; by_name.len()];
        for (place, f) in by_name.into_iter().enumerate() {
            name_order[f] = place as u32;
        }
        let names = model
            .features
            .iter()
            .map(|f| {
                (
                    intern(&format!("model: {}", f.name)),
                    Arc::from(f.name.as_str()),
                    0,
                )
            })
            .collect();
        let factor = |rule: &str, matched: Vec<(Arc<str>, Value)>, description: &str| Factor {
            rule: intern(rule),
            dimension: MODEL_DIMENSION.into(),
            points: 0.0,
            matched: Matched::new(matched),
            description: Some(intern(description)),
        };
        let p0 = model::sigmoid(model.baseline());
        let baseline = factor(
            "model: baseline",
            Vec::new(),
            &format!(
                "an average lead converts with probability {:.1}%",
                100.0 * p0
            ),
        );
        let others = (0..=model.features.len())
            .map(|n| {
                factor(
                    "model: other features",
                    vec![(Arc::from("features"), Value::from(n))],
                    &format!("{n} smaller effects together"),
                )
            })
            .collect();
        Self {
            model,
            weight,
            score,
            explain_top,
            extractor,
            encoder,
            names,
            name_order,
            baseline: (baseline, 0),
            others: (others, 0),
        }
    }

    /// Sets the model factors' ranks among the scorer's sorted rule ids, as `Hits::make`
    /// works them out.
    fn rank(&mut self, ids: &[Name]) {
        let rank = |rule: &str| 2 * ids.partition_point(|id| **id <= *rule) as u32 + 1;
        for (rule, _, r) in &mut self.names {
            *r = rank(rule);
        }
        self.baseline.1 = rank(&self.baseline.0.rule);
        self.others.1 = rank("model: other features");
    }

    /// The lead's values and contributions of the model's features.
    fn explain(&self, lead: &EnrichedLead) -> Explained {
        let values = self.extractor.extract(lead);
        Explained {
            logits: self.model.feature_logits_with(&self.encoder, &values),
            values,
            made: None,
        }
    }
}

#[derive(Debug)]
pub struct Scorer {
    rules: Vec<ScoreRule>,
    /// The distinct sets of fields rules read (see `ScoreRule::fields`).
    field_sets: Vec<Vec<FieldPath>>,
    /// The lead fields every rule reads, looked up once per lead.
    lead_fields: FieldTable,
    /// Event rules by the event type they score, in rule order.
    events_by_type: Vec<(String, Vec<usize>)>,
    events: Vec<EventRule>,
    /// Components before the scores that combine them.
    scores: Vec<ScoreDef>,
    primary: usize,
    blend: Option<Blend>,
    /// `lists.NAME`, converted to CEL once and shared by every lead's context.
    lists: SharedVal,
    account: Option<AccountRollup>,
    /// Every rule and event rule id, sorted: ranks (see `Part::rank`) are places in it.
    ids: Vec<Name>,
    /// Some rule may read the lead's list of events (`rules::reads_event_list`): a context
    /// for scoring alone can leave it out otherwise.
    reads_event_list: bool,
}

/// A factor being computed, its points in hundredths.
#[derive(Debug, Clone, Copy)]
struct Part {
    source: Source,
    cp: i64,
    /// The factor's place in string order among all rule ids: twice a rule's index in
    /// `Scorer::ids`, and odd between them for a factor made while scoring (a limit, the
    /// model's). Ties in points sort by id without comparing strings.
    rank: u32,
}

/// Where a part's factor comes from: an index until a score card is written. A lead matches
/// some eighty rules, and allocating a shared factor for each cost more than evaluating the
/// rule; as plain indices, parts are copied and sorted as integers.
#[derive(Debug, Clone, Copy)]
enum Source {
    /// `Scorer::rules[i]`; its matched values are its field set's, quoted for this lead.
    Rule(u32),
    /// `Scorer::events[i]`; its matched values are the tally's, kept for this lead.
    Event(u32),
    /// `Hits::made[i]`: a factor made while scoring, a limit or the model's.
    Made(u32),
}

/// What one lead's parts point into: its quoted field sets and event rules' values.
struct Hits<'s> {
    scorer: &'s Scorer,
    /// By field set (see `ScoreRule::fields`).
    quoted: Vec<Option<Matched>>,
    /// By event rule.
    events: Vec<Option<Matched>>,
    /// Factors made while scoring this lead (see `Source::Made`).
    made: Vec<Factor>,
}

impl Hits<'_> {
    /// A part for a factor made while scoring, worth `cp` hundredths.
    fn make(&mut self, factor: Factor, cp: i64) -> Part {
        let ids = &self.scorer.ids;
        // Odd: after the rule ids that sort before it (and after a rule of the same id).
        let at = ids.partition_point(|id| **id <= *factor.rule);
        self.made.push(factor);
        Part {
            source: Source::Made(self.made.len() as u32 - 1),
            cp,
            rank: 2 * at as u32 + 1,
        }
    }

    fn rule_id<'a>(&'a self, p: &'a Part) -> &'a Name {
        match &p.source {
            Source::Rule(i) => &self.scorer.rules[*i as usize].id,
            Source::Event(i) => &self.scorer.events[*i as usize].id,
            Source::Made(i) => &self.made[*i as usize].rule,
        }
    }

    fn dimension<'a>(&'a self, p: &'a Part) -> &'a Name {
        match &p.source {
            Source::Rule(i) => &self.scorer.rules[*i as usize].dimension,
            Source::Event(i) => &self.scorer.events[*i as usize].dimension,
            Source::Made(i) => &self.made[*i as usize].dimension,
        }
    }

    /// The part as the factor a score card shows.
    #[inline]
    fn factor(&self, p: &Part) -> Factor {
        let points = p.cp as f64 / CENTI;
        let (rule, dimension, description, matched) = match &p.source {
            Source::Made(i) => {
                return Factor {
                    points,
                    ..self.made[*i as usize].clone()
                }
            }
            Source::Rule(i) => {
                let r = &self.scorer.rules[*i as usize];
                (&r.id, &r.dimension, &r.description, &self.quoted[r.fields])
            }
            Source::Event(i) => {
                let e = &self.scorer.events[*i as usize];
                (
                    &e.id,
                    &e.dimension,
                    &e.description,
                    &self.events[*i as usize],
                )
            }
        };
        Factor {
            rule: rule.clone(),
            dimension: dimension.clone(),
            points,
            matched: matched.clone().unwrap_or_default(),
            description: description.clone(),
        }
    }
}

fn to_cp(points: f64) -> i64 {
    (points * CENTI).round() as i64
}

impl Scorer {
    /// Loads and compiles `scoring.toml`; every issue at once, each with line and rule id.
    pub fn load(path: &Path) -> Result<Self, ConfigErrors> {
        let file = RuleFile::read(path)?;
        Self::from_file(&file)
    }

    pub fn from_file(file: &RuleFile) -> Result<Self, ConfigErrors> {
        let raw: ScoringConfig = file.parse()?;
        let base = Path::new(&file.name)
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let mut issues: Vec<ConfigIssue> = Vec::new();

        let lists = load_lists(&raw.lists, &base, file, &mut issues);
        let mut seen = HashSet::new();
        let mut rules = Vec::new();
        let mut field_sets: Vec<Vec<FieldPath>> = Vec::new();
        // (index, target score ids) for rules and events tagged with `score`.
        let mut rule_targets: Vec<Option<Vec<String>>> = Vec::new();
        let mut event_targets: Vec<Option<Vec<String>>> = Vec::new();
        let check_lists = |source: &str,
                           key: &str,
                           span: Option<std::ops::Range<usize>>,
                           issues: &mut Vec<ConfigIssue>| {
            for name in list_refs(source) {
                if !lists.contains_key(&name) {
                    let known = if lists.is_empty() {
                        "none are defined".to_string()
                    } else {
                        lists.keys().cloned().collect::<Vec<_>>().join(", ")
                    };
                    issues.push(file.issue(
                        span.clone(),
                        key,
                        format!(
                            "unknown list `lists.{name}` (add it under [lists]; known: {known})"
                        ),
                    ));
                }
            }
        };
        for r in &raw.rule {
            let key = format!("rule \"{}\"", r.id);
            if !seen.insert(r.id.clone()) {
                issues.push(file.issue(Some(r.when.span()), key.clone(), "duplicate rule id"));
            }
            check_lists(
                r.when.get_ref(),
                &format!("{key} when"),
                Some(r.when.span()),
                &mut issues,
            );
            if !r.points.is_finite() {
                issues.push(file.issue(
                    Some(r.when.span()),
                    format!("{key} points"),
                    "must be a number",
                ));
            }
            match Condition::compile(r.when.get_ref(), &Scope::scoring()) {
                Ok(when) => {
                    let names: Vec<FieldPath> =
                        when.fields().iter().map(|f| FieldPath::new(f)).collect();
                    let fields = match field_sets.iter().position(|s| *s == names) {
                        Some(i) => i,
                        None => {
                            field_sets.push(names);
                            field_sets.len() - 1
                        }
                    };
                    rules.push(ScoreRule {
                        rank: u32::MAX,
                        cp: to_cp(r.points),
                        fields,
                        id: intern(&r.id),
                        dimension: intern(&r.dimension),
                        when,
                        points: r.points,
                        description: r.description.as_deref().map(intern),
                    });
                    rule_targets.push(r.score.as_ref().map(ScoreRefs::ids));
                }
                Err(e) => issues.push(file.issue(
                    Some(r.when.span()),
                    format!("{key} when"),
                    e.to_string(),
                )),
            }
        }
        let mut events = Vec::new();
        for e in &raw.event {
            let key = format!("event \"{}\"", e.id);
            let span = e.when.as_ref().map(|w| w.span());
            if !seen.insert(e.id.clone()) {
                issues.push(file.issue(span.clone(), key.clone(), "duplicate rule id"));
            }
            let when = match &e.when {
                None => None,
                Some(w) => {
                    check_lists(
                        w.get_ref(),
                        &format!("{key} when"),
                        Some(w.span()),
                        &mut issues,
                    );
                    match Condition::compile(w.get_ref(), &Scope::event()) {
                        Ok(c) => Some(c),
                        Err(err) => {
                            issues.push(file.issue(
                                Some(w.span()),
                                format!("{key} when"),
                                err.to_string(),
                            ));
                            None
                        }
                    }
                }
            };
            let half_life = e.half_life.as_ref().and_then(|h| match parse_duration(h) {
                Some(d) => Some(d),
                None => {
                    issues.push(file.issue(
                        span.clone(),
                        format!("{key} half_life"),
                        format!("`{h}` is not a duration; write e.g. 14d"),
                    ));
                    None
                }
            });
            let retention = e.retention.as_ref().and_then(|h| match parse_duration(h) {
                Some(d) => Some(d),
                None => {
                    issues.push(file.issue(
                        span.clone(),
                        format!("{key} retention"),
                        format!("`{h}` is not a duration; write e.g. 180d"),
                    ));
                    None
                }
            });
            if e.max.is_some_and(|m| !(m.is_finite() && m >= 0.0)) {
                issues.push(file.issue(
                    span.clone(),
                    format!("{key} max"),
                    "must be a number ≥ 0 (for a negative rule it bounds what the rule takes away)",
                ));
            }
            let reads = when.as_ref().and_then(Condition::event_reads);
            events.push(EventRule {
                id: intern(&e.id),
                dimension: intern(&e.dimension),
                event_type: e.kind.clone(),
                when,
                points: e.points,
                half_life,
                max: e.max.map(f64::abs),
                retention,
                description: e.description.as_deref().map(intern),
                rank: u32::MAX,
                reads,
            });
            event_targets.push(e.score.as_ref().map(ScoreRefs::ids));
        }

        let default_grades = Grades::new(&raw.grades).unwrap_or_else(|reason| {
            issues.push(file.issue(None, "grades", reason));
            Grades::default()
        });
        check_caps(&raw.caps, "caps", file, &mut issues);

        // Every score by id: the default one, then the [[score]] sections.
        let mut ids: Vec<String> = vec![DEFAULT_SCORE.to_string()];
        for s in &raw.score {
            let key = format!("score \"{}\"", s.id);
            if s.id == DEFAULT_SCORE || s.id == MODEL_SCORE {
                issues.push(file.issue(
                    None,
                    key.clone(),
                    format!(
                        "`{}` is reserved (the {} score); choose another id",
                        s.id,
                        if s.id == DEFAULT_SCORE {
                            "default"
                        } else {
                            "model's"
                        }
                    ),
                ));
            } else if ids.contains(&s.id) {
                issues.push(file.issue(None, key.clone(), "duplicate score id"));
            } else if !valid_id(&s.id) {
                issues.push(file.issue(
                    None,
                    key.clone(),
                    "use letters, digits and _ only, so routing can read it as scores.ID",
                ));
            }
            ids.push(s.id.clone());
        }
        for (targets, id, kind) in rule_targets
            .iter()
            .zip(&rules)
            .map(|(t, r)| (t, &r.id, "rule"))
            .chain(
                event_targets
                    .iter()
                    .zip(&events)
                    .map(|(t, e)| (t, &e.id, "event")),
            )
        {
            for t in targets.iter().flatten() {
                if !ids.contains(t) {
                    issues.push(file.issue(
                        None,
                        format!("{kind} \"{id}\" score"),
                        format!("no score `{t}`; scores are: {}", ids.join(", ")),
                    ));
                }
            }
        }

        // Members of each rule-based score.
        let members = |id: &str, dimensions: &[String]| -> Body {
            let pick = |targets: &Option<Vec<String>>, dimension: &str| match targets {
                Some(t) => t.iter().any(|x| x == id),
                None => id == DEFAULT_SCORE || dimensions.iter().any(|d| d == dimension),
            };
            Body::Rules {
                rules: (0..rules.len())
                    .filter(|i| pick(&rule_targets[*i], &rules[*i].dimension))
                    .collect(),
                events: (0..events.len())
                    .filter(|i| pick(&event_targets[*i], &events[*i].dimension))
                    .collect(),
            }
        };
        // Named scores in dependency order (combinations after their components).
        let mut pending: Vec<&NamedScoreConfig> = raw
            .score
            .iter()
            .filter(|s| s.id != DEFAULT_SCORE && s.id != MODEL_SCORE)
            .collect();
        let mut scores = vec![ScoreDef {
            id: DEFAULT_SCORE.into(),
            body: members(DEFAULT_SCORE, &[]),
            caps: raw.caps.clone(),
            grades: default_grades.clone(),
        }];
        for s in &pending {
            let key = format!("score \"{}\"", s.id);
            if !s.combine.is_empty() && !s.dimensions.is_empty() {
                issues.push(file.issue(
                    None,
                    key.clone(),
                    "give either `dimensions` (rules) or `combine` (other scores), not both",
                ));
            }
            for (component, w) in &s.combine {
                if !ids.contains(component) {
                    issues.push(file.issue(
                        None,
                        format!("{key} combine"),
                        format!("no score `{component}`; scores are: {}", ids.join(", ")),
                    ));
                } else if component == &s.id {
                    issues.push(file.issue(
                        None,
                        format!("{key} combine"),
                        "a score cannot combine itself",
                    ));
                }
                if !w.is_finite() {
                    issues.push(file.issue(
                        None,
                        format!("{key} combine.{component}"),
                        "the weight must be a number",
                    ));
                }
            }
            check_caps(&s.caps, &format!("{key} caps"), file, &mut issues);
        }
        while !pending.is_empty() {
            let ready = pending.iter().position(|s| {
                s.combine
                    .keys()
                    .all(|c| scores.iter().any(|d| &d.id == c) || !ids.contains(c) || c == &s.id)
            });
            let Some(i) = ready else {
                let cycle: Vec<&str> = pending.iter().map(|s| s.id.as_str()).collect();
                issues.push(file.issue(
                    None,
                    "score",
                    format!(
                        "these scores combine each other in a cycle: {}",
                        cycle.join(", ")
                    ),
                ));
                break;
            };
            let s = pending.remove(i);
            let grades = if s.grades.is_empty() {
                default_grades.clone()
            } else {
                Grades::new(&s.grades).unwrap_or_else(|reason| {
                    issues.push(file.issue(None, format!("score \"{}\" grades", s.id), reason));
                    Grades::default()
                })
            };
            let body = if s.combine.is_empty() {
                let body = members(&s.id, &s.dimensions);
                if let Body::Rules {
                    rules: r,
                    events: e,
                } = &body
                {
                    if r.is_empty() && e.is_empty() {
                        issues.push(file.issue(None, format!("score \"{}\"", s.id), "no rule counts towards it: list `dimensions`, tag rules with score = \"ID\", or `combine` other scores"));
                    }
                }
                body
            } else {
                Body::Combine(
                    s.combine
                        .iter()
                        .filter_map(|(c, w)| {
                            scores.iter().position(|d| &d.id == c).map(|i| (i, *w))
                        })
                        .collect(),
                )
            };
            scores.push(ScoreDef {
                id: s.id.clone(),
                body,
                caps: s.caps.clone(),
                grades,
            });
        }

        let index_of = |id: &str| scores.iter().position(|s| s.id == id);
        let primary = match &raw.primary {
            None => 0,
            Some(p) => index_of(p).unwrap_or_else(|| {
                issues.push(file.issue(
                    None,
                    "primary",
                    format!("no score `{p}`; scores are: {}", ids.join(", ")),
                ));
                0
            }),
        };

        let mut blend = raw.model.as_ref().and_then(|m| {
            if !(0.0..=1.0).contains(&m.weight) {
                issues.push(file.issue(
                    None,
                    "model.weight",
                    format!(
                        "{} is not between 0 and 1 (1.0 = the model alone)",
                        m.weight
                    ),
                ));
            }
            let score = match &m.score {
                None => primary,
                Some(s) => index_of(s).unwrap_or_else(|| {
                    issues.push(file.issue(
                        None,
                        "model.score",
                        format!("no score `{s}`; scores are: {}", ids.join(", ")),
                    ));
                    primary
                }),
            };
            let path = resolve(&base, &m.path);
            match Model::load(&path) {
                Ok(model) => Some(Blend::new(
                    model,
                    m.weight.clamp(0.0, 1.0),
                    score,
                    m.explain_top,
                )),
                Err(e) => {
                    issues.push(file.issue(None, "model.path", e.to_string()));
                    None
                }
            }
        });

        let account = match &raw.account {
            Some(a) if !a.enabled => None,
            a => {
                let score = match a.as_ref().and_then(|a| a.score.clone()) {
                    Some(s) => {
                        if index_of(&s).is_none() {
                            issues.push(file.issue(
                                None,
                                "account.score",
                                format!("no score `{s}`; scores are: {}", ids.join(", ")),
                            ));
                        }
                        s
                    }
                    None if index_of("engagement").is_some() => "engagement".into(),
                    None => scores[primary].id.clone(),
                };
                let half_life = match a.as_ref().and_then(|a| a.half_life.as_ref()) {
                    None => Some(DEFAULT_ACCOUNT_HALF_LIFE),
                    Some(h) => parse_duration(h).or_else(|| {
                        issues.push(file.issue(
                            None,
                            "account.half_life",
                            format!("`{h}` is not a duration; write e.g. 30d"),
                        ));
                        None
                    }),
                };
                Some(AccountRollup { score, half_life })
            }
        };

        if !issues.is_empty() {
            return Err(ConfigErrors(issues));
        }
        let lists_json = Value::Object(
            lists
                .into_iter()
                .map(|(k, v)| (k, Value::from(v)))
                .collect(),
        );
        let mut ids: Vec<Name> = rules
            .iter()
            .map(|r| r.id.clone())
            .chain(events.iter().map(|e| e.id.clone()))
            .collect();
        ids.sort();
        if let Some(b) = &mut blend {
            b.rank(&ids);
        }
        let rank_of = |id: &Name| ids.binary_search(id).map_or(u32::MAX, |i| 2 * i as u32);
        for r in &mut rules {
            r.rank = rank_of(&r.id);
        }
        for e in &mut events {
            e.rank = rank_of(&e.id);
        }
        // A score that scales nothing before its factors are sorted (no caps, no model)
        // lists its rules in factor order, so that its parts arrive sorted and
        // `sort_parts` only checks them. Scores that scale keep file order, which decides
        // where a rounding remainder goes.
        let blended = blend.as_ref().map(|b| b.score);
        for (i, def) in scores.iter_mut().enumerate() {
            if let Body::Rules { rules: members, .. } = &mut def.body {
                if def.caps.is_empty() && blended != Some(i) {
                    members.sort_by_key(|r| (Reverse(rules[*r].cp.unsigned_abs()), rules[*r].rank));
                }
            }
        }
        let mut lead_fields = FieldTable::default();
        for r in &mut rules {
            r.when.intern_fields(&mut lead_fields);
        }
        for e in &mut events {
            if let Some(w) = &mut e.when {
                w.intern_fields(&mut lead_fields);
            }
        }
        let mut events_by_type: Vec<(String, Vec<usize>)> = Vec::new();
        for (i, e) in events.iter().enumerate() {
            match events_by_type.iter_mut().find(|(t, _)| *t == e.event_type) {
                Some((_, rules)) => rules.push(i),
                None => events_by_type.push((e.event_type.clone(), vec![i])),
            }
        }
        let reads_event_list = rules
            .iter()
            .map(|r| &r.when)
            .chain(events.iter().filter_map(|e| e.when.as_ref()))
            .any(crate::rules::reads_event_list);
        Ok(Self {
            reads_event_list,
            rules,
            field_sets,
            lead_fields,
            events_by_type,
            events,
            scores,
            primary,
            blend,
            lists: SharedVal::from_json(&lists_json),
            account,
            ids,
        })
    }

    /// The primary score's grade names, highest first.
    pub fn grade_names(&self) -> Vec<String> {
        self.scores[self.primary].grades.names()
    }

    /// A score's grade names, highest first.
    pub fn grade_names_of(&self, score: &str) -> Option<Vec<String>> {
        self.scores
            .iter()
            .find(|s| s.id == score)
            .map(|s| s.grades.names())
    }

    /// Every score id, the primary first (and `model` when a model is configured).
    pub fn score_ids(&self) -> Vec<String> {
        let primary = self.scores[self.primary].id.clone();
        let mut ids: Vec<String> = self
            .scores
            .iter()
            .map(|s| s.id.clone())
            .filter(|s| s != &primary)
            .collect();
        ids.insert(0, primary);
        if self.blend.is_some() {
            ids.push(MODEL_SCORE.into());
        }
        ids
    }

    /// The primary score's id.
    pub fn primary_id(&self) -> &str {
        &self.scores[self.primary].id
    }

    pub fn rule_count(&self) -> usize {
        self.rules.len() + self.events.len()
    }

    /// The model blended into scores, if any.
    pub fn model(&self) -> Option<&Model> {
        self.blend.as_ref().map(|b| &b.model)
    }

    /// How the account score rolls up, unless `[account] enabled = false`.
    pub fn account_rollup(&self) -> Option<&AccountRollup> {
        self.account.as_ref()
    }

    /// Adds what only the scorer knows to a lead's context: `lists`.
    pub fn prepare(&self, ctx: &mut RuleContext) {
        ctx.set_shared("lists", &self.lists);
    }

    /// A lead's context for this scorer's rules alone (tests, benchmarks, re-scoring without
    /// triggers): without the list of events when no rule reads it.
    pub fn context(
        &self,
        enriched: &EnrichedLead,
        account: &Value,
        now: DateTime<Utc>,
    ) -> RuleContext {
        let mut ctx = RuleContext::for_lead_reading(enriched, account, now, self.reads_event_list);
        self.prepare(&mut ctx);
        ctx
    }

    /// Whether some rule may read the lead's list of events (`lead.events`, `events`): a
    /// context made for this scorer alone leaves the list out when none does.
    pub fn reads_event_list(&self) -> bool {
        self.reads_event_list
    }

    /// Scores one lead: the primary score. `ctx` is the lead's rule context, built once.
    pub fn score(
        &self,
        enriched: EnrichedLead,
        ctx: &RuleContext,
        now: DateTime<Utc>,
    ) -> ScoredLead {
        self.score_all(enriched, ctx, now).0
    }

    /// Scores one lead on every score: the primary one as a [`ScoredLead`], and every score
    /// (the primary too) by id.
    pub fn score_all(
        &self,
        enriched: EnrichedLead,
        ctx: &RuleContext,
        now: DateTime<Utc>,
    ) -> (ScoredLead, BTreeMap<String, ScoreCard>) {
        let mut hits = Hits {
            scorer: self,
            quoted: vec![None; self.field_sets.len()],
            events: Vec::new(),
            made: Vec::new(),
        };
        let fields = self.lead_fields.resolve(ctx);
        let mut evaluator = Evaluator::new(ctx, &fields);
        let rule_hits: Vec<Option<Part>> = (0..self.rules.len())
            .map(|r| self.score_rule(r, ctx, &mut evaluator, &mut hits.quoted))
            .collect();
        let (event_hits, event_values) =
            self.score_events(&enriched.lead.events, ctx, &fields, now);
        hits.events = event_values;
        // The model explains a lead once: the blended score and the model's own card share it.
        let mut explained = self.blend.as_ref().map(|b| b.explain(&enriched));

        let mut done: Vec<Vec<Part>> = Vec::with_capacity(self.scores.len());
        let mut cards = BTreeMap::new();
        for (i, def) in self.scores.iter().enumerate() {
            let mut parts: Vec<Part> = match &def.body {
                Body::Rules { rules, events } => {
                    // Sized for every rule and a limit: filtering hides the length from
                    // `collect`, which would grow the vector five times for 60 factors.
                    let mut parts = Vec::with_capacity(rules.len() + events.len() + 1);
                    parts.extend(rules.iter().filter_map(|r| rule_hits[*r]));
                    parts.extend(events.iter().filter_map(|e| event_hits[*e]));
                    parts
                }
                Body::Combine(components) => {
                    combine(components.iter().map(|(c, w)| (&done[*c], *w)), &hits)
                }
            };
            apply_caps(&mut parts, &def.caps, &hits);
            clamp(&mut parts, &mut hits);
            if let (Some(b), Some(c)) = (&self.blend, &mut explained) {
                if b.score == i {
                    blend(&mut parts, b, c, &mut hits);
                }
            }
            parts.retain(|p| p.cp != 0);
            sort_parts(&mut parts, &hits);
            cards.insert(def.id.clone(), card(&parts, &def.grades, &hits));
            done.push(parts);
        }
        if let (Some(b), Some(c)) = (&self.blend, &mut explained) {
            let mut parts = model_parts(b, c, 1.0, &mut hits);
            parts.retain(|p| p.cp != 0);
            sort_parts(&mut parts, &hits);
            cards.insert(
                MODEL_SCORE.into(),
                card(&parts, &self.scores[self.primary].grades, &hits),
            );
        }
        let primary = &cards[&self.scores[self.primary].id];
        let scored = ScoredLead {
            enriched,
            score: primary.score,
            grade: primary.grade.clone(),
            factors: primary.factors.clone(),
        };
        (scored, cards)
    }

    /// The values of field set `set` for this lead, as factors show them.
    // Out of line: building them inside `score_rule` made every rule pay for the registers
    // it needs, and a set is quoted once per lead.
    #[inline(never)]
    fn quote(&self, set: usize, ctx: &RuleContext) -> Matched {
        let fields = &self.field_sets[set];
        let mut values = Vec::with_capacity(fields.len());
        for f in fields {
            if let Some(v) = ctx.read(f) {
                values.push((f.name().clone(), v.clone()));
            }
        }
        Matched::new(values)
    }

    /// Rule `r`'s part, if it matches. `quoted`: the matched values of each field set, once
    /// built for this lead.
    #[inline]
    fn score_rule<'a>(
        &'a self,
        r: usize,
        ctx: &RuleContext,
        evaluator: &mut Evaluator<'a>,
        quoted: &mut [Option<Matched>],
    ) -> Option<Part> {
        let rule = &self.rules[r];
        if !rule.when.eval_in(evaluator).matched() {
            return None;
        }
        let slot = &mut quoted[rule.fields];
        if slot.is_none() {
            *slot = Some(self.quote(rule.fields, ctx));
        }
        Some(Part {
            source: Source::Rule(r as u32),
            cp: rule.cp,
            rank: rule.rank,
        })
    }
}

/// How many distinct outcomes of one event rule's `when` a scoring call remembers.
const MEMO_OUTCOMES: usize = 16;

/// One event rule's matches so far.
#[derive(Debug, Clone, Default)]
struct EventTally {
    points: f64,
    count: u32,
    /// The index of the latest matching event.
    latest: Option<usize>,
}

impl Scorer {
    /// Points from every event rule: each matching event's points faded by its age, summed,
    /// then held to `max` (in the rule's direction). Each event is bound as `event` once, and
    /// every rule of its type evaluated in that scope. Returns each event rule's part, and
    /// the values its factor shows (`events`, `latest`).
    fn score_events(
        &self,
        events: &[Event],
        ctx: &RuleContext,
        fields: &Fields<'_>,
        now: DateTime<Utc>,
    ) -> (Vec<Option<Part>>, Vec<Option<Matched>>) {
        let mut tallies = vec![EventTally::default(); self.events.len()];
        // Per event rule: the outcomes of `when` so far, by the values of the event fields
        // it reads. The lead is fixed for this call, so an event alike in those fields has
        // the same outcome; a history is mostly a few kinds of event repeated. The fields are
        // read from the `Event` itself: its JSON (as `when` sees it) is made only for an
        // event whose outcome is not known yet.
        let mut outcomes: Vec<Vec<(Vec<Option<Value>>, bool)>> =
            vec![Vec::new(); self.events.len()];
        for (i, event) in events.iter().enumerate() {
            let Some(of_type) = self.events_of_type(&event.kind) else {
                continue;
            };
            let json: std::cell::OnceCell<Value> = std::cell::OnceCell::new();
            let mut scope = None;
            let age = age_seconds(event.at, now);
            // Event rules of one type mostly share a half-life: the last fade is reused.
            let mut faded: Option<(Option<Duration>, f64)> = None;
            for &r in of_type {
                let (rule, tally) = (&self.events[r], &mut tallies[r]);
                if let Some(when) = &rule.when {
                    if let Some(reads) = &rule.reads {
                        let known = outcomes[r].iter().find(|(values, _)| {
                            values
                                .iter()
                                .zip(reads)
                                .all(|(v, f)| event_field_is(event, f, v.as_ref()))
                        });
                        if let Some((_, matched)) = known {
                            if *matched {
                                self.tally_event(rule, tally, events, i, age, &mut faded);
                            }
                            continue;
                        }
                    }
                    let (bound, event_fields, resolved) = scope.get_or_insert_with(|| {
                        let json = json.get_or_init(|| crate::rules::event_json(event));
                        let mut event_fields = Vec::new();
                        let resolved = self.lead_fields.resolve_event(json, &mut event_fields);
                        (ctx.bind_event_json(json), event_fields, resolved)
                    });
                    let table = resolved.then_some(event_fields.as_slice());
                    let matched = when.eval_bound_fields(bound, fields, table).matched();
                    if let Some(reads) = &rule.reads {
                        // Bounded: a field unique per event (an id) would only grow it.
                        if outcomes[r].len() < MEMO_OUTCOMES {
                            let values = reads.iter().map(|f| event_field(event, f)).collect();
                            outcomes[r].push((values, matched));
                        }
                    }
                    if !matched {
                        continue;
                    }
                }
                self.tally_event(rule, tally, events, i, age, &mut faded);
            }
        }
        // Event rules of one type mostly match the same events: the values their factors show
        // (how many, the latest) are made once and shared.
        let mut shown: Vec<((u32, Option<usize>), Matched)> = Vec::new();
        self.events
            .iter()
            .enumerate()
            .zip(tallies)
            .map(|((r, rule), t)| {
                let key = (t.count, t.latest);
                let part = event_part(r, rule, &t)?;
                let values = match shown.iter().find(|(k, _)| *k == key) {
                    Some((_, values)) => values.clone(),
                    None => {
                        // The time as the lead's record shows it.
                        let latest = t
                            .latest
                            .map(|l| Value::from(crate::lead::rfc3339(&events[l].at, true)));
                        let values = event_values(t.count, latest);
                        shown.push((key, values.clone()));
                        values
                    }
                };
                Some((part, values))
            })
            .map(Option::unzip)
            .unzip()
    }

    /// Counts event `i` as a match of `rule`, faded by its age; `faded` keeps the last
    /// (half-life, fade) since the rules of one type mostly share a half-life.
    fn tally_event(
        &self,
        rule: &EventRule,
        tally: &mut EventTally,
        events: &[Event],
        i: usize,
        age: f64,
        faded: &mut Option<(Option<Duration>, f64)>,
    ) {
        tally.count += 1;
        if tally.latest.is_none_or(|l| events[l].at < events[i].at) {
            tally.latest = Some(i);
        }
        let f = match *faded {
            Some((h, f)) if h == rule.half_life => f,
            _ => {
                let f = fade(rule.half_life, age);
                *faded = Some((rule.half_life, f));
                f
            }
        };
        tally.points += rule.points * f;
    }

    /// The event rules that score events of `kind`, in rule order.
    fn events_of_type(&self, kind: &str) -> Option<&[usize]> {
        // A scan: a scorer has a handful of event types, and hashing the type was more than
        // comparing it with each.
        self.events_by_type
            .iter()
            .find(|(t, _)| t == kind)
            .map(|(_, rules)| rules.as_slice())
    }

    /// How long the person's history keeps events of `kind`: the longest `retention` of
    /// the event rules of that type. None (keep) when a rule of the type sets none, or no
    /// rule scores the type (`activity.*` still counts it).
    pub fn retention(&self, kind: &str) -> Option<Duration> {
        let rules = self.events_of_type(kind)?;
        rules
            .iter()
            .map(|i| self.events[*i].retention)
            .try_fold(Duration::ZERO, |longest, r| r.map(|r| longest.max(r)))
    }
}

/// Field `f` of `event` as `when` reads it (`rules::event_json`): `type` and `at` are the
/// event's own, shadowing any property of that name.
fn event_field(event: &Event, f: &str) -> Option<Value> {
    match f {
        "type" => Some(Value::String(event.kind.clone())),
        "at" => Some(Value::String(crate::lead::rfc3339(&event.at, true))),
        _ => event.props.get(f).cloned(),
    }
}

/// Whether field `f` of `event` is `v` ([`event_field`] without copying the value).
fn event_field_is(event: &Event, f: &str, v: Option<&Value>) -> bool {
    match f {
        "type" => matches!(v, Some(Value::String(s)) if *s == event.kind),
        "at" => event_field(event, f).as_ref() == v,
        _ => event.props.get(f) == v,
    }
}

/// Event rule `r`'s part, if any event matched it.
fn event_part(r: usize, rule: &EventRule, tally: &EventTally) -> Option<Part> {
    if tally.count == 0 {
        return None;
    }
    let points = match rule.max {
        Some(max) => tally.points.clamp(-max, max),
        None => tally.points,
    };
    Some(Part {
        source: Source::Event(r as u32),
        cp: to_cp(points),
        rank: rule.rank,
    })
}

/// What an event rule's factor shows: how many events matched, and the latest one's time.
fn event_values(count: u32, latest: Option<Value>) -> Matched {
    static EVENTS: LazyLock<Arc<str>> = LazyLock::new(|| Arc::from("events"));
    static LATEST: LazyLock<Arc<str>> = LazyLock::new(|| Arc::from("latest"));
    let events = (EVENTS.clone(), Value::from(count));
    Matched::sorted(match latest {
        Some(at) => Arc::new([events, (LATEST.clone(), at)]),
        None => Arc::new([events]),
    })
}

/// Scales the parts at `idx` so they sum to exactly `target` hundredths; the rounding
/// remainder goes to the largest of them.
fn scale_to(parts: &mut [Part], idx: &[usize], target: i64) {
    let sum: i64 = idx.iter().map(|i| parts[*i].cp).sum();
    if sum == 0 || idx.is_empty() {
        return;
    }
    let f = target as f64 / sum as f64;
    for i in idx {
        parts[*i].cp = (parts[*i].cp as f64 * f).round() as i64;
    }
    let residual = target - idx.iter().map(|i| parts[*i].cp).sum::<i64>();
    if let Some(k) = idx.iter().copied().max_by_key(|i| parts[*i].cp.abs()) {
        parts[k].cp += residual;
    }
}

/// Per-dimension caps: a positive cap bounds what a dimension adds, a negative one what it
/// takes away; the dimension's factors are scaled to sum to the cap.
fn apply_caps(parts: &mut [Part], caps: &BTreeMap<String, f64>, hits: &Hits<'_>) {
    for (dimension, cap) in caps {
        let idx: Vec<usize> = (0..parts.len())
            .filter(|i| **hits.dimension(&parts[*i]) == **dimension)
            .collect();
        let sum: i64 = idx.iter().map(|i| parts[*i].cp).sum();
        let cap = to_cp(*cap);
        if (cap >= 0 && sum > cap) || (cap < 0 && sum < cap) {
            scale_to(parts, &idx, cap);
        }
    }
}

/// Holds the total to 0–100 with one `limit` factor, so the factors still sum to it.
fn clamp(parts: &mut Vec<Part>, hits: &mut Hits<'_>) {
    let sum: i64 = parts.iter().map(|p| p.cp).sum();
    let (rule, cp, why) = if sum > 100 * 100 {
        ("max-100", 100 * 100 - sum, "scores stop at 100")
    } else if sum < 0 {
        ("min-0", -sum, "scores do not go below 0")
    } else {
        return;
    };
    let limit = Factor {
        rule: rule.into(),
        dimension: LIMIT_DIMENSION.into(),
        points: 0.0,
        matched: Default::default(),
        description: Some(why.into()),
    };
    parts.push(hits.make(limit, cp));
}

/// A weighted sum of finished scores: each component's factors scaled by its weight, the
/// same rule's share from two components merged.
fn combine<'a>(
    components: impl Iterator<Item = (&'a Vec<Part>, f64)>,
    hits: &Hits<'_>,
) -> Vec<Part> {
    let mut merged: Vec<Part> = Vec::new();
    let mut at: HashMap<(Name, Name), usize> = HashMap::new();
    for (parts, w) in components {
        let mut scaled = parts.clone();
        let idx: Vec<usize> = (0..scaled.len()).collect();
        let total: i64 = scaled.iter().map(|p| p.cp).sum();
        scale_to(&mut scaled, &idx, (total as f64 * w).round() as i64);
        for p in scaled {
            let key = (hits.rule_id(&p).clone(), hits.dimension(&p).clone());
            match at.get(&key) {
                Some(i) => merged[*i].cp += p.cp,
                None => {
                    at.insert(key, merged.len());
                    merged.push(p);
                }
            }
        }
    }
    merged
}

/// Blends the model into a score: the rule factors keep (1 − weight) of their points, the
/// model's weight × probability × 100 is split across its features.
fn blend(parts: &mut Vec<Part>, b: &Blend, explained: &mut Explained, hits: &mut Hits<'_>) {
    let idx: Vec<usize> = (0..parts.len()).collect();
    let total: i64 = parts.iter().map(|p| p.cp).sum();
    scale_to(
        parts,
        &idx,
        (total as f64 * (1.0 - b.weight)).round() as i64,
    );
    parts.extend(model_parts(b, explained, b.weight, hits));
}

/// The model's share of a score as factors: a baseline (an average lead's probability) and
/// each feature's push up or down, the `explain_top` largest by name, the rest summed.
/// Log-odds contributions are mapped to points along the secant of the logistic curve from
/// the baseline to this lead, so they sum exactly to weight × probability × 100.
fn model_parts(b: &Blend, e: &mut Explained, weight: f64, hits: &mut Hits<'_>) -> Vec<Part> {
    let m = &b.model;
    let z0 = m.baseline();
    let z = z0 + e.logits.iter().sum::<f64>();
    let (p, p0) = (model::sigmoid(z), model::sigmoid(z0));
    let slope = if (z - z0).abs() > 1e-9 {
        (p - p0) / (z - z0)
    } else {
        p0 * (1.0 - p0)
    };
    let scale = weight * 100.0 * CENTI;
    let target = (scale * p).round() as i64;
    let made = e
        .made
        .get_or_insert_with(|| make_model_factors(b, &e.logits, &e.values, hits));
    let mut parts = Vec::with_capacity(made.top.len() + 2);
    parts.push(Part {
        source: Source::Made(made.baseline),
        cp: (scale * p0).round() as i64,
        rank: b.baseline.1,
    });
    for &(i, f) in &made.top {
        parts.push(Part {
            source: Source::Made(i),
            cp: (scale * slope * e.logits[f]).round() as i64,
            rank: b.names[f].2,
        });
    }
    if let Some(i) = made.other {
        let rest: f64 = made
            .rest
            .iter()
            .fold(0.0, |rest, f| rest + scale * slope * e.logits[*f]);
        parts.push(Part {
            source: Source::Made(i),
            cp: rest.round() as i64,
            rank: b.others.1,
        });
    }
    // Rounding remainder to the baseline, so the parts sum to the model's share exactly.
    let sum: i64 = parts.iter().map(|p| p.cp).sum();
    parts[0].cp += target - sum;
    parts
}

/// The model's factors for one lead, in `hits.made`: the baseline, the `explain_top` largest
/// effects (by size, then feature name) and one for the rest.
fn make_model_factors(
    b: &Blend,
    logits: &[f64],
    values: &[Option<features::RawValue>],
    hits: &mut Hits<'_>,
) -> MadeFactors {
    let mut order: Vec<usize> = (0..logits.len()).collect();
    // Names are unique, so the order is total and an unstable sort gives the stable one's.
    order.sort_unstable_by(|&a, &c| {
        logits[c]
            .abs()
            .total_cmp(&logits[a].abs())
            .then(b.name_order[a].cmp(&b.name_order[c]))
    });
    let mut made = |factor: Factor| {
        hits.made.push(factor);
        hits.made.len() as u32 - 1
    };
    let baseline = made(b.baseline.0.clone());
    let mut top = Vec::with_capacity(b.explain_top.min(order.len()));
    let mut rest = Vec::new();
    for (i, &f) in order.iter().enumerate() {
        if i < b.explain_top && logits[f].abs() > 1e-12 {
            let (rule, key, _) = &b.names[f];
            let value = values[f]
                .as_ref()
                .map_or(Value::Null, features::RawValue::to_json);
            let factor = Factor {
                rule: rule.clone(),
                dimension: MODEL_DIMENSION.into(),
                points: 0.0,
                matched: Matched::new(vec![(key.clone(), value)]),
                description: Some(
                    format!("{:+.2} log-odds against an average lead", logits[f]).into(),
                ),
            };
            top.push((made(factor), f));
        } else {
            rest.push(f);
        }
    }
    let other = (!rest.is_empty()).then(|| made(b.others.0[rest.len()].clone()));
    MadeFactors {
        baseline,
        top,
        rest,
        other,
    }
}

fn sort_parts(parts: &mut Vec<Part>, hits: &Hits<'_>) {
    // Larger points first, then by rule id. Ranks stand in for the ids; packed with the
    // points and the part's place into one integer, the sort moves integers (sorting the
    // parts by a comparator cost twice as much). Only factors made while scoring can share
    // a rank; their ids then decide. Ids are unique within a score, so the order is total.
    const LOW: u64 = 0xFFFF;
    let by_id = |a: &Part, b: &Part| hits.rule_id(a).cmp(hits.rule_id(b));
    if parts.len() as u64 > LOW || parts.iter().any(|p| u64::from(p.rank) > LOW) {
        parts.sort_unstable_by(|a, b| {
            b.cp.abs()
                .cmp(&a.cp.abs())
                .then(a.rank.cmp(&b.rank))
                .then_with(|| by_id(a, b))
        });
        return;
    }
    let mut keys: Vec<u64> = parts
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let weight = u32::MAX - u32::try_from(p.cp.unsigned_abs()).unwrap_or(u32::MAX);
            u64::from(weight) << 32 | u64::from(p.rank) << 16 | i as u64
        })
        .collect();
    // Parts mostly arrive sorted when their score lists its rules in factor order, with a
    // limit or event factor or two after them: those are inserted, the rest is sorted.
    let run = 1 + keys.windows(2).take_while(|w| w[0] < w[1]).count();
    if keys.len() - run.min(keys.len()) <= 4 {
        for i in run..keys.len() {
            let k = keys[i];
            let at = keys[..i].partition_point(|x| *x < k);
            keys.copy_within(at..i, at + 1);
            keys[at] = k;
        }
    } else {
        keys.sort_unstable();
    }
    let mut sorted: Vec<Part> = keys.iter().map(|k| parts[(k & LOW) as usize]).collect();
    if keys.windows(2).any(|w| w[0] >> 16 == w[1] >> 16) {
        let mut start = 0;
        while start < keys.len() {
            let tie = keys[start] >> 16;
            let end = start + keys[start..].iter().take_while(|k| *k >> 16 == tie).count();
            sorted[start..end].sort_unstable_by(by_id);
            start = end;
        }
    }
    *parts = sorted;
}

fn card(parts: &[Part], grades: &Grades, hits: &Hits<'_>) -> ScoreCard {
    let sum: i64 = parts.iter().map(|p| p.cp).sum();
    // Half a point rounds up; the sum is already within 0–100.
    let score = (sum + 50).div_euclid(100).clamp(0, 100);
    ScoreCard {
        score,
        grade: grades.grade(score).to_string(),
        total: sum as f64 / CENTI,
        factors: parts.iter().map(|p| hits.factor(p)).collect(),
    }
}

fn check_caps(
    caps: &BTreeMap<String, f64>,
    key: &str,
    file: &RuleFile,
    issues: &mut Vec<ConfigIssue>,
) {
    for (d, c) in caps {
        if !c.is_finite() {
            issues.push(file.issue(None, format!("{key}.{d}"), "must be a number"));
        }
    }
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !id.starts_with(|c: char| c.is_ascii_digit())
}

/// `14d`, `36h`, `2w` (humantime) → a non-zero duration.
fn parse_duration(s: &str) -> Option<Duration> {
    humantime::parse_duration(s.trim())
        .ok()
        .filter(|d| !d.is_zero())
}

fn resolve(base: &Path, p: &str) -> PathBuf {
    let path = Path::new(p);
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    }
}

/// The `[lists]`, lowercased and trimmed; a file list reads one value a line (`#` comments).
fn load_lists(
    raw: &BTreeMap<String, ListConfig>,
    base: &Path,
    file: &RuleFile,
    issues: &mut Vec<ConfigIssue>,
) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for (name, l) in raw {
        if !valid_id(name) {
            issues.push(file.issue(
                None,
                format!("lists.{name}"),
                "use letters, digits and _ only, so rules can read it as lists.NAME",
            ));
        }
        let values: Vec<String> = match l {
            ListConfig::Inline(v) => v.clone(),
            ListConfig::File(p) => {
                let path = resolve(base, p);
                match std::fs::read_to_string(&path) {
                    Ok(text) => text
                        .lines()
                        .map(str::trim)
                        .filter(|l| !l.is_empty() && !l.starts_with('#'))
                        .map(str::to_string)
                        .collect(),
                    Err(e) => {
                        issues.push(file.issue(
                            None,
                            format!("lists.{name}"),
                            format!("cannot read {}: {e}", path.display()),
                        ));
                        Vec::new()
                    }
                }
            }
        };
        out.insert(
            name.clone(),
            values
                .into_iter()
                .map(|v| v.trim().to_lowercase())
                .collect(),
        );
    }
    out
}

/// The list names a rule reads (`lists.competitors` → `competitors`).
fn list_refs(source: &str) -> Vec<String> {
    static RE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"\blists\.([A-Za-z_][A-Za-z0-9_]*)").expect("a valid pattern")
    });
    RE.captures_iter(source).map(|c| c[1].to_string()).collect()
}

/// The weight of an event `at` seen from `now`: 0.5 per half-life elapsed; future events
/// (clock skew) count in full.
pub fn decay(half_life: Option<Duration>, at: DateTime<Utc>, now: DateTime<Utc>) -> f64 {
    fade(half_life, age_seconds(at, now))
}

/// An event's age at `now` in seconds, to the millisecond; a future event is 0 s old.
fn age_seconds(at: DateTime<Utc>, now: DateTime<Utc>) -> f64 {
    // Milliseconds since the epoch, subtracted: chrono's `DateTime - DateTime` normalises a
    // `TimeDelta` first, which cost more than the fade it feeds.
    (now.timestamp_millis().saturating_sub(at.timestamp_millis())).max(0) as f64 / 1000.0
}

/// [`decay`] of an event `age` seconds old (computed once per event, not per rule).
fn fade(half_life: Option<Duration>, age: f64) -> f64 {
    let Some(h) = half_life else { return 1.0 };
    0.5f64.powf(age / h.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lead::RawLead;
    use chrono::TimeZone;
    use serde_json::json;

    const RULES: &str = r#"
[grades]
hot = 80
warm = 50
cool = 20

[caps]
firmographic = 40

[[rule]]
id = "enterprise"
dimension = "firmographic"
when = "company.employees >= 1000"
points = 30

[[rule]]
id = "software"
dimension = "firmographic"
when = "company.industry == 'Software'"
points = 20

[[rule]]
id = "personal-email"
dimension = "negative"
when = "email.is_free"
points = -40

[[event]]
id = "pricing-page"
type = "page_view"
when = "event.path.startsWith('/pricing')"
points = 10
half_life = "14d"
max = 15
"#;

    fn scorer() -> Scorer {
        Scorer::from_file(&RuleFile::from_text("scoring.toml", RULES)).unwrap()
    }

    fn enriched(lead: serde_json::Value, company: serde_json::Value) -> EnrichedLead {
        let lead =
            crate::normalize::Normalizer::new(["gmail.com".to_string()].into(), Default::default())
                .normalize(&RawLead(lead.as_object().unwrap().clone()))
                .unwrap();
        let mut enrichment = crate::lead::Enrichment::default();
        for (k, v) in company.as_object().unwrap() {
            enrichment.fields.insert(
                format!("company.{k}"),
                crate::lead::Provenanced {
                    value: v.clone(),
                    provider: "t".into(),
                    at: Utc::now(),
                    confidence: None,
                },
            );
        }
        EnrichedLead { lead, enrichment }
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, 0, 0, 0).unwrap()
    }

    #[test]
    fn decay_halves_per_half_life() {
        let h = Some(Duration::from_secs(14 * 86400));
        assert!((decay(h, now() - chrono::Duration::days(14), now()) - 0.5).abs() < 1e-9);
        assert!((decay(h, now() - chrono::Duration::days(28), now()) - 0.25).abs() < 1e-9);
        assert_eq!(decay(None, now() - chrono::Duration::days(400), now()), 1.0);
    }

    #[test]
    fn caps_a_dimension_and_factors_sum_to_the_score() {
        let e = enriched(
            json!({"email": "a@acme.io"}),
            json!({"employees": 5000, "industry": "Software"}),
        );
        let ctx = RuleContext::for_lead(&e, &json!({}), now());
        let s = scorer().score(e, &ctx, now());
        assert_eq!(s.score, 40, "{:?}", s.factors);
        let sum: f64 = s.factors.iter().map(|f| f.points).sum();
        assert_eq!(sum.round() as i64, s.score);
        assert_eq!(s.grade, "cool");
        assert_eq!(&*s.factors[0].rule, "enterprise");
        assert_eq!(s.factors[0].matched["company.employees"], json!(5000));
    }

    #[test]
    fn events_decay_and_are_capped_by_max() {
        let e = enriched(
            json!({"email": "a@acme.io", "events": [
                {"type": "page_view", "at": "2026-11-09T00:00:00Z", "path": "/pricing"},
                {"type": "page_view", "at": "2026-11-23T00:00:00Z", "path": "/pricing/enterprise"},
                {"type": "page_view", "at": "2026-11-23T00:00:00Z", "path": "/blog"}
            ]}),
            json!({}),
        );
        let ctx = RuleContext::for_lead(&e, &json!({}), now());
        let s = scorer().score(e, &ctx, now());
        // 10 (today) + 5 (one half-life ago) = 15, exactly the max.
        assert_eq!(s.factors[0].points, 15.0);
        assert_eq!(s.score, 15);
        assert_eq!(s.grade, "cold");
    }

    #[test]
    fn a_long_history_scores_as_each_event_evaluated_alone() {
        // `memo` reads `event` through selects, so its outcomes are reused across events
        // alike in `path` and `channel`; `whole` indexes `event`, so every event is
        // evaluated. Both must count and fade exactly the same events.
        let rules = r#"
[[event]]
id = "memo"
type = "page_view"
when = "has(event.path) && event.path.startsWith('/pricing') && company.employees > 10"
points = 3
half_life = "7d"
[[event]]
id = "whole"
type = "page_view"
when = "has(event.path) && event['path'].startsWith('/pricing') && company.employees > 10"
points = 3
half_life = "7d"
"#;
        let scorer = Scorer::from_file(&RuleFile::from_text("scoring.toml", rules)).unwrap();
        assert_eq!(
            scorer.events[0].reads.as_deref(),
            Some(&["path".to_string()][..])
        );
        assert_eq!(scorer.events[1].reads, None);
        let paths = ["/pricing", "/blog", "/pricing/enterprise", "/docs"];
        let events: Vec<_> = (0..300)
            .map(|i| {
                let at = now() - chrono::Duration::minutes(41 * i as i64);
                let mut e = json!({"type": "page_view", "at": at.to_rfc3339()});
                // Some events have no path at all: `has` must still decide per event.
                if i % 7 != 0 {
                    e["path"] = json!(paths[i % 4]);
                }
                e
            })
            .collect();
        let expected = (0..300)
            .filter(|i| i % 7 != 0 && i % 2 == 0)
            .map(|i| 3.0 * 0.5f64.powf((41 * 60 * i) as f64 / (7.0 * 86400.0)))
            .sum::<f64>();
        let e = enriched(
            json!({"email": "a@acme.io", "events": events}),
            json!({"employees": 50}),
        );
        let ctx = RuleContext::for_lead(&e, &json!({}), now());
        let s = scorer.score(e, &ctx, now());
        let by = |id: &str| s.factors.iter().find(|f| &*f.rule == id).unwrap();
        let (memo, whole) = (by("memo"), by("whole"));
        assert_eq!(memo.points, whole.points);
        assert_eq!(
            serde_json::to_value(&memo.matched).unwrap(),
            serde_json::to_value(&whole.matched).unwrap()
        );
        assert_eq!(memo.points, (expected * 100.0).round() / 100.0);
        let shown = serde_json::to_value(&memo.matched).unwrap();
        assert_eq!(
            shown["events"],
            json!((0..300).filter(|i| i % 7 != 0 && i % 2 == 0).count())
        );
    }

    #[test]
    fn a_context_without_the_event_list_scores_as_the_full_one() {
        // No rule here reads `lead.events`: the scorer's own context leaves the list out,
        // and every score, factor and matched value stays what the full context gives.
        let rules = format!(
            "{RULES}\n[[event]]\nid = \"typed\"\ntype = \"page_view\"\nwhen = \"event.type == 'page_view' && has(event.ref)\"\npoints = 2\n\n[[rule]]\nid = \"active\"\ndimension = \"engagement\"\nwhen = \"activity.count >= 3\"\npoints = 4\n"
        );
        let scorer = Scorer::from_file(&RuleFile::from_text("scoring.toml", &rules)).unwrap();
        assert!(!scorer.reads_event_list());
        let events: Vec<_> = (0..40)
            .map(|i| {
                let at = now() - chrono::Duration::hours(7 * i as i64);
                let path = ["/pricing", "/blog"][i % 2];
                json!({"type": "page_view", "at": at.to_rfc3339(), "path": path, "ref": i % 3})
            })
            .collect();
        let e = enriched(
            json!({"email": "a@acme.io", "events": events}),
            json!({"employees": 50}),
        );
        let full = RuleContext::for_lead(&e, &json!({}), now());
        let lean = scorer.context(&e, &json!({}), now());
        assert!(lean.lookup("lead.events").is_none());
        assert!(full.lookup("lead.events").is_some());
        let (a, a_cards) = scorer.score_all(e.clone(), &full, now());
        let (b, b_cards) = scorer.score_all(e, &lean, now());
        assert!(a.factors.iter().any(|f| &*f.rule == "typed"));
        assert_eq!(
            serde_json::to_value(&a).unwrap(),
            serde_json::to_value(&b).unwrap()
        );
        assert_eq!(
            serde_json::to_value(&a_cards).unwrap(),
            serde_json::to_value(&b_cards).unwrap()
        );
    }

    #[test]
    fn a_rule_reading_the_event_list_keeps_it_in_the_context() {
        let rules = "[[rule]]\nid = \"busy\"\ndimension = \"engagement\"\nwhen = \"size(lead.events) >= 2\"\npoints = 5\n";
        let scorer = Scorer::from_file(&RuleFile::from_text("scoring.toml", rules)).unwrap();
        assert!(scorer.reads_event_list());
        let e = enriched(
            json!({"email": "a@acme.io", "events": [
                {"type": "page_view", "at": "2026-11-20T10:00:00Z"},
                {"type": "page_view", "at": "2026-11-21T10:00:00Z"}
            ]}),
            json!({}),
        );
        let ctx = scorer.context(&e, &json!({}), now());
        let s = scorer.score(e, &ctx, now());
        assert!(
            s.factors.iter().any(|f| &*f.rule == "busy"),
            "{:?}",
            s.factors
        );
    }

    #[test]
    fn factors_sort_by_weight_then_id_limits_included() {
        // 140 points: the limit takes 40 away, as much as `alpha` adds, and sorts after it
        // by id; `beta` and `nu` tie at 20 and sort by id; rule order in the file is ignored.
        let rules = r#"
[[rule]]
id = "nu"
dimension = "intent"
when = "true"
points = 20
[[rule]]
id = "zeta"
dimension = "fit"
when = "true"
points = 60
[[rule]]
id = "beta"
dimension = "intent"
when = "true"
points = 20
[[rule]]
id = "alpha"
dimension = "fit"
when = "true"
points = 40
"#;
        let scorer = Scorer::from_file(&RuleFile::from_text("scoring.toml", rules)).unwrap();
        let e = enriched(json!({"email": "a@acme.io"}), json!({}));
        let ctx = RuleContext::for_lead(&e, &json!({}), now());
        let s = scorer.score(e, &ctx, now());
        let order: Vec<(&str, f64)> = s.factors.iter().map(|f| (&*f.rule, f.points)).collect();
        assert_eq!(
            order,
            [
                ("zeta", 60.0),
                ("alpha", 40.0),
                ("max-100", -40.0),
                ("beta", 20.0),
                ("nu", 20.0)
            ]
        );
        assert_eq!(s.score, 100);
    }

    #[test]
    fn the_total_is_clamped_at_zero() {
        let e = enriched(json!({"email": "a@gmail.com"}), json!({}));
        let ctx = RuleContext::for_lead(&e, &json!({}), now());
        assert_eq!(scorer().score(e, &ctx, now()).score, 0);
    }

    #[test]
    fn cel_errors_at_load_time_name_the_rule_and_line() {
        let bad = RULES.replace("company.industry == 'Software'", "company.industry ==");
        let err = Scorer::from_file(&RuleFile::from_text("scoring.toml", &bad)).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("rule \"software\""), "{text}");
        assert!(text.contains("scoring.toml:19"), "{text}");
    }

    /// The same rules written in shapes only cel evaluates (arithmetic) score exactly as
    /// the natively evaluated ones: the lazily made CEL context, its shared events and the
    /// event scopes agree with the JSON the native evaluator reads.
    #[test]
    fn rules_cel_evaluates_score_as_the_native_ones_do() {
        let slow = RULES
            .replace("company.employees >= 1000", "company.employees + 0 >= 1000")
            .replace(
                "event.path.startsWith('/pricing')",
                "(event.path + '').startsWith('/pricing') && size(events) + 0 > 0 && size(lead.events) > 0",
            );
        let slow = Scorer::from_file(&RuleFile::from_text("scoring.toml", &slow)).unwrap();
        assert!(
            !slow.rules[0].when.is_native() && !slow.events[0].when.as_ref().unwrap().is_native()
        );
        let e = enriched(
            json!({"email": "a@acme.io", "events": [
                {"type": "page_view", "at": "2026-11-09T00:00:00Z", "path": "/pricing"},
                {"type": "page_view", "at": "2026-11-23T00:00:00Z", "path": "/blog"}
            ]}),
            json!({"employees": 5000, "industry": "Software"}),
        );
        let fast_ctx = RuleContext::for_lead(&e, &json!({}), now());
        let slow_ctx = RuleContext::for_lead(&e, &json!({}), now());
        let fast = scorer().score(e.clone(), &fast_ctx, now());
        let slow = slow.score(e, &slow_ctx, now());
        assert_eq!(
            fast.score, slow.score,
            "{:?}\n{:?}",
            fast.factors, slow.factors
        );
        assert_eq!(fast.factors, slow.factors);
        // 40 firmographic (capped) + 5 from a pricing view one half-life ago.
        assert_eq!(fast.score, 45);
    }
}

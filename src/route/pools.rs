//! Owner pools: members, their calendars (time zone, working hours, working days, dates
//! off), and the pure choice of the next member under each strategy.
//!
//! [`choose`] is the one place the strategies live. It does no I/O: an [`super::Assignments`]
//! implementation reads the pool's position, today's counts and the paused members, calls it,
//! and records the pick — atomically, so concurrent workers never share a slot.

use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, Utc, Weekday};
use chrono_tz::Tz;

use super::config::{MemberConfig, PoolConfig, Strategy};
use crate::lead::SkipKind;

/// Weekdays are the working days when a calendar has hours but no `days`.
const WEEKDAYS: [bool; 7] = [true, true, true, true, true, false, false];

/// Longest weighted cycle built: beyond it weights are scaled down, which keeps the ratio
/// while bounding memory for a pool written with weights like 1000.
const MAX_CYCLE: u32 = 10_000;

/// When a member works, in their own time zone.
#[derive(Debug, Clone, PartialEq)]
pub struct Calendar {
    pub tz: Tz,
    /// Start and end of the working day; an end before the start spans midnight.
    pub hours: Option<(NaiveTime, NaiveTime)>,
    /// Monday first.
    pub days: Option<[bool; 7]>,
    /// Inclusive date ranges off.
    pub dates_off: Vec<(NaiveDate, NaiveDate)>,
}

impl Default for Calendar {
    fn default() -> Self {
        Self {
            tz: Tz::UTC,
            hours: None,
            days: None,
            dates_off: Vec::new(),
        }
    }
}

impl Calendar {
    /// The member's local date at `now`: the day their capacity counts against.
    pub fn local_day(&self, now: DateTime<Utc>) -> NaiveDate {
        now.with_timezone(&self.tz).date_naive()
    }

    /// Whether the member is at work at `now`; if not, why.
    pub fn check(&self, now: DateTime<Utc>) -> Result<(), (SkipKind, String)> {
        let local = now.with_timezone(&self.tz);
        let date = local.date_naive();
        if self
            .dates_off
            .iter()
            .any(|(from, to)| *from <= date && date <= *to)
        {
            return Err((SkipKind::OffToday, format!("off today ({date})")));
        }
        let days = self.days.or(self.hours.map(|_| WEEKDAYS));
        if let Some(days) = days {
            if !days[local.weekday().num_days_from_monday() as usize] {
                return Err((
                    SkipKind::OffToday,
                    format!("not a working day ({} in {})", local.format("%A"), self.tz),
                ));
            }
        }
        if let Some((start, end)) = self.hours {
            let t = local.time();
            let inside = if start <= end {
                start <= t && t < end
            } else {
                t >= start || t < end
            };
            if !inside {
                return Err((
                    SkipKind::OutsideHours,
                    format!(
                        "outside working hours ({} in {}; works {}–{})",
                        t.format("%H:%M"),
                        self.tz,
                        start.format("%H:%M"),
                        end.format("%H:%M")
                    ),
                ));
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone)]
pub struct Member {
    pub owner: String,
    pub name: Option<String>,
    pub weight: u32,
    pub capacity: Option<u32>,
    pub available: bool,
    pub paused: bool,
    pub calendar: Calendar,
}

impl Member {
    /// `Ada (41629779)`, or the owner id alone.
    pub fn label(&self) -> String {
        match &self.name {
            Some(n) => format!("{n} ({})", self.owner),
            None => self.owner.clone(),
        }
    }

    /// Why this member cannot take a lead at `now` by its configuration alone (capacity and
    /// run-time pauses are the assignments' to judge).
    pub fn blocked(&self, now: DateTime<Utc>, calendar: bool) -> Option<(SkipKind, String)> {
        if self.paused {
            return Some((SkipKind::Paused, "paused".into()));
        }
        if !self.available {
            return Some((SkipKind::Unavailable, "unavailable (out of office)".into()));
        }
        if calendar {
            return self.calendar.check(now).err();
        }
        None
    }
}

#[derive(Debug, Clone)]
pub struct Pool {
    pub id: String,
    pub strategy: Strategy,
    pub members: Vec<Member>,
    /// The order turns are taken in: member indexes, each `weight` times in a `weighted`
    /// pool (spread out, not bunched), once otherwise.
    pub cycle: Vec<usize>,
}

impl Pool {
    /// The strategy as written in `routing.toml`.
    pub fn strategy_name(&self) -> &'static str {
        match self.strategy {
            Strategy::RoundRobin => "round_robin",
            Strategy::Weighted => "weighted",
            Strategy::LoadBalanced => "load_balanced",
        }
    }

    pub fn member(&self, owner: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.owner == owner)
    }
}

/// One member as the assignments see it for one lead.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub owner: String,
    /// The member's local date (`2026-11-23`): the day their count belongs to.
    pub day: String,
    /// `None`: no cap (or a simulation that ignores caps).
    pub capacity: Option<u32>,
    /// Set when the member cannot take leads now, whatever the counts say.
    pub blocked: Option<(SkipKind, String)>,
}

/// What an [`super::Assignments`] implementation is asked to do for one lead.
#[derive(Debug, Clone, PartialEq)]
pub struct AssignRequest {
    pub pool: String,
    pub strategy: Strategy,
    pub cycle: Vec<usize>,
    /// Aligned with the pool's members.
    pub members: Vec<Candidate>,
}

/// The outcome of [`choose`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Choice {
    /// Index of the chosen member.
    pub chosen: Option<usize>,
    /// The pool's next position, to store when a member was chosen.
    pub position: u64,
    /// The chosen member's count for their day, this lead included.
    pub assigned_today: u32,
    /// Members passed over, with why: (member index, kind, reason).
    pub skipped: Vec<(usize, SkipKind, String)>,
}

/// Picks the member for the next lead. `position` is the pool's stored position, `counts`
/// each member's assignments on their day, `paused` the members paused at run time.
///
/// Round robin and weighted walk the cycle from the position and take the first member who
/// can take the lead; the position moves just past them, so a skipped member keeps their
/// place. Load balanced takes the member with the fewest assignments today, ties broken in
/// cycle order from the position (so ties rotate too).
pub fn choose(req: &AssignRequest, position: u64, counts: &[u32], paused: &[bool]) -> Choice {
    let mut choice = Choice {
        position,
        ..Choice::default()
    };
    let count = |i: usize| counts.get(i).copied().unwrap_or(0);
    let mut eligible = vec![false; req.members.len()];
    for (i, m) in req.members.iter().enumerate() {
        if let Some((kind, why)) = &m.blocked {
            choice.skipped.push((i, *kind, why.clone()));
        } else if paused.get(i).copied().unwrap_or(false) {
            choice.skipped.push((i, SkipKind::Paused, "paused".into()));
        } else if m.capacity.is_some_and(|cap| count(i) >= cap) {
            let cap = m.capacity.unwrap_or_default();
            choice.skipped.push((
                i,
                SkipKind::AtCapacity,
                format!("at capacity ({} of {cap} today)", count(i)),
            ));
        } else {
            eligible[i] = true;
        }
    }
    let n = req.cycle.len();
    if n == 0 {
        return choice;
    }
    let start = (position % n as u64) as usize;
    let mut best: Option<(usize, usize)> = None; // (offset in cycle, member)
    for k in 0..n {
        let i = req.cycle[(start + k) % n];
        if !eligible.get(i).copied().unwrap_or(false) {
            continue;
        }
        match req.strategy {
            Strategy::RoundRobin | Strategy::Weighted => {
                best = Some((k, i));
                break;
            }
            Strategy::LoadBalanced => {
                if best.is_none_or(|(_, b)| count(i) < count(b)) {
                    best = Some((k, i));
                }
            }
        }
    }
    if let Some((k, i)) = best {
        choice.chosen = Some(i);
        choice.position = ((start + k + 1) % n) as u64;
        choice.assigned_today = count(i) + 1;
    }
    choice
}

/// The turn order of a pool: smooth weighted round robin (each member `weight` turns per
/// cycle, interleaved: weights 2,1 give A B A, not A A B), or each member once.
pub fn cycle(strategy: Strategy, weights: &[u32]) -> Vec<usize> {
    if strategy != Strategy::Weighted {
        return (0..weights.len()).collect();
    }
    let total: u32 = weights.iter().map(|w| (*w).max(1)).sum();
    let scale = total.div_ceil(MAX_CYCLE).max(1);
    let weights: Vec<i64> = weights
        .iter()
        .map(|w| i64::from(((*w).max(1) / scale).max(1)))
        .collect();
    let total: i64 = weights.iter().sum();
    let mut current = vec![0i64; weights.len()];
    let mut out = Vec::with_capacity(total as usize);
    for _ in 0..total {
        for (c, w) in current.iter_mut().zip(&weights) {
            *c += w;
        }
        let Some((best, _)) = current
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(&a.0)))
        else {
            break;
        };
        current[best] -= total;
        out.push(best);
    }
    out
}

/// Builds a live pool, collecting every problem as `(key, reason)`.
pub fn build_pool(p: &PoolConfig, issues: &mut Vec<(String, String)>) -> Pool {
    let id = p.id.get_ref().clone();
    let mut seen = std::collections::HashSet::new();
    let mut members = Vec::new();
    for (i, m) in p.members.iter().enumerate() {
        let key = format!("pool \"{id}\" members[{i}] (owner {})", m.owner);
        if !seen.insert(m.owner.clone()) {
            issues.push((
                key.clone(),
                "duplicate member: each owner appears once per pool".into(),
            ));
        }
        if m.owner.trim().is_empty() {
            issues.push((key.clone(), "owner is empty".into()));
        }
        if m.weight == 0 {
            issues.push((
                key.clone(),
                "weight must be at least 1 (set available = false to take a member out)".into(),
            ));
        }
        if m.capacity_per_day == Some(0) {
            issues.push((key.clone(), "capacity_per_day = 0 takes no leads; set available = false or paused = true instead".into()));
        }
        members.push(Member {
            owner: m.owner.clone(),
            name: m.name.clone(),
            weight: m.weight.max(1),
            capacity: m.capacity_per_day,
            available: m.available,
            paused: m.paused,
            calendar: build_calendar(p, m, &key, issues),
        });
    }
    let weights: Vec<u32> = members.iter().map(|m| m.weight).collect();
    Pool {
        cycle: cycle(p.strategy, &weights),
        id,
        strategy: p.strategy,
        members,
    }
}

fn build_calendar(
    p: &PoolConfig,
    m: &MemberConfig,
    key: &str,
    issues: &mut Vec<(String, String)>,
) -> Calendar {
    let mut cal = Calendar::default();
    if let Some(tz) = m.timezone.as_ref().or(p.timezone.as_ref()) {
        match tz.parse::<Tz>() {
            Ok(t) => cal.tz = t,
            Err(_) => issues.push((
                format!("{key} timezone"),
                format!("`{tz}` is not an IANA time zone (like America/New_York or Europe/Berlin)"),
            )),
        }
    }
    if let Some(h) = m.hours.as_ref().or(p.hours.as_ref()) {
        match parse_hours(h) {
            Ok(hours) => cal.hours = Some(hours),
            Err(e) => issues.push((format!("{key} hours"), e)),
        }
    }
    if let Some(days) = m.days.as_ref().or(p.days.as_ref()) {
        match parse_days(days) {
            Ok(d) => cal.days = Some(d),
            Err(e) => issues.push((format!("{key} days"), e)),
        }
    }
    for d in p.dates_off.iter().chain(&m.dates_off) {
        match parse_date_range(d) {
            Ok(r) => cal.dates_off.push(r),
            Err(e) => issues.push((format!("{key} dates_off"), e)),
        }
    }
    cal
}

/// `"09:00-17:30"` (an en dash works too).
pub fn parse_hours(s: &str) -> Result<(NaiveTime, NaiveTime), String> {
    let bad = || format!("`{s}` is not working hours like \"09:00-17:30\"");
    let (a, b) = s.split_once(['-', '–']).ok_or_else(bad)?;
    let t = |x: &str| NaiveTime::parse_from_str(x.trim(), "%H:%M").map_err(|_| bad());
    let (start, end) = (t(a)?, t(b)?);
    if start == end {
        return Err(format!("`{s}`: start and end are the same"));
    }
    Ok((start, end))
}

/// `["mon", "tue", ...]` or ranges `["mon-fri"]`.
pub fn parse_days(days: &[String]) -> Result<[bool; 7], String> {
    let day = |x: &str| -> Result<usize, String> {
        x.trim()
            .parse::<Weekday>()
            .map(|w| w.num_days_from_monday() as usize)
            .map_err(|_| format!("`{x}` is not a day (mon, tue, wed, thu, fri, sat, sun)"))
    };
    let mut out = [false; 7];
    for d in days {
        match d.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (day(a)?, day(b)?);
                let mut i = a;
                loop {
                    out[i] = true;
                    if i == b {
                        break;
                    }
                    i = (i + 1) % 7;
                }
            }
            None => out[day(d)?] = true,
        }
    }
    Ok(out)
}

/// `"2026-12-25"` or `"2026-12-24..2026-12-31"` (inclusive).
pub fn parse_date_range(s: &str) -> Result<(NaiveDate, NaiveDate), String> {
    let d = |x: &str| {
        NaiveDate::parse_from_str(x.trim(), "%Y-%m-%d")
            .map_err(|_| format!("`{x}` is not a date like 2026-12-25"))
    };
    let (from, to) = match s.split_once("..") {
        Some((a, b)) => (d(a)?, d(b)?),
        None => (d(s)?, d(s)?),
    };
    if to < from {
        return Err(format!("`{s}`: the range ends before it starts"));
    }
    Ok((from, to))
}

//! The per-lead evaluation context: built once per lead, shared by every rule.
//!
//! Values go straight from JSON to CEL's own representation (`Box<dyn Val>`), once. What
//! several variables or several leads share — each event (in `events`, `lead.events` and as
//! `event`), a scorer's `lists` — is bound as a [`SharedVal`], so binding it again copies a
//! pointer, not the value.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use cel::common::traits::{
    Adder, Comparer, Container, Divider, Indexer, Iterable, Modder, Multiplier, Negator, Sizer,
    Subtractor, Zeroer,
};
use cel::common::types::{
    CelBool, CelDouble, CelInt, CelList, CelMap, CelMapKey, CelNull, CelString, CelTimestamp, Type,
};
use cel::common::value::{Builtin, BuiltinRef, Val};
use cel::objects::{Key, Map as CelObjectMap};
use cel::{Context, Value};
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value as Json};

use crate::lead::{EnrichedLead, Lead};

/// One lead's variables (`lead`, `company`, `person`, `email`, `events`, `account`, `now`),
/// as JSON, and as CEL values made once, on first use: rules the native evaluator answers
/// never need them.
pub struct RuleContext {
    /// Every variable as JSON: to quote matched values in explanations, and for the native
    /// evaluator.
    json: Roots,
    /// Shared variables (`lists`) as JSON, for the native evaluator.
    shared: HashMap<String, Arc<Json>>,
    /// How the CEL context is made, in the order the variables were set.
    ops: Vec<Op>,
    /// Built from the lead: `lead.events`, `events` and each event rule's `event` share
    /// one CEL value per event.
    lead_events: bool,
    cel: OnceLock<Cel>,
}

/// The CEL side of a context, made on first use.
struct Cel {
    ctx: Context<'static, 'static>,
    /// Each of the lead's events as CEL, in order, for event rules' `event`.
    events: Vec<SharedVal>,
}

/// Adds a function to a CEL context; kept to make the context again when it is needed.
type AddFunction = Arc<dyn Fn(&mut Context<'static, 'static>) + Send + Sync>;

/// One step in making the CEL context.
enum Op {
    /// The variable's JSON (in `json`) converted. A root's name is the static one in
    /// `native::ROOTS`: a lead's context sets a dozen, and each name was two allocations.
    Json(Cow<'static, str>),
    /// `events`: the lead's shared event list.
    LeadEvents,
    Shared(String, SharedVal),
    Value(String, Value),
    Now(DateTime<Utc>),
    Function(AddFunction),
}

impl RuleContext {
    pub fn empty() -> Self {
        Self {
            json: Roots::default(),
            shared: HashMap::new(),
            ops: Vec::new(),
            lead_events: false,
            cel: OnceLock::new(),
        }
    }

    /// The context for an enriched lead, with `account` the matched CRM account (or empty).
    pub fn for_lead(enriched: &EnrichedLead, account: &Json, now: DateTime<Utc>) -> Self {
        Self::for_lead_reading(enriched, account, now, true)
    }

    /// As [`RuleContext::for_lead`]; with `event_list` false, for rules known not to read
    /// the list of events (`lead.events`, `events`; see `Condition::reads_event_list`), the
    /// list is left out: each event's JSON was most of the context of a long history, and
    /// event rules read the lead's `Event`s themselves. `activity.*` is there either way.
    pub fn for_lead_reading(
        enriched: &EnrichedLead,
        account: &Json,
        now: DateTime<Utc>,
        event_list: bool,
    ) -> Self {
        let mut c = Self::empty();
        let lead = &enriched.lead;
        c.lead_events = event_list && !lead.events.is_empty();
        c.set_json("lead", lead_json(lead, event_list));
        let (company, person) = enriched_objects(enriched);
        c.set_json("company", company);
        c.set_json("person", person);
        c.set_json("email", email_json(lead));
        if c.lead_events {
            c.push(Op::LeadEvents);
        } else if event_list || lead.events.is_empty() {
            c.set_json("events", json!([]));
        }
        c.set("account", account);
        c.set_json("activity", activity_json(&lead.events, now));
        c.push(Op::Now(now));
        c
    }

    pub fn set(&mut self, name: &str, value: &Json) {
        self.set_json(name, value.clone());
    }

    /// As [`RuleContext::set`], taking the JSON.
    pub fn set_json(&mut self, name: &str, value: Json) {
        let name: Cow<'static, str> = match super::native::root_slot(name) {
            Some(slot) => Cow::Borrowed(super::native::ROOTS[slot]),
            None => Cow::Owned(name.to_string()),
        };
        self.json.insert(&name, value);
        self.push(Op::Json(name));
    }

    pub fn set_value(&mut self, name: &str, value: Value) {
        self.push(Op::Value(name.to_string(), value));
    }

    /// Binds a shared value (a scorer's `lists`) without copying it.
    pub fn set_shared(&mut self, name: &str, value: &SharedVal) {
        match &value.1 {
            Some(json) => self.shared.insert(name.to_string(), json.clone()),
            None => self.shared.remove(name),
        };
        self.push(Op::Shared(name.to_string(), value.clone()));
    }

    /// Records a step, and applies it at once when the CEL context already exists.
    fn push(&mut self, op: Op) {
        if let Some(cel) = self.cel.get_mut() {
            apply(&mut cel.ctx, &op, &self.json, &cel.events);
        }
        self.ops.push(op);
    }

    /// How many events the lead this context was built for has (0 for other contexts).
    pub fn event_count(&self) -> usize {
        match self.lead_events {
            true => self.lead_events().map_or(0, <[Json]>::len),
            false => 0,
        }
    }

    /// The lead's events as the context holds them (see [`RuleContext::bind_event`]).
    pub fn lead_events(&self) -> Option<&[Json]> {
        self.json
            .get("lead")?
            .get("events")?
            .as_array()
            .map(Vec::as_slice)
    }

    /// Adds a function rules can call for this lead only (routing's `in_territory`). A name
    /// the CEL standard library already uses is refused, and the call is ignored.
    pub fn add_function<T: 'static, F>(&mut self, name: &str, f: F)
    where
        F: cel::extractors::IntoFunction<T> + Clone + 'static + Send + Sync,
    {
        let name = name.to_string();
        self.push(Op::Function(Arc::new(move |ctx| {
            if let Err(e) = ctx.add_function(&name, f.clone()) {
                tracing::warn!(function = %name, error = ?e, "cannot add a rule function");
            }
        })));
    }

    fn cel_side(&self) -> &Cel {
        self.cel.get_or_init(|| {
            let mut ctx = Context::with_env(super::ENV.clone());
            let events: Vec<SharedVal> = match self.lead_events {
                true => self
                    .lead_events()
                    .unwrap_or_default()
                    .iter()
                    .map(|e| SharedVal::new(json_to_val(e)))
                    .collect(),
                false => Vec::new(),
            };
            for op in &self.ops {
                apply(&mut ctx, op, &self.json, &events);
            }
            Cel { ctx, events }
        })
    }

    pub(crate) fn cel(&self) -> &Context<'static, 'static> {
        &self.cel_side().ctx
    }

    /// Reads a dotted field (`company.employees`) back out as JSON, for explanations.
    pub fn lookup(&self, dotted: &str) -> Option<&Json> {
        let (root, field) = dotted.split_once('.')?;
        self.json.get(root)?.get(field)
    }

    /// Reads a field parsed ahead (see [`FieldPath`]): as [`RuleContext::lookup`] does.
    pub fn read(&self, path: &FieldPath) -> Option<&Json> {
        match path.slot {
            Some(slot) => self.json.slot(slot)?.get(&path.field),
            None => self.lookup(&path.dotted),
        }
    }

    /// A scope over this context with one more variable bound (`event` while scoring each
    /// event), to evaluate several conditions against the same binding.
    pub fn bind<'a>(&'a self, name: &'a str, value: Box<dyn Val>) -> Bound<'a> {
        Bound {
            ctx: self,
            name,
            slot: super::native::root_slot(name),
            value: BoundValue::Val(value),
            json: None,
            cel: OnceCell::new(),
        }
    }

    /// As [`RuleContext::bind`], with the value's JSON too, so that rules the native
    /// evaluator handles never build the CEL scope.
    pub fn bind_json<'a>(
        &'a self,
        name: &'a str,
        value: Box<dyn Val>,
        json: &'a Json,
    ) -> Bound<'a> {
        Bound {
            json: Some(json),
            ..self.bind(name, value)
        }
    }

    /// Binds event `i` of the lead this context was built for as `event`, sharing its CEL
    /// value (made only if a rule needs cel). `events` is [`RuleContext::lead_events`],
    /// looked up once for all of a lead's events.
    pub fn bind_event<'a>(&'a self, events: &'a [Json], i: usize) -> Option<Bound<'a>> {
        let json = events.get(i)?;
        Some(Bound {
            ctx: self,
            name: "event",
            slot: super::native::root_slot("event"),
            value: BoundValue::Event(i),
            json: Some(json),
            cel: OnceCell::new(),
        })
    }
}

impl RuleContext {
    /// Binds `json`, one event as [`event_json`] writes it, as `event`: its CEL value is
    /// made from the JSON only if a rule needs cel.
    pub fn bind_event_json<'a>(&'a self, json: &'a Json) -> Bound<'a> {
        Bound {
            ctx: self,
            name: "event",
            slot: super::native::root_slot("event"),
            value: BoundValue::Json,
            json: Some(json),
            cel: OnceCell::new(),
        }
    }
}

/// Whether `condition` may read the lead's list of events: it names `events`, selects
/// `lead.events`, or uses `lead` other than through a field select (passed whole, indexed).
/// When no rule a context serves does, it can leave the list out
/// ([`RuleContext::for_lead_reading`]). Errs towards yes: a comprehension variable named
/// `events` counts too.
pub fn reads_event_list(condition: &super::Condition) -> bool {
    use cel::common::ast::Expr;
    let (mut leads, mut fields, mut events) = (0usize, 0usize, false);
    super::check::visit(condition.expression(), &mut |e| match &e.expr {
        Expr::Ident(name) if name == "events" => events = true,
        Expr::Ident(name) if name == "lead" => leads += 1,
        Expr::Select(sel)
            if matches!(&sel.operand.expr, Expr::Ident(n) if n == "lead")
                && sel.field != "events" =>
        {
            fields += 1
        }
        _ => {}
    });
    events || leads != fields
}

/// A dotted field (`company.employees`) split once, so that reading it for each lead is an
/// index and one lookup rather than a parse and a scan of the variables by name (factors
/// quote the fields their rule read, for every lead).
#[derive(Debug, PartialEq)]
pub struct FieldPath {
    dotted: Arc<str>,
    /// The root variable's slot among the native evaluator's roots, if it has one.
    slot: Option<usize>,
    field: String,
}

impl FieldPath {
    pub fn new(dotted: &str) -> Self {
        let (root, field) = dotted.split_once('.').unwrap_or((dotted, ""));
        Self {
            dotted: Arc::from(dotted),
            slot: super::native::root_slot(root),
            field: field.to_string(),
        }
    }

    /// The field as written, shared.
    pub fn name(&self) -> &Arc<str> {
        &self.dotted
    }
}

/// Applies one step to a CEL context.
fn apply(ctx: &mut Context<'static, 'static>, op: &Op, json: &Roots, events: &[SharedVal]) {
    let shared_list = || {
        CelList::from(
            events
                .iter()
                .map(|e| Box::new(e.clone()) as Box<dyn Val>)
                .collect::<Vec<_>>(),
        )
    };
    match op {
        Op::Json(name) => {
            let Some(value) = json.get(name) else { return };
            let val = match value {
                // The lead's own events are the shared ones.
                Json::Object(o) if name == "lead" && !events.is_empty() => {
                    let map: HashMap<CelMapKey<'static>, Box<dyn Val>> = o
                        .iter()
                        .map(|(k, v)| {
                            let val: Box<dyn Val> = match k.as_str() {
                                "events" => Box::new(SharedVal::new(Box::new(shared_list()))),
                                _ => json_to_val(v),
                            };
                            (CelMapKey::from(k.clone()), val)
                        })
                        .collect();
                    Box::new(CelMap::from(map)) as Box<dyn Val>
                }
                other => json_to_val(other),
            };
            ctx.add_variable_as_val(name.as_ref(), val);
        }
        Op::LeadEvents => ctx.add_variable_as_val("events", Box::new(shared_list())),
        Op::Shared(name, value) => ctx.add_variable_as_val(name, Box::new(value.clone())),
        Op::Value(name, value) => ctx.add_variable_from_value(name, value.clone()),
        Op::Now(now) => {
            ctx.add_variable_as_val("now", Box::new(CelTimestamp::from(now.fixed_offset())))
        }
        Op::Function(add) => add(ctx),
    }
}

impl super::native::Vars for RuleContext {
    fn var(&self, name: &str) -> Option<&Json> {
        match self.json.get(name) {
            Some(v) => Some(v),
            // `events` shares the lead's own list (see `for_lead`).
            None if name == "events" => self.json.get("lead")?.get("events"),
            None => self.shared.get(name).map(|v| v.as_ref()),
        }
    }

    fn root(&self, slot: usize) -> Option<&Json> {
        match self.json.slot(slot) {
            Some(v) => Some(v),
            None => self.var(super::native::ROOTS[slot]),
        }
    }
}

/// Frequency, recency and velocity of a lead's events, as `activity.*`:
/// `count` (all events), `count_7d` / `count_30d` / `count_90d` (events in the last 7, 30,
/// 90 days), `days_since_last` / `days_since_first` (absent without events), `velocity`
/// (events in the last 14 days minus the 14 days before: > 0 means speeding up) and
/// `types` (how many distinct event types). Future-dated events (clock skew) count as now.
pub fn activity_json(events: &[crate::lead::Event], now: DateTime<Utc>) -> Json {
    const DAY_MS: f64 = 86_400_000.0;
    let ages: Vec<f64> = events
        .iter()
        .map(|e| ((now - e.at).num_milliseconds().max(0) as f64) / DAY_MS)
        .collect();
    let within = |days: f64| ages.iter().filter(|a| **a < days).count() as i64;
    let recent = within(14.0);
    let before = within(28.0) - recent;
    let mut m = Map::new();
    m.insert("count".into(), json!(events.len()));
    m.insert("count_7d".into(), json!(within(7.0)));
    m.insert("count_30d".into(), json!(within(30.0)));
    m.insert("count_90d".into(), json!(within(90.0)));
    m.insert("velocity".into(), json!(recent - before));
    m.insert("types".into(), json!(distinct_types(events)));
    if let Some(last) = ages.iter().copied().reduce(f64::min) {
        m.insert(
            "days_since_last".into(),
            json!((last * 100.0).round() / 100.0),
        );
    }
    if let Some(first) = ages.iter().copied().reduce(f64::max) {
        m.insert(
            "days_since_first".into(),
            json!((first * 100.0).round() / 100.0),
        );
    }
    Json::Object(m)
}

/// How many distinct event types `events` hold. A history is a few types repeated: checking
/// each event against the types seen so far is cheaper than sorting a thousand names, and a
/// history of many types falls back to the sort so that it stays n log n.
fn distinct_types(events: &[crate::lead::Event]) -> usize {
    const FEW: usize = 32;
    let mut types: Vec<&str> = Vec::new();
    for e in events {
        let kind = e.kind.as_str();
        if types.last() != Some(&kind) && !types.contains(&kind) {
            if types.len() == FEW {
                let mut all: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
                all.sort_unstable();
                all.dedup();
                return all.len();
            }
            types.push(kind);
        }
    }
    types.len()
}

/// The lead as rules see it: its serialized form without `email_info` (rules read that as
/// `email`). Built field by field: going through `Serialize` copied every event's values
/// through the serializer, and with 20 events that was a quarter of scoring a lead. The
/// test `lead_json_is_the_serialized_lead` keeps the two forms equal.
fn lead_json(lead: &Lead, events: bool) -> Json {
    let mut m = Map::new();
    let text = [
        ("email", &lead.email),
        ("first_name", &lead.first_name),
        ("last_name", &lead.last_name),
        ("title", &lead.title),
        ("company", &lead.company),
        ("domain", &lead.domain),
        ("website", &lead.website),
        ("phone", &lead.phone),
        ("country", &lead.country),
        ("source", &lead.source),
        ("external_id", &lead.external_id),
        ("crm", &lead.crm),
    ];
    for (name, value) in text {
        if let Some(v) = value {
            m.insert(name.into(), Json::String(v.clone()));
        }
    }
    m.insert("attributes".into(), Json::Object(lead.attributes.clone()));
    if events && !lead.events.is_empty() {
        m.insert(
            "events".into(),
            Json::Array(lead.events.iter().map(event_json).collect()),
        );
    }
    Json::Object(m)
}

/// One event as `Event`'s `Serialize` writes it: its properties, then `type` and `at`.
pub fn event_json(e: &crate::lead::Event) -> Json {
    let mut m = Map::new();
    for (k, v) in &e.props {
        if k != "type" && k != "at" {
            m.insert(k.clone(), v.clone());
        }
    }
    m.insert("type".into(), Json::String(e.kind.clone()));
    m.insert("at".into(), Json::String(crate::lead::rfc3339(&e.at, true)));
    Json::Object(m)
}

fn email_json(lead: &Lead) -> Json {
    let mut m = Map::new();
    if let Some(e) = &lead.email {
        m.insert("address".into(), json!(e));
        if let Some((local, _)) = e.split_once('@') {
            m.insert("local_part".into(), json!(local));
        }
    }
    if let Some(d) = &lead.email_info.domain {
        m.insert("domain".into(), json!(d));
    }
    m.insert("is_free".into(), json!(lead.email_info.is_free));
    m.insert("is_disposable".into(), json!(lead.email_info.is_disposable));
    Json::Object(m)
}

/// `company` and `person` objects from the enriched fields. `person.title` falls back to
/// the title the lead gave, so title rules work before any person enrichment.
fn enriched_objects(enriched: &EnrichedLead) -> (Json, Json) {
    let mut company = Map::new();
    let mut person = Map::new();
    for (name, p) in &enriched.enrichment.fields {
        if let Some(f) = name.strip_prefix("company.") {
            company.insert(f.into(), p.value.clone());
        } else if let Some(f) = name.strip_prefix("person.") {
            person.insert(f.into(), p.value.clone());
        }
    }
    if let Some(t) = &enriched.lead.title {
        person.entry("title").or_insert_with(|| json!(t));
    }
    (Json::Object(company), Json::Object(person))
}

/// JSON → CEL: integers stay integers (so `employees >= 1000` compares ints), RFC 3339
/// strings stay strings (rules call `timestamp()` when they need one).
pub fn json_to_cel(v: &Json) -> Value {
    match v {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Json::String(s) => Value::String(Arc::new(s.clone())),
        Json::Array(a) => Value::List(Arc::new(a.iter().map(json_to_cel).collect())),
        Json::Object(o) => {
            let map: HashMap<Key, Value> = o
                .iter()
                .map(|(k, v)| (Key::from(k.as_str()), json_to_cel(v)))
                .collect();
            Value::Map(CelObjectMap { map: Arc::new(map) })
        }
    }
}

/// A context's variables: those rules read most in fixed slots (`native::ROOTS`), found by
/// index; any other by a scan. (Hashing the names with SipHash showed in scoring's profile.)
#[derive(Default)]
struct Roots {
    known: [Option<Json>; super::native::ROOTS.len()],
    other: Vec<(String, Json)>,
}

impl Roots {
    fn get(&self, name: &str) -> Option<&Json> {
        match super::native::root_slot(name) {
            Some(slot) => self.known[slot].as_ref(),
            None => self.other.iter().find(|(n, _)| n == name).map(|(_, v)| v),
        }
    }

    fn slot(&self, slot: usize) -> Option<&Json> {
        self.known[slot].as_ref()
    }

    fn insert(&mut self, name: &str, value: Json) {
        if let Some(slot) = super::native::root_slot(name) {
            self.known[slot] = Some(value);
            return;
        }
        match self.other.iter_mut().find(|(n, _)| n == name) {
            Some(entry) => entry.1 = value,
            None => self.other.push((name.to_string(), value)),
        }
    }
}

/// A lead's context with one more variable bound: see [`RuleContext::bind`]. The CEL scope
/// is made on first use: a rule the native evaluator answers does not need it.
pub struct Bound<'a> {
    ctx: &'a RuleContext,
    name: &'a str,
    /// `name`'s slot among the roots: the native evaluator asks by slot.
    slot: Option<usize>,
    value: BoundValue,
    json: Option<&'a Json>,
    cel: OnceCell<Context<'a, 'static>>,
}

enum BoundValue {
    Val(Box<dyn Val>),
    /// The lead's event at this index, shared with `events`.
    Event(usize),
    /// The bound JSON, converted when cel needs it.
    Json,
}

impl<'a> Bound<'a> {
    pub(super) fn cel(&self) -> &Context<'a, 'static> {
        self.cel.get_or_init(|| {
            let side = self.ctx.cel_side();
            let mut inner = side.ctx.new_inner_scope();
            let value = match &self.value {
                BoundValue::Val(v) => v.clone_as_boxed(),
                BoundValue::Event(i) => match side.events.get(*i) {
                    Some(e) => Box::new(e.clone()) as Box<dyn Val>,
                    None => Box::new(CelNull),
                },
                BoundValue::Json => match self.json {
                    Some(j) => json_to_val(j),
                    None => Box::new(CelNull),
                },
            };
            inner.add_variable_as_val(self.name, value);
            inner
        })
    }
}

impl super::native::Vars for Bound<'_> {
    fn var(&self, name: &str) -> Option<&Json> {
        if name == self.name {
            // Without the value's JSON the native evaluator steps aside for cel.
            return self.json;
        }
        self.ctx.var(name)
    }

    fn root(&self, slot: usize) -> Option<&Json> {
        if self.slot == Some(slot) {
            return self.json;
        }
        self.ctx.root(slot)
    }
}

/// A CEL value behind a reference count: cloning it, as binding it does, copies a pointer.
/// It answers every question as the value it holds does, so rules cannot tell the two apart.
/// One made from JSON keeps the JSON too, for the native evaluator.
#[derive(Debug, Clone)]
pub struct SharedVal(Arc<dyn Val>, Option<Arc<Json>>);

impl SharedVal {
    pub fn new(value: Box<dyn Val>) -> Self {
        Self(Arc::from(value), None)
    }

    /// The CEL value of a JSON value, shared.
    pub fn from_json(value: &Json) -> Self {
        Self(Arc::from(json_to_val(value)), Some(Arc::new(value.clone())))
    }
}

/// The type `cel_type()` reports; only overload macros call it, and no overload takes a
/// `SharedVal` by its Rust type.
static SHARED_TYPE: Type = cel::common::types::DYN_TYPE;

impl Val for SharedVal {
    fn get_type(&self) -> &Type {
        self.0.get_type()
    }

    fn cel_type() -> &'static Type
    where
        Self: Sized,
    {
        &SHARED_TYPE
    }

    fn as_adder<'b, 'v>(&'b self) -> Option<&'b (dyn Adder + 'v)>
    where
        Self: 'v,
    {
        self.0.as_adder()
    }

    fn as_comparer(&self) -> Option<&dyn Comparer> {
        self.0.as_comparer()
    }

    fn as_container(&self) -> Option<&dyn Container> {
        self.0.as_container()
    }

    fn as_divider<'b, 'v>(&'b self) -> Option<&'b (dyn Divider + 'v)>
    where
        Self: 'v,
    {
        self.0.as_divider()
    }

    fn as_indexer<'b, 'v>(&'b self) -> Option<&'b (dyn Indexer + 'v)>
    where
        Self: 'v,
    {
        self.0.as_indexer()
    }

    fn into_indexer<'v>(self: Box<Self>) -> Option<Box<dyn Indexer + 'v>>
    where
        Self: 'v,
    {
        self.0.clone_as_boxed().into_indexer()
    }

    fn as_iterable<'b, 'v>(&'b self) -> Option<&'b (dyn Iterable + 'v)>
    where
        Self: 'v,
    {
        self.0.as_iterable()
    }

    fn as_modder<'b, 'v>(&'b self) -> Option<&'b (dyn Modder + 'v)>
    where
        Self: 'v,
    {
        self.0.as_modder()
    }

    fn as_multiplier<'b, 'v>(&'b self) -> Option<&'b (dyn Multiplier + 'v)>
    where
        Self: 'v,
    {
        self.0.as_multiplier()
    }

    fn as_negator<'b, 'v>(&'b self) -> Option<&'b (dyn Negator + 'v)>
    where
        Self: 'v,
    {
        self.0.as_negator()
    }

    fn as_sizer(&self) -> Option<&dyn Sizer> {
        self.0.as_sizer()
    }

    fn as_subtractor<'b, 'v>(&'b self) -> Option<&'b (dyn Subtractor + 'v)>
    where
        Self: 'v,
    {
        self.0.as_subtractor()
    }

    fn as_zeroer(&self) -> Option<&dyn Zeroer> {
        self.0.as_zeroer()
    }

    fn equals(&self, other: &dyn Val) -> bool {
        self.0.equals(other)
    }

    fn clone_as_boxed<'v>(&self) -> Box<dyn Val + 'v>
    where
        Self: 'v,
    {
        Box::new(self.clone())
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        self.0.as_any()
    }

    fn as_builtin<'b, 'v>(&'b self) -> BuiltinRef<'b, 'v>
    where
        Self: 'v,
    {
        self.0.as_builtin()
    }

    // The interpreter moves a built-in out of a value it owns; a shared one is copied out.
    fn into_builtin<'v>(self: Box<Self>) -> Option<Builtin<'v>>
    where
        Self: 'v,
    {
        self.0.clone_as_boxed().into_builtin()
    }
}

/// JSON → CEL, in CEL's own representation, as [`json_to_cel`] then binding would make it:
/// integers stay integers, RFC 3339 strings stay strings.
pub fn json_to_val(v: &Json) -> Box<dyn Val> {
    match v {
        Json::Null => Box::new(CelNull),
        Json::Bool(b) => Box::new(CelBool::from(*b)),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Box::new(CelInt::from(i)),
            None => Box::new(CelDouble::from(n.as_f64().unwrap_or(f64::NAN))),
        },
        Json::String(s) => Box::new(CelString::from(s.clone())),
        Json::Array(a) => Box::new(CelList::from(a.iter().map(json_to_val).collect::<Vec<_>>())),
        Json::Object(o) => Box::new(CelMap::from(
            o.iter()
                .map(|(k, v)| (CelMapKey::from(k.clone()), json_to_val(v)))
                .collect::<HashMap<_, _>>(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::{json, lead_json, Json};
    use crate::lead::{EmailInfo, Event, Lead};
    use chrono::{TimeZone, Utc};

    /// Every field set, attributes and events with nested values and keys that collide with
    /// an event's own: the hand-built form must equal what `Serialize` writes.
    #[test]
    fn lead_json_is_the_serialized_lead() {
        let text = |s: &str| Some(s.to_string());
        let object = |v: Json| v.as_object().cloned().unwrap();
        let full = Lead {
            email: text("ada@acme.io"),
            first_name: text("Ada"),
            last_name: text("Lovelace"),
            title: text("VP Sales"),
            company: text("Acme"),
            domain: text("acme.io"),
            website: text("https://acme.io"),
            phone: text("+44 20 7946 0000"),
            country: text("GB"),
            source: text("webinar"),
            external_id: text("003XX"),
            crm: text("hubspot"),
            email_info: EmailInfo {
                domain: text("acme.io"),
                is_free: false,
                is_disposable: false,
            },
            attributes: object(json!({"budget": "50k+", "seats": 12, "tags": ["a", {"b": 1.5}]})),
            events: vec![
                Event {
                    kind: "page_view".into(),
                    at: Utc.with_ymd_and_hms(2026, 11, 20, 10, 0, 0).unwrap(),
                    props: object(json!({"path": "/pricing", "type": "shadowed", "n": 3})),
                },
                Event {
                    kind: "email_click".into(),
                    at: Utc.timestamp_opt(1_795_000_000, 120_000_000).unwrap(),
                    props: Default::default(),
                },
            ],
        };
        let bare = Lead {
            email: None,
            domain: text("acme.io"),
            events: vec![],
            attributes: Default::default(),
            ..full.clone()
        };
        for lead in [full, bare] {
            let mut serialized = serde_json::to_value(&lead).unwrap();
            serialized.as_object_mut().unwrap().remove("email_info");
            assert_eq!(lead_json(&lead, true), serialized);
        }
    }

    #[test]
    fn reads_event_list_sees_every_way_to_the_list() {
        use crate::rules::{Condition, Scope};
        let reads =
            |w: &str| super::reads_event_list(&Condition::compile(w, &Scope::scoring()).unwrap());
        for w in [
            "size(lead.events) > 2",
            "has(lead.events)",
            "events.exists(e, e.type == 'demo_request')",
            "lead['events'].size() > 0",
        ] {
            assert!(reads(w), "{w}");
        }
        for w in [
            "lead.source == 'webinar'",
            "activity.count_30d >= 3",
            "has(lead.attributes.budget) && company.employees > 10",
        ] {
            assert!(!reads(w), "{w}");
        }
    }

    /// `activity.types` counts distinct types however the history interleaves them, below
    /// and past the number of types the quick count keeps before it sorts.
    #[test]
    fn activity_types_counts_distinct_types() {
        let at = Utc.with_ymd_and_hms(2026, 11, 20, 10, 0, 0).unwrap();
        let history = |kinds: usize, len: usize| -> Vec<Event> {
            (0..len)
                .map(|i| Event {
                    kind: format!("t{}", (i * 7) % kinds),
                    at,
                    props: Default::default(),
                })
                .collect()
        };
        for (kinds, len) in [(1, 5), (3, 1000), (5, 12), (32, 64), (33, 99), (200, 1000)] {
            let events = history(kinds, len);
            let mut sorted: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
            sorted.sort_unstable();
            sorted.dedup();
            let activity = super::activity_json(&events, at);
            assert_eq!(
                activity["types"],
                json!(sorted.len()),
                "{kinds} types in {len}"
            );
        }
        assert_eq!(super::activity_json(&[], at)["types"], json!(0));
    }
}

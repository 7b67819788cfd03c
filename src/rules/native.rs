//! A native evaluator for the shapes most rules take — field reads, `has()`, comparisons,
//! `in`, `&&` / `||` / `!`, string tests, `size()`, `exists()` / `all()` — straight over the
//! lead's JSON, without building CEL values.
//!
//! Why it exists: cel's interpreter builds boxed values and looks each qualified name up per
//! field; a lead is scored against a hundred rules and then routed, and the score stage has
//! a budget a lead (docs/performance.md, benches/scoring.rs). The cel program stays the reference: an expression with any
//! other shape is not compiled here, and whenever this evaluator cannot be sure of cel's
//! answer (a type mismatch, an error other than a missing field, a non-boolean result) it
//! says so and the caller runs the cel program. A differential test (below) checks the two
//! agree, including which missing field is reported.

use std::borrow::Cow;
use std::cmp::Ordering;

use cel::common::ast::{operators, Expr, LiteralValue};
use cel::IdedExpr;
use serde_json::{Map, Value as Json};

use super::Eval;

/// A compiled expression.
#[derive(Debug)]
pub(crate) enum Node {
    Const(Json),
    /// A comprehension's own variable.
    Local(String),
    /// One of the context's variables known by name in advance (`company`, `event` ...),
    /// by its index in [`ROOTS`].
    Root(usize),
    /// Any other variable of the context.
    Var(String),
    Select {
        operand: Box<Node>,
        field: String,
        /// `has(operand.field)`.
        test: bool,
    },
    /// `root.field` (or `has(root.field)`) read once per lead through a [`FieldTable`]:
    /// entry `id` of the table holds `ROOTS[slot].field` (for `event`, entry `id` of its
    /// event fields, read once per event).
    Field {
        id: usize,
        slot: usize,
        field: String,
        test: bool,
    },
    Not(Box<Node>),
    Neg(Box<Node>),
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
    Cond(Box<Node>, Box<Node>, Box<Node>),
    Eq {
        left: Box<Node>,
        right: Box<Node>,
        negated: bool,
    },
    Cmp(Box<Node>, Box<Node>, CmpOp),
    In(Box<Node>, Box<Node>),
    Text(TextTest, Box<Node>, Box<Node>),
    /// `text.contains('literal')`, its searcher built once.
    Contains(Box<Node>, Box<memchr::memmem::Finder<'static>>),
    Case(Case, Box<Node>),
    Size(Box<Node>),
    /// `text.matches('literal pattern')`, the pattern compiled once (as `rules::matches`
    /// compiles it).
    Matches(Box<Node>, regex::Regex),
    /// `range.exists(var, pred)` (`all == false`) or `range.all(var, pred)`.
    Fold {
        all: bool,
        range: Box<Node>,
        var: String,
        pred: Box<Node>,
    },
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum CmpOp {
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum TextTest {
    Contains,
    StartsWith,
    EndsWith,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Case {
    Lower,
    Upper,
}

/// The variables rules read most, found by index rather than by name.
pub(crate) const ROOTS: &[&str] = &[
    "lead",
    "company",
    "person",
    "email",
    "events",
    "account",
    "activity",
    "lists",
    "event",
    "score",
    "grade",
    "scores",
    "grades",
    "territory",
    "territories",
];

/// `event`'s place in [`ROOTS`].
const EVENT_SLOT: usize = 8;
const _: () = assert!(matches!(ROOTS[EVENT_SLOT].as_bytes(), b"event"));

pub(crate) fn root_slot(name: &str) -> Option<usize> {
    ROOTS.iter().position(|r| *r == name)
}

/// Compiles `expr`, or `None` when any part of it is outside the shapes above.
pub(crate) fn compile(expr: &IdedExpr) -> Option<Node> {
    compile_in(expr, &mut Vec::new())
}

/// `locals`: the comprehension variables in scope, which hide the context's own.
fn compile_in(expr: &IdedExpr, locals: &mut Vec<String>) -> Option<Node> {
    // A macro, not a closure: the comprehension case below needs `locals` too.
    macro_rules! boxed {
        ($e:expr) => {
            compile_in($e, locals).map(Box::new)
        };
    }
    Some(match &expr.expr {
        Expr::Literal(lit) => Node::Const(literal(lit)?),
        Expr::Ident(name) if locals.contains(name) => Node::Local(name.clone()),
        Expr::Ident(name) => match root_slot(name) {
            Some(slot) => Node::Root(slot),
            None => Node::Var(name.clone()),
        },
        Expr::List(list) => {
            if !list.optional_indices.is_empty() {
                return None;
            }
            let items = list
                .elements
                .iter()
                .map(|e| match &e.expr {
                    Expr::Literal(lit) => literal(lit),
                    _ => None,
                })
                .collect::<Option<Vec<_>>>()?;
            Node::Const(Json::Array(items))
        }
        Expr::Select(s) => Node::Select {
            operand: boxed!(&s.operand)?,
            field: s.field.clone(),
            test: s.test,
        },
        Expr::Comprehension(c) => {
            if c.iter_var2.is_some() {
                return None;
            }
            let is_accu = |e: &IdedExpr| matches!(&e.expr, Expr::Ident(n) if *n == c.accu_var);
            let Expr::Call(step) = &c.loop_step.expr else {
                return None;
            };
            let init = match &c.accu_init.expr {
                Expr::Literal(LiteralValue::Boolean(b)) => *b.inner(),
                _ => return None,
            };
            let all = match (step.func_name.as_str(), init) {
                (operators::LOGICAL_OR, false) => false,
                (operators::LOGICAL_AND, true) => true,
                _ => return None,
            };
            match (step.target.as_deref(), step.args.as_slice()) {
                (None, [accu, pred]) if is_accu(accu) && is_accu(&c.result) => {
                    let range = boxed!(&c.iter_range)?;
                    locals.push(c.iter_var.clone());
                    let pred = compile_in(pred, locals).map(Box::new);
                    locals.pop();
                    Node::Fold {
                        all,
                        range,
                        var: c.iter_var.clone(),
                        pred: pred?,
                    }
                }
                _ => return None,
            }
        }
        Expr::Call(call) => {
            let name = call.func_name.as_str();
            match (call.target.as_deref(), call.args.as_slice()) {
                (None, [a]) => match name {
                    operators::LOGICAL_NOT => Node::Not(boxed!(a)?),
                    operators::NEGATE => Node::Neg(boxed!(a)?),
                    "size" => Node::Size(boxed!(a)?),
                    // Routing binds `in_territory(id)` as membership in `territories` (see
                    // route::territory::bind): read natively, a routing rule naming a
                    // territory no longer builds the lead's whole CEL context.
                    "in_territory" if !locals.iter().any(|l| l == "territories") => {
                        let territories = match root_slot("territories") {
                            Some(slot) => Node::Root(slot),
                            None => Node::Var("territories".into()),
                        };
                        Node::In(boxed!(a)?, Box::new(territories))
                    }
                    _ => return None,
                },
                (None, [text, pattern]) if name == "matches" => {
                    Node::Matches(boxed!(text)?, literal_pattern(pattern)?)
                }
                (Some(text), [pattern]) if name == "matches" => {
                    Node::Matches(boxed!(text)?, literal_pattern(pattern)?)
                }
                (None, [a, b]) => {
                    let (a, b) = (boxed!(a)?, boxed!(b)?);
                    match name {
                        operators::LOGICAL_AND => Node::And(a, b),
                        operators::LOGICAL_OR => Node::Or(a, b),
                        operators::EQUALS | operators::NOT_EQUALS => Node::Eq {
                            left: a,
                            right: b,
                            negated: name == operators::NOT_EQUALS,
                        },
                        operators::LESS => Node::Cmp(a, b, CmpOp::Lt),
                        operators::LESS_EQUALS => Node::Cmp(a, b, CmpOp::Le),
                        operators::GREATER => Node::Cmp(a, b, CmpOp::Gt),
                        operators::GREATER_EQUALS => Node::Cmp(a, b, CmpOp::Ge),
                        operators::IN => Node::In(a, b),
                        _ => return None,
                    }
                }
                (None, [c, t, f]) if name == operators::CONDITIONAL => {
                    Node::Cond(boxed!(c)?, boxed!(t)?, boxed!(f)?)
                }
                (Some(target), []) => match name {
                    "size" => Node::Size(boxed!(target)?),
                    "lowerAscii" => Node::Case(Case::Lower, boxed!(target)?),
                    "upperAscii" => Node::Case(Case::Upper, boxed!(target)?),
                    _ => return None,
                },
                (Some(target), [arg]) => {
                    let test = match name {
                        "contains" => TextTest::Contains,
                        "startsWith" => TextTest::StartsWith,
                        "endsWith" => TextTest::EndsWith,
                        _ => return None,
                    };
                    match (test, &arg.expr) {
                        // A literal needle is prepared once: `str::contains` set up its
                        // searcher on every call, which was most of the rule's cost.
                        (TextTest::Contains, Expr::Literal(LiteralValue::String(needle))) => {
                            Node::Contains(
                                boxed!(target)?,
                                Box::new(memchr::memmem::Finder::new(needle.inner()).into_owned()),
                            )
                        }
                        _ => Node::Text(test, boxed!(target)?, boxed!(arg)?),
                    }
                }
                _ => return None,
            }
        }
        _ => return None,
    })
}

/// A pattern written as a string literal, compiled; an invalid one is left to cel, which
/// reports it when the rule runs.
fn literal_pattern(expr: &IdedExpr) -> Option<regex::Regex> {
    match &expr.expr {
        Expr::Literal(LiteralValue::String(s)) => regex::Regex::new(s.inner()).ok(),
        _ => None,
    }
}

/// The `root.field` reads of a set of conditions (a scorer's rules), numbered, so that each
/// is looked up once per lead rather than once per rule that reads it: a hundred rules read
/// a dozen fields, and looking a name up in the lead's JSON was a quarter of evaluating them.
/// `event`'s fields are numbered apart: they are read once per event (see
/// [`FieldTable::resolve_event`]), not once per lead.
#[derive(Debug, Default)]
pub struct FieldTable {
    fields: Vec<(usize, String)>,
    event: Vec<String>,
}

impl FieldTable {
    /// Numbers `node`'s reads of a variable's field and rewrites them to read from the
    /// table.
    pub(crate) fn intern(&mut self, node: &mut Node) {
        if let Node::Select {
            operand,
            field,
            test,
        } = node
        {
            if let Node::Root(slot) = **operand {
                let field = std::mem::take(field);
                let id = if slot == EVENT_SLOT {
                    number(&mut self.event, field.clone())
                } else {
                    number(&mut self.fields, (slot, field.clone()))
                };
                *node = Node::Field {
                    id,
                    slot,
                    field,
                    test: *test,
                };
                return;
            }
        }
        match node {
            Node::Const(_) | Node::Local(_) | Node::Root(_) | Node::Var(_) | Node::Field { .. } => {
            }
            Node::Select { operand: a, .. }
            | Node::Not(a)
            | Node::Neg(a)
            | Node::Case(_, a)
            | Node::Size(a)
            | Node::Matches(a, _)
            | Node::Contains(a, _) => self.intern(a),
            Node::And(a, b)
            | Node::Or(a, b)
            | Node::Cmp(a, b, _)
            | Node::In(a, b)
            | Node::Text(_, a, b)
            | Node::Eq {
                left: a, right: b, ..
            } => {
                self.intern(a);
                self.intern(b);
            }
            Node::Cond(a, b, c) => {
                self.intern(a);
                self.intern(b);
                self.intern(c);
            }
            Node::Fold { range, pred, .. } => {
                self.intern(range);
                self.intern(pred);
            }
        }
    }

    /// Looks every field up once for this lead: `None` where the lead has no such field.
    /// A variable that is not an object leaves its fields to be read (and judged) per rule.
    pub fn resolve<'a>(&self, ctx: &'a super::RuleContext) -> Option<Vec<Option<&'a Json>>> {
        self.fields
            .iter()
            .map(|(slot, field)| match ctx.root(*slot) {
                Some(Json::Object(m)) => Some(m.get(field)),
                _ => None,
            })
            .collect()
    }

    /// Looks every `event.field` up once for this event, into `out` (reused from one event
    /// to the next). False, with `out` empty, when the event is not an object: its fields
    /// are then read (and judged) per rule.
    pub fn resolve_event<'a>(&self, event: &'a Json, out: &mut Vec<Option<&'a Json>>) -> bool {
        out.clear();
        let Json::Object(m) = event else {
            return false;
        };
        out.extend(self.event.iter().map(|f| m.get(f)));
        true
    }
}

/// `item`'s number in `list`, added if new.
fn number<T: PartialEq>(list: &mut Vec<T>, item: T) -> usize {
    match list.iter().position(|f| *f == item) {
        Some(id) => id,
        None => {
            list.push(item);
            list.len() - 1
        }
    }
}

/// A literal as the JSON value the lead's own data would hold; bytes and unsigned integers
/// have no JSON twin and stay with cel.
fn literal(lit: &LiteralValue) -> Option<Json> {
    Some(match lit {
        LiteralValue::Boolean(b) => Json::Bool(*b.inner()),
        LiteralValue::Int(i) => Json::from(*i.inner()),
        LiteralValue::Double(d) => Json::from(serde_json::Number::from_f64(*d.inner())?),
        LiteralValue::String(s) => Json::String(s.inner().to_string()),
        LiteralValue::Null => Json::Null,
        LiteralValue::Bytes(_) | LiteralValue::UInt(_) => return None,
    })
}

/// Where variables come from: the lead's context, or a scope over it.
pub(crate) trait Vars {
    fn var(&self, name: &str) -> Option<&Json>;

    /// The variable `ROOTS[slot]`.
    fn root(&self, slot: usize) -> Option<&Json> {
        self.var(ROOTS[slot])
    }
}

/// A value during evaluation, borrowed from the lead or the rule wherever possible.
#[derive(Debug)]
enum V<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Double(f64),
    Str(Cow<'a, str>),
    List(&'a [Json]),
    Map(&'a Map<String, Json>),
}

impl<'a> V<'a> {
    /// As cel's JSON conversion makes it: a number that fits an i64 is an int.
    // Inlined at every read: one shared copy's jump on the JSON type was the evaluator's
    // most mispredicted branch, each read site sees mostly one type.
    #[inline(always)]
    fn of(j: &'a Json) -> Self {
        match j {
            Json::Null => V::Null,
            Json::Bool(b) => V::Bool(*b),
            Json::Number(n) => match n.as_i64() {
                Some(i) => V::Int(i),
                None => V::Double(n.as_f64().unwrap_or(f64::NAN)),
            },
            Json::String(s) => V::Str(Cow::Borrowed(s)),
            Json::Array(a) => V::List(a),
            Json::Object(o) => V::Map(o),
        }
    }
}

/// Why evaluation stopped.
#[derive(Debug)]
enum Fault<'a> {
    /// A field the lead does not have (cel's `NoSuchKey`).
    Missing(&'a str),
    /// Anything else: only cel knows the exact answer.
    Unsure,
}

type R<'a> = Result<V<'a>, Fault<'a>>;

/// Comprehensions nested deeper than this are evaluated by cel.
const MAX_NESTING: usize = 4;

pub(crate) struct Env<'a> {
    vars: &'a dyn Vars,
    /// Comprehension variables, innermost last: a fixed stack, because a vector allocated on
    /// every `exists()`; rules nest one or two, and deeper nesting is left to cel.
    locals: [(&'a str, &'a Json); MAX_NESTING],
    depth: usize,
    /// The fields of a [`FieldTable`], read once for this lead.
    fields: Option<&'a [Option<&'a Json>]>,
    /// Its `event` fields, read once for the bound event.
    event_fields: Option<&'a [Option<&'a Json>]>,
}

/// Evaluates `node` for one lead: `Some` with cel's answer, `None` when cel must decide.
/// `Field` nodes read from `fields` (a [`FieldTable`] resolved for this lead) when given.
pub(crate) fn eval_with<'a>(
    node: &'a Node,
    vars: &'a dyn Vars,
    fields: Option<&'a [Option<&'a Json>]>,
    event_fields: Option<&'a [Option<&'a Json>]>,
) -> Option<Eval> {
    eval_in(node, &mut Env::new(vars, fields, event_fields))
}

impl<'a> Env<'a> {
    pub(crate) fn new(
        vars: &'a dyn Vars,
        fields: Option<&'a [Option<&'a Json>]>,
        event_fields: Option<&'a [Option<&'a Json>]>,
    ) -> Self {
        Env {
            vars,
            locals: [("", &Json::Null); MAX_NESTING],
            depth: 0,
            fields,
            event_fields,
        }
    }
}

/// As [`eval_with`], in a scope set up once for many conditions (a scorer's rules for one
/// lead): setting it up for each rule cost a fifth of evaluating a simple one.
pub(crate) fn eval_in<'a>(node: &'a Node, env: &mut Env<'a>) -> Option<Eval> {
    // Every condition starts outside any comprehension (a shared scope must not carry one
    // condition's variables into the next).
    env.depth = 0;
    match run(node, env) {
        Ok(V::Bool(true)) => Some(Eval::Matched),
        Ok(V::Bool(false)) => Some(Eval::NotMatched),
        Err(Fault::Missing(key)) => Some(Eval::Missing(key.to_string())),
        Ok(_) | Err(Fault::Unsure) => None,
    }
}

/// `Ok(bool)`, or the fault; a non-boolean value is one cel would reject.
fn truth<'a>(r: R<'a>) -> Result<bool, Fault<'a>> {
    match r? {
        V::Bool(b) => Ok(b),
        _ => Err(Fault::Unsure),
    }
}

/// A node's value. Leaves (constants, variables, table fields) are most of
/// the nodes a rule has: read inline here, they skip a call into the large `compound`,
/// whose entry and exit cost more than reading the leaf itself.
#[inline(always)]
fn run<'a>(node: &'a Node, env: &mut Env<'a>) -> R<'a> {
    match node {
        Node::Const(j) => Ok(V::of(j)),
        Node::Local(name) => env.locals[..env.depth]
            .iter()
            .rev()
            .find(|(n, _)| *n == name.as_str())
            .map(|(_, j)| V::of(j))
            .ok_or(Fault::Unsure),
        Node::Field {
            id,
            slot,
            field,
            test,
        } => {
            let table = if *slot == EVENT_SLOT {
                env.event_fields
            } else {
                env.fields
            };
            let value = match table.and_then(|f| f.get(*id)) {
                Some(resolved) => *resolved,
                // Not resolved ahead: read it as `Select` would.
                None => match env.vars.root(*slot).map(V::of) {
                    Some(V::Map(m)) => m.get(field),
                    _ => return Err(Fault::Unsure),
                },
            };
            match (value, test) {
                (found, true) => Ok(V::Bool(found.is_some())),
                (Some(v), false) => Ok(V::of(v)),
                (None, false) => Err(Fault::Missing(field)),
            }
        }
        Node::Root(slot) => env.vars.root(*slot).map(V::of).ok_or(Fault::Unsure),
        _ => compound(node, env),
    }
}

/// Every node but the leaves `run` reads itself.
#[inline(never)]
fn compound<'a>(node: &'a Node, env: &mut Env<'a>) -> R<'a> {
    match node {
        Node::Const(_) | Node::Local(_) | Node::Field { .. } | Node::Root(_) => run(node, env),
        Node::Var(name) => env.vars.var(name).map(V::of).ok_or(Fault::Unsure),
        Node::Select {
            operand,
            field,
            test,
        } => match run(operand, env)? {
            V::Map(m) if *test => Ok(V::Bool(m.contains_key(field))),
            V::Map(m) => m.get(field).map(V::of).ok_or(Fault::Missing(field)),
            _ => Err(Fault::Unsure),
        },
        Node::Not(a) => match run(a, env)? {
            V::Bool(b) => Ok(V::Bool(!b)),
            _ => Err(Fault::Unsure),
        },
        Node::Neg(a) => match run(a, env)? {
            V::Int(i) => i.checked_neg().map(V::Int).ok_or(Fault::Unsure),
            V::Double(d) => Ok(V::Double(-d)),
            _ => Err(Fault::Unsure),
        },
        // As cel evaluates them: the left side first; its error yields to a right side that
        // decides alone (`error && false` is false), and the right side's own error wins.
        // An unsure left side may have been the value that short-circuits, so whatever
        // does not decide alone stays unsure.
        Node::And(a, b) => logical(a, b, false, env),
        Node::Or(a, b) => logical(a, b, true, env),
        Node::Cond(c, t, f) => {
            if truth(run(c, env))? {
                run(t, env)
            } else {
                run(f, env)
            }
        }
        Node::Eq {
            left,
            right,
            negated,
        } => {
            let l = run(left, env)?;
            let r = run(right, env)?;
            let eq = equal(&l, &r).ok_or(Fault::Unsure)?;
            Ok(V::Bool(eq != *negated))
        }
        Node::Cmp(a, b, op) => {
            let l = run(a, env)?;
            let r = run(b, env)?;
            let ord = compare(&l, &r).ok_or(Fault::Unsure)?;
            Ok(V::Bool(match op {
                CmpOp::Lt => ord == Ordering::Less,
                CmpOp::Le => ord != Ordering::Greater,
                CmpOp::Gt => ord == Ordering::Greater,
                CmpOp::Ge => ord != Ordering::Less,
            }))
        }
        Node::In(a, b) => {
            let needle = run(a, env)?;
            // Text against a literal list of text, the shape most membership rules take:
            // compared directly. Any other item sends the list to the general loop below,
            // which decides as cel does.
            if let (V::Str(text), Node::Const(Json::Array(items))) = (&needle, &**b) {
                let mut all_text = true;
                for item in items {
                    match item {
                        Json::String(s) if s == text.as_ref() => return Ok(V::Bool(true)),
                        Json::String(_) => {}
                        _ => {
                            all_text = false;
                            break;
                        }
                    }
                }
                if all_text {
                    return Ok(V::Bool(false));
                }
            }
            match run(b, env)? {
                V::List(items) => {
                    for item in items {
                        if equal(&needle, &V::of(item)).ok_or(Fault::Unsure)? {
                            return Ok(V::Bool(true));
                        }
                    }
                    Ok(V::Bool(false))
                }
                V::Map(m) => match needle {
                    V::Str(k) => Ok(V::Bool(m.contains_key(k.as_ref()))),
                    _ => Err(Fault::Unsure),
                },
                _ => Err(Fault::Unsure),
            }
        }
        Node::Text(test, target, arg) => {
            let t = run(target, env)?;
            let a = run(arg, env)?;
            match (t, a) {
                (V::Str(t), V::Str(a)) => Ok(V::Bool(match test {
                    TextTest::Contains => t.contains(a.as_ref()),
                    TextTest::StartsWith => t.starts_with(a.as_ref()),
                    TextTest::EndsWith => t.ends_with(a.as_ref()),
                })),
                _ => Err(Fault::Unsure),
            }
        }
        Node::Case(case, target) => match run(target, env)? {
            V::Str(s) => Ok(V::Str(Cow::Owned(match case {
                Case::Lower => s.to_ascii_lowercase(),
                Case::Upper => s.to_ascii_uppercase(),
            }))),
            _ => Err(Fault::Unsure),
        },
        Node::Contains(text, needle) => match run(text, env)? {
            V::Str(t) => Ok(V::Bool(needle.find(t.as_bytes()).is_some())),
            _ => Err(Fault::Unsure),
        },
        Node::Matches(text, re) => match run(text, env)? {
            V::Str(t) => Ok(V::Bool(re.is_match(&t))),
            _ => Err(Fault::Unsure),
        },
        Node::Size(a) => match run(a, env)? {
            V::Str(s) => Ok(V::Int(s.chars().count() as i64)),
            V::List(l) => Ok(V::Int(l.len() as i64)),
            V::Map(m) => Ok(V::Int(m.len() as i64)),
            _ => Err(Fault::Unsure),
        },
        Node::Fold {
            all,
            range,
            var,
            pred,
        } => {
            let V::List(items) = run(range, env)? else {
                return Err(Fault::Unsure);
            };
            // cel's loop: an element's error waits; a later element that decides the
            // result alone (true for exists, false for all) clears it. After an unsure
            // element, only such an element gives a sure answer.
            let mut pending = None;
            let mut unsure = false;
            for item in items {
                if env.depth == MAX_NESTING {
                    return Err(Fault::Unsure);
                }
                env.locals[env.depth] = (var, item);
                env.depth += 1;
                let step = truth(run(pred, env));
                env.depth -= 1;
                match step {
                    Ok(b) if b != *all => return Ok(V::Bool(b)),
                    Ok(_) => {}
                    Err(Fault::Unsure) => unsure = true,
                    Err(e) => pending = Some(e),
                }
            }
            match (unsure, pending) {
                (true, _) => Err(Fault::Unsure),
                (false, Some(e)) => Err(e),
                (false, None) => Ok(V::Bool(*all)),
            }
        }
    }
}

/// `a && b` (`decides` = false) or `a || b` (`decides` = true), as cel evaluates them.
fn logical<'a>(a: &'a Node, b: &'a Node, decides: bool, env: &mut Env<'a>) -> R<'a> {
    match truth(run(a, env)) {
        Ok(l) if l == decides => Ok(V::Bool(decides)),
        Ok(_) => match run(b, env)? {
            V::Bool(r) => Ok(V::Bool(r)),
            _ => Err(Fault::Unsure),
        },
        Err(left) => match run(b, env) {
            Ok(V::Bool(r)) if r == decides => Ok(V::Bool(decides)),
            Ok(_) => Err(left),
            Err(_) if matches!(left, Fault::Unsure) => Err(Fault::Unsure),
            Err(right) => Err(right),
        },
    }
}

/// cel's equality where it is plain; `None` where types differ in ways only cel settles.
fn equal(a: &V, b: &V) -> Option<bool> {
    Some(match (a, b) {
        (V::Null, V::Null) => true,
        (V::Bool(x), V::Bool(y)) => x == y,
        (V::Str(x), V::Str(y)) => x == y,
        (V::Int(_) | V::Double(_), V::Int(_) | V::Double(_)) => {
            compare(a, b) == Some(Ordering::Equal)
        }
        _ => return None,
    })
}

/// cel's ordering of numbers (ints and doubles compare by value) and strings.
fn compare(a: &V, b: &V) -> Option<Ordering> {
    match (a, b) {
        (V::Int(x), V::Int(y)) => Some(x.cmp(y)),
        (V::Int(x), V::Double(y)) => (*x as f64).partial_cmp(y),
        (V::Double(x), V::Int(y)) => x.partial_cmp(&(*y as f64)),
        (V::Double(x), V::Double(y)) => x.partial_cmp(y),
        (V::Str(x), V::Str(y)) => Some(x.as_ref().cmp(y.as_ref())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    //! Differential test: for random leads (fields present, absent, null, of the wrong
    //! type) and a corpus of rules in every shape the native evaluator compiles, its answer,
    //! whenever it gives one, equals cel's — including which missing field is reported.

    use proptest::prelude::*;
    use serde_json::{json, Value as Json};

    use super::super::{Condition, RuleContext, Scope, SharedVal};
    use super::Eval;

    /// Rules in the shapes of the shipped configs and the scoring benchmark, and edge cases.
    const CORPUS: &[&str] = &[
        "company.employees >= 1000",
        "company.employees >= 100 && company.employees < 1000",
        "company.employees > 10.5 || company.employees == 3",
        "company.employees != 240",
        "-company.employees < -5",
        "company.industry in ['Software', 'Financial Services', 'Healthcare']",
        "company.industry in ['Software', 3, 'Healthcare']",
        "company.industry in ['Healthcare', 'Software', null]",
        "company.industry == 'Software' && company.country in ['US', 'CA']",
        "has(company.revenue) && company.revenue > 1000000",
        "company.revenue > 1000000 || has(company.revenue)",
        "company.revenue > 5 && company.employees > 5",
        "company.revenue > 5 || company.employees > 5",
        "!has(company.revenue)",
        "!(company.employees > 50)",
        "company.tech.exists(t, t in ['salesforce', 'hubspot', 'pipedrive'])",
        "company.tech.all(t, t.startsWith('s'))",
        "company.tech.exists(t, t == company.industry)",
        "'aws' in company.tech",
        "size(company.tech) >= 2 && company.tech.size() < 5",
        "has(person.title) && person.title.contains('Officer')",
        "has(person.title) && person.title.startsWith('Chief')",
        "person.title.endsWith('Manager')",
        "person.title.lowerAscii().contains('vp')",
        "person.title.upperAscii() == 'CEO'",
        "has(person.title) && person.title.matches('(?i)\\\\b(ceo|cfo|chief|founder)\\\\b')",
        "matches(person.title, '^Head')",
        "size(person.title) > 3",
        "has(lead.attributes.budget) && lead.attributes.budget == '50k+'",
        "lead.attributes.budget == '50k+'",
        "'budget' in lead.attributes",
        "lead.source in ['referral', 'chat', 'webinar']",
        "email.is_free || email.is_disposable",
        "email.is_free && !email.is_disposable",
        "(has(lead.domain) && lead.domain in lists.competitors) || (has(email.domain) && email.domain in lists.competitors)",
        "activity.count_7d >= 3",
        "activity.count > 0 && activity.days_since_last > 60.0",
        "has(account.score) && account.score >= 40",
        "account.score >= 40 ? company.employees > 10 : email.is_free",
        "events.exists(e, e.type == 'page_view' && e.path.startsWith('/pricing'))",
        "lead.events.exists(e, has(e.campaign))",
        "events.all(e, e.type != 'unsubscribe')",
        "company.employees",
        "company.industry > 'M'",
        "company.employees == null",
        "company == null",
    ];

    fn opt(v: impl Strategy<Value = Json>) -> impl Strategy<Value = Option<Json>> {
        prop_oneof![
            3 => v.prop_map(Some),
            1 => Just(None),
            1 => Just(Some(Json::Null)),
            1 => any::<bool>().prop_map(|b| Some(json!(b))),
        ]
    }

    fn number() -> impl Strategy<Value = Json> {
        prop_oneof![
            (0i64..3000).prop_map(Json::from),
            (0.0f64..3000.0).prop_map(Json::from),
            Just(json!(240)),
            Just(json!("240")),
        ]
    }

    fn word() -> impl Strategy<Value = Json> {
        prop::sample::select(vec![
            "Software",
            "Healthcare",
            "US",
            "DE",
            "CEO",
            "Chief Revenue Officer",
            "VP Sales",
            "Head of Growth",
            "salesforce",
            "hubspot",
            "aws",
            "referral",
            "webinar",
            "50k+",
            "Sales Manager",
            "",
            "Ünïcode",
        ])
        .prop_map(Json::from)
    }

    fn object(fields: Vec<(&'static str, Option<Json>)>) -> Json {
        Json::Object(
            fields
                .into_iter()
                .filter_map(|(k, v)| v.map(|v| (k.to_string(), v)))
                .collect(),
        )
    }

    prop_compose! {
        fn event()(kind in prop::sample::select(vec!["page_view", "unsubscribe", "email_click"]),
                   path in opt(prop::sample::select(vec!["/pricing", "/blog"]).prop_map(Json::from)),
                   campaign in opt(word())) -> Json {
            object(vec![("type", Some(json!(kind))), ("path", path), ("campaign", campaign)])
        }
    }

    prop_compose! {
        fn lead()(employees in opt(number()), revenue in opt(number()),
                  industry in opt(word()), country in opt(word()),
                  tech in opt(prop::collection::vec(word(), 0..4).prop_map(Json::from)),
                  title in opt(word()), source in opt(word()), budget in opt(word()),
                  free in opt(any::<bool>().prop_map(Json::from)),
                  domain in opt(prop::sample::select(vec!["acme.io", "rival.io"]).prop_map(Json::from)),
                  count_7d in opt(number()), score in opt(number()),
                  events in prop::collection::vec(event(), 0..4))
                  -> Vec<(&'static str, Json)> {
            vec![
                ("company", object(vec![("employees", employees), ("revenue", revenue),
                    ("industry", industry), ("country", country), ("tech", tech)])),
                ("person", object(vec![("title", title)])),
                ("lead", object(vec![("source", source), ("domain", domain.clone()),
                    ("attributes", Some(object(vec![("budget", budget)]))),
                    ("events", Some(Json::from(events.clone())))])),
                ("email", object(vec![("is_free", free), ("is_disposable", Some(json!(false))),
                    ("domain", domain)])),
                ("activity", object(vec![("count_7d", count_7d), ("count", Some(json!(2))),
                    ("days_since_last", Some(json!(61.5)))])),
                ("account", object(vec![("score", score)])),
                ("events", Json::from(events)),
            ]
        }
    }

    fn conditions() -> Vec<Condition> {
        let scope = Scope::scoring();
        CORPUS
            .iter()
            .map(|src| Condition::compile(src, &scope).unwrap_or_else(|e| panic!("{src}: {e}")))
            .collect()
    }

    #[test]
    fn the_corpus_compiles_natively() {
        for c in conditions() {
            assert!(c.is_native(), "not native: {}", c.source());
        }
        // Shapes left to cel.
        let scope = Scope::scoring();
        for src in [
            "company.employees + 1 > 5",
            "now > timestamp('2026-01-01T00:00:00Z')",
        ] {
            assert!(
                !Condition::compile(src, &scope).unwrap().is_native(),
                "{src}"
            );
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        #[test]
        fn native_answers_equal_cels(vars in lead()) {
            let mut ctx = RuleContext::empty();
            for (name, value) in &vars {
                ctx.set(name, value);
            }
            ctx.set_shared("lists", &SharedVal::from_json(&json!({"competitors": ["rival.io"]})));
            // The same conditions reading their lead fields through one table, as a scorer
            // does.
            let mut table = super::FieldTable::default();
            let mut tabled = conditions();
            for c in &mut tabled {
                c.intern_fields(&mut table);
            }
            let fields = table.resolve(&ctx);
            for (c, t) in conditions().iter().zip(&tabled) {
                let reference = c.eval_interpreted(&ctx);
                let fast = c.eval(&ctx);
                prop_assert_eq!(&fast, &reference, "{} with {:?}", c.source(), vars);
                prop_assert_eq!(&t.eval_fields(&ctx, &fields), &reference, "{} (table) with {:?}", c.source(), vars);
                prop_assert_eq!(&t.eval_fields(&ctx, &None), &reference, "{} (table unresolved) with {:?}", c.source(), vars);
            }
            // Event rules, in a scope binding `event` with and without its JSON.
            let events = vars.iter().find(|(n, _)| *n == "events").and_then(|(_, e)| e.as_array()).cloned().unwrap_or_default();
            let scope = Scope::event();
            let mut table = super::FieldTable::default();
            for src in ["has(event.path) && event.path.startsWith('/pricing')", "event.campaign == 'webinar'", "has(event.campaign)", "company.employees > 10 && has(event.path)"] {
                let c = Condition::compile(src, &scope).unwrap();
                prop_assert!(c.is_native());
                // The same condition reading `event.*` (and the lead's fields) through a
                // table, as a scorer's event rules do.
                let mut tabled = Condition::compile(src, &scope).unwrap();
                tabled.intern_fields(&mut table);
                let fields = table.resolve(&ctx);
                let mut event_fields = Vec::new();
                for e in &events {
                    let with_json = ctx.bind_json("event", super::super::json_to_val(e), e);
                    let plain = ctx.bind("event", super::super::json_to_val(e));
                    let reference = super::super::interpret(c.program.execute(plain.cel()));
                    prop_assert_eq!(c.eval_bound(&with_json), c.eval_bound(&plain), "{}", src);
                    prop_assert_eq!(&c.eval_bound(&with_json), &reference, "{}", src);
                    let resolved = table.resolve_event(e, &mut event_fields);
                    prop_assert_eq!(resolved, e.is_object());
                    let table = resolved.then_some(event_fields.as_slice());
                    prop_assert_eq!(&tabled.eval_bound_fields(&with_json, &fields, table), &reference, "{} (table) with {}", src, e);
                    prop_assert_eq!(&tabled.eval_bound_fields(&with_json, &None, None), &reference, "{} (table unresolved) with {}", src, e);
                }
            }
        }
    }

    #[test]
    fn a_missing_field_is_reported_as_cel_reports_it() {
        let mut ctx = RuleContext::empty();
        ctx.set("company", &json!({"employees": 12}));
        ctx.set("lead", &json!({"attributes": {}}));
        for (src, key) in [
            ("company.revenue > 5", "revenue"),
            ("company.revenue > 5 && company.country == 'US'", "country"),
            ("lead.attributes.budget == 'x'", "budget"),
        ] {
            let c = Condition::compile(src, &Scope::scoring()).unwrap();
            assert_eq!(c.eval(&ctx), Eval::Missing(key.into()), "{src}");
            assert_eq!(c.eval_interpreted(&ctx), Eval::Missing(key.into()), "{src}");
        }
    }
}

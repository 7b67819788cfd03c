//! Load-time checks of a CEL expression: every variable is one the rule kind can see, and
//! every field read from a canonical object (`company`, `person`, `email`, `lead`,
//! `account`) is a canonical field.

use std::collections::{BTreeSet, HashSet};

use cel::common::ast::{EntryExpr, Expr};
use cel::IdedExpr;

use super::RuleError;
use crate::lead::{
    ACCOUNT_FIELDS, ACTIVITY_FIELDS, CANONICAL_FIELDS, COMPANY_FIELDS, EMAIL_FIELDS, PERSON_FIELDS,
};

/// Which variables a kind of rule can see.
#[derive(Debug, Clone)]
pub struct Scope {
    variables: Vec<&'static str>,
}

/// `activity` is the lead's event statistics; `lists` the named lists of `scoring.toml`.
const LEAD_VARIABLES: &[&str] = &[
    "lead", "company", "person", "email", "events", "account", "activity", "lists", "now",
];

impl Scope {
    /// Scoring rules: the lead, its enrichment, its events, its account.
    pub fn scoring() -> Self {
        Self {
            variables: LEAD_VARIABLES.to_vec(),
        }
    }

    /// Event scoring rules also see the one `event` being scored.
    pub fn event() -> Self {
        let mut s = Self::scoring();
        s.variables.push("event");
        s
    }

    /// Routing rules also see the score, grade, named scores (`scores.fit`) and their
    /// grades (`grades.fit`).
    pub fn routing() -> Self {
        let mut s = Self::scoring();
        s.variables.extend(["score", "grade", "scores", "grades"]);
        s
    }

    pub fn with(mut self, variable: &'static str) -> Self {
        self.variables.push(variable);
        self
    }
}

fn known_fields(root: &str) -> Option<&'static [&'static str]> {
    Some(match root {
        "lead" => CANONICAL_FIELDS,
        "company" => COMPANY_FIELDS,
        "person" => PERSON_FIELDS,
        "email" => EMAIL_FIELDS,
        "account" => ACCOUNT_FIELDS,
        "activity" => ACTIVITY_FIELDS,
        _ => return None,
    })
}

/// Checks `expr` against `scope`; returns the dotted canonical fields it reads, sorted.
pub fn check(expr: &IdedExpr, scope: &Scope) -> Result<Vec<String>, RuleError> {
    let mut bound = HashSet::new();
    collect_bound(expr, &mut bound);
    let mut walker = Walker {
        scope,
        bound,
        fields: BTreeSet::new(),
    };
    walker.walk(expr)?;
    Ok(walker.fields.into_iter().collect())
}

/// Comprehension variables (`e` in `events.exists(e, ...)`) are legal anywhere inside.
fn collect_bound(expr: &IdedExpr, out: &mut HashSet<String>) {
    visit(expr, &mut |e| {
        if let Expr::Comprehension(c) = &e.expr {
            out.insert(c.iter_var.clone());
            out.insert(c.accu_var.clone());
            if let Some(v) = &c.iter_var2 {
                out.insert(v.clone());
            }
        }
    });
}

/// Calls `f` on every node of `expr`, depth first.
pub(crate) fn visit(expr: &IdedExpr, f: &mut dyn FnMut(&IdedExpr)) {
    f(expr);
    match &expr.expr {
        Expr::Call(call) => {
            if let Some(t) = &call.target {
                visit(t, f);
            }
            call.args.iter().for_each(|a| visit(a, f));
        }
        Expr::Comprehension(c) => {
            for e in [
                &c.iter_range,
                &c.accu_init,
                &c.loop_cond,
                &c.loop_step,
                &c.result,
            ] {
                visit(e, f);
            }
        }
        Expr::List(l) => l.elements.iter().for_each(|e| visit(e, f)),
        Expr::Map(m) => m.entries.iter().for_each(|e| visit_entry(&e.expr, f)),
        Expr::Struct(s) => s.entries.iter().for_each(|e| visit_entry(&e.expr, f)),
        Expr::Select(s) => visit(&s.operand, f),
        Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => {}
    }
}

fn visit_entry(entry: &EntryExpr, f: &mut dyn FnMut(&IdedExpr)) {
    match entry {
        EntryExpr::MapEntry(m) => {
            visit(&m.key, f);
            visit(&m.value, f);
        }
        EntryExpr::StructField(s) => visit(&s.value, f),
    }
}

struct Walker<'a> {
    scope: &'a Scope,
    bound: HashSet<String>,
    fields: BTreeSet<String>,
}

impl Walker<'_> {
    fn walk(&mut self, expr: &IdedExpr) -> Result<(), RuleError> {
        let mut result = Ok(());
        visit(expr, &mut |e| {
            if result.is_err() {
                return;
            }
            result = self.check_node(e);
        });
        result
    }

    fn check_node(&mut self, e: &IdedExpr) -> Result<(), RuleError> {
        match &e.expr {
            Expr::Ident(name)
                if !self.scope.variables.contains(&name.as_str()) && !self.bound.contains(name) =>
            {
                return Err(RuleError::UnknownVariable(
                    name.clone(),
                    self.scope.variables.join(", "),
                ));
            }
            Expr::Select(sel) => {
                if let Expr::Ident(root) = &sel.operand.expr {
                    if self.bound.contains(root) {
                        return Ok(());
                    }
                    if let Some(known) = known_fields(root) {
                        if !known.contains(&sel.field.as_str()) {
                            return Err(RuleError::UnknownField(
                                format!("{root}.{}", sel.field),
                                known.join(", "),
                            ));
                        }
                        self.fields.insert(format!("{root}.{}", sel.field));
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }
}

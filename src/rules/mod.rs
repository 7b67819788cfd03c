//! Rules: CEL expressions compiled once at load time and evaluated against one lead's
//! context, shared by scoring and routing.
//!
//! A rule that refers to a field the lead does not have does not match (CEL raises
//! `NoSuchKey`; `has(company.employees)` tests for presence). Unknown variables and unknown
//! canonical fields are load-time errors, so a typo never silently turns a rule off.

mod check;
mod context;
mod file;
mod native;

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, RwLock};

use cel::common::types::{CelBool, CelString};
use cel::{Env, ExecutionError, Program, Value};

pub(crate) use check::visit;
pub use check::Scope;
pub use context::{
    event_json, json_to_cel, json_to_val, reads_event_list, Bound, FieldPath, RuleContext,
    SharedVal,
};
pub use file::RuleFile;
pub use native::FieldTable;
/// A [`FieldTable`] resolved for one lead.
pub type Fields<'a> = Option<Vec<Option<&'a serde_json::Value>>>;

/// One lead's context and fields, set up once to evaluate many conditions in turn
/// ([`Condition::eval_in`]).
pub struct Evaluator<'a> {
    ctx: &'a RuleContext,
    env: native::Env<'a>,
}

impl<'a> Evaluator<'a> {
    pub fn new(ctx: &'a RuleContext, fields: &'a Fields<'a>) -> Self {
        Self {
            ctx,
            env: native::Env::new(ctx, fields.as_deref(), None),
        }
    }
}

/// The one CEL environment every rule is compiled and evaluated with: the standard library
/// plus the strings extension (`lowerAscii`, `split` ...) and a `matches` that keeps its
/// compiled patterns.
pub(crate) static ENV: LazyLock<Arc<Env>> = LazyLock::new(|| {
    let mut env = Env::stdlib();
    // The extension is part of the crate; it only fails when declared twice.
    let _ = env.add_extension(cel::extensions::strings);
    // The crate's own `matches` (its `regex` feature, off in Cargo.toml) compiles the pattern
    // on every call, which costs more than the rest of the rule; these two cache it.
    let _ = cel::add_overload!(env, fn matches: (CelString, CelString) -> Result<CelBool>, id = "matches");
    let _ = cel::add_member_overload!(env, fn matches: (CelString, CelString) -> Result<CelBool>);
    Arc::new(env)
});

/// How many compiled `matches` patterns are kept. Rules name a handful of literal patterns;
/// the bound only matters for a rule that builds its pattern from lead data.
const MAX_CACHED_PATTERNS: usize = 1024;

static PATTERNS: LazyLock<RwLock<HashMap<String, regex::Regex>>> = LazyLock::new(Default::default);

/// `text.matches(pattern)` and `matches(text, pattern)`: RE2 syntax, true when the pattern
/// matches anywhere in the text; an invalid pattern is an evaluation error, as in the crate.
fn matches(this: &CelString<'_>, re: &CelString<'_>) -> Result<CelBool, ExecutionError> {
    let (text, pattern) = (this.inner(), re.inner());
    let cached = PATTERNS
        .read()
        .ok()
        .and_then(|p| p.get(pattern).map(|r| r.is_match(text)));
    if let Some(found) = cached {
        return Ok(CelBool::from(found));
    }
    let compiled = regex::Regex::new(pattern).map_err(|err| ExecutionError::FunctionError {
        function: "matches".to_string(),
        message: format!("'{pattern}' not a valid regex:\n{err}"),
    })?;
    let found = compiled.is_match(text);
    if let Ok(mut p) = PATTERNS.write() {
        if p.len() >= MAX_CACHED_PATTERNS {
            p.clear();
        }
        p.insert(pattern.to_string(), compiled);
    }
    Ok(CelBool::from(found))
}

/// Why a rule could not be loaded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RuleError {
    #[error("CEL syntax error: {0}")]
    Syntax(String),
    #[error("unknown variable `{0}` (rules can use: {1})")]
    UnknownVariable(String, String),
    #[error("unknown field `{0}` (known: {1})")]
    UnknownField(String, String),
}

/// A `when` expression, compiled and checked.
#[derive(Debug)]
pub struct Condition {
    source: String,
    program: Program,
    /// The dotted fields the expression reads (`company.employees`), for explanations.
    fields: Vec<String>,
    /// The expression is the literal `true`: it matches every lead.
    always: bool,
    /// The same expression for the native evaluator, when it has one of the shapes that
    /// evaluator knows; the cel program decides whatever it cannot.
    native: Option<native::Node>,
}

/// The result of evaluating one condition for one lead.
#[derive(Debug, Clone, PartialEq)]
pub enum Eval {
    Matched,
    NotMatched,
    /// A field the rule reads is missing from this lead: no match.
    Missing(String),
    /// The expression failed for another reason (a type mismatch): no match, reported.
    Error(String),
}

impl Eval {
    pub fn matched(&self) -> bool {
        matches!(self, Eval::Matched)
    }
}

impl Condition {
    /// Compiles `source` and checks every variable and canonical field against `scope`.
    pub fn compile(source: &str, scope: &Scope) -> Result<Self, RuleError> {
        let program = ENV.compile(source).map_err(|e| match e.errors.first() {
            Some(first) => RuleError::Syntax(format!("{} (column {})", first.msg, first.pos.1 + 1)),
            None => RuleError::Syntax(e.to_string()),
        })?;
        let fields = check::check(program.expression(), scope)?;
        Ok(Self {
            source: source.to_string(),
            always: source.trim() == "true" || constant_true(&program),
            native: native::compile(program.expression()),
            program,
            fields,
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// The compiled expression, for load-time checks that look for literals (territory ids).
    pub fn expression(&self) -> &cel::IdedExpr {
        self.program.expression()
    }

    pub fn fields(&self) -> &[String] {
        &self.fields
    }

    /// The `event` fields this expression reads (`event.path` → `path`), when it reads
    /// `event` only through such selects; None when it uses `event` whole (passed to a
    /// function, compared, iterated). With the lead fixed, the result then depends on these
    /// fields' values alone, which lets a scorer reuse it across a history's events.
    pub fn event_reads(&self) -> Option<Vec<String>> {
        let (mut idents, mut selects) = (0usize, Vec::new());
        check::visit(self.program.expression(), &mut |e| match &e.expr {
            cel::common::ast::Expr::Ident(name) if name == "event" => idents += 1,
            cel::common::ast::Expr::Select(sel) => {
                if matches!(&sel.operand.expr, cel::common::ast::Expr::Ident(n) if n == "event") {
                    selects.push(sel.field.clone());
                }
            }
            _ => {}
        });
        if idents != selects.len() {
            return None;
        }
        selects.sort();
        selects.dedup();
        Some(selects)
    }

    /// True when this condition matches every lead (used to find unreachable rules).
    pub fn is_always_true(&self) -> bool {
        self.always
    }

    pub fn eval(&self, ctx: &RuleContext) -> Eval {
        self.eval_fields(ctx, &None)
    }

    /// Lets `table` read this condition's lead fields once per lead (see [`FieldTable`]).
    pub fn intern_fields(&mut self, table: &mut FieldTable) {
        if let Some(n) = &mut self.native {
            table.intern(n);
        }
    }

    /// As [`Condition::eval`], with the fields of a [`FieldTable`] resolved for this lead.
    pub fn eval_fields(&self, ctx: &RuleContext, fields: &Fields<'_>) -> Eval {
        self.eval_in(&mut Evaluator::new(ctx, fields))
    }

    /// As [`Condition::eval_fields`], in an [`Evaluator`] set up once for this lead.
    pub fn eval_in<'a>(&'a self, evaluator: &mut Evaluator<'a>) -> Eval {
        let answer = self
            .native
            .as_ref()
            .and_then(|n| native::eval_in(n, &mut evaluator.env));
        answer.unwrap_or_else(|| self.eval_interpreted(evaluator.ctx))
    }

    /// As [`Condition::eval_bound`], with the fields of a [`FieldTable`] resolved for this
    /// lead, and its `event` fields for the bound event (see [`FieldTable::resolve_event`]).
    pub fn eval_bound_fields(
        &self,
        scope: &Bound<'_>,
        fields: &Fields<'_>,
        event_fields: Option<&[Option<&serde_json::Value>]>,
    ) -> Eval {
        let answer = self
            .native
            .as_ref()
            .and_then(|n| native::eval_with(n, scope, fields.as_deref(), event_fields));
        answer.unwrap_or_else(|| interpret(self.program.execute(scope.cel())))
    }

    /// Evaluates with cel's interpreter alone: the reference the native evaluator is
    /// checked against.
    pub fn eval_interpreted(&self, ctx: &RuleContext) -> Eval {
        interpret(self.program.execute(ctx.cel()))
    }

    /// True when the native evaluator handles this expression's shape.
    pub fn is_native(&self) -> bool {
        self.native.is_some()
    }

    /// Evaluates with one more variable bound (`event` while scoring each event).
    pub fn eval_with(&self, ctx: &RuleContext, name: &str, value: &serde_json::Value) -> Eval {
        let mut inner = ctx.cel().new_inner_scope();
        inner.add_variable_from_value(name, json_to_cel(value));
        interpret(self.program.execute(&inner))
    }

    /// Evaluates in a scope made by [`RuleContext::bind`].
    pub fn eval_bound(&self, scope: &Bound<'_>) -> Eval {
        self.eval_bound_fields(scope, &None, None)
    }
}

/// An expression that reads no variable and evaluates to true (`1 == 1`, `true || false`)
/// matches every lead; anything reading a variable fails on an empty context.
fn constant_true(program: &Program) -> bool {
    matches!(
        program.execute(RuleContext::empty().cel()),
        Ok(Value::Bool(true))
    )
}

fn interpret(result: cel::ResolveResult) -> Eval {
    match result {
        Ok(Value::Bool(true)) => Eval::Matched,
        Ok(Value::Bool(false)) => Eval::NotMatched,
        Ok(other) => Eval::Error(format!("returned {other:?}, not true or false")),
        Err(ExecutionError::NoSuchKey(key)) => Eval::Missing(key.to_string()),
        Err(e) => Eval::Error(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx() -> RuleContext {
        let mut c = RuleContext::empty();
        c.set(
            "company",
            &json!({"employees": 1200, "industry": "Software", "tech": ["aws", "hubspot"]}),
        );
        c.set(
            "email",
            &json!({"is_free": false, "is_disposable": false, "domain": "acme.io"}),
        );
        c
    }

    #[test]
    fn evaluates_a_compiled_rule() {
        let c = Condition::compile("company.employees >= 1000", &Scope::scoring()).unwrap();
        assert_eq!(c.eval(&ctx()), Eval::Matched);
        let c = Condition::compile(
            "'aws' in company.tech && company.industry == 'Software'",
            &Scope::scoring(),
        )
        .unwrap();
        assert!(c.eval(&ctx()).matched());
    }

    #[test]
    fn a_missing_field_is_no_match_and_has_tests_for_it() {
        let c = Condition::compile("company.revenue > 10", &Scope::scoring()).unwrap();
        assert_eq!(c.eval(&ctx()), Eval::Missing("revenue".into()));
        let c = Condition::compile("!has(company.revenue)", &Scope::scoring()).unwrap();
        assert_eq!(c.eval(&ctx()), Eval::Matched);
    }

    #[test]
    fn load_time_errors_name_the_problem() {
        let err = Condition::compile("company.employees >=", &Scope::scoring()).unwrap_err();
        assert!(matches!(err, RuleError::Syntax(_)), "{err}");
        let err = Condition::compile("company.employes > 5", &Scope::scoring()).unwrap_err();
        assert!(err.to_string().contains("company.employes"), "{err}");
        let err = Condition::compile("compnay.employees > 5", &Scope::scoring()).unwrap_err();
        assert!(err.to_string().contains("compnay"), "{err}");
        let err = Condition::compile("grade == 'hot'", &Scope::scoring()).unwrap_err();
        assert!(matches!(err, RuleError::UnknownVariable(..)));
        Condition::compile(
            "grade == 'hot' && events.exists(e, e.type == 'page_view')",
            &Scope::routing(),
        )
        .unwrap();
    }

    #[test]
    fn matches_uses_re2_syntax_and_reports_a_bad_pattern() {
        let mut c = ctx();
        c.set("person", &json!({"title": "Chief Revenue Officer"}));
        for (rule, expected) in [
            ("person.title.matches('(?i)\\\\bchief\\\\b')", Eval::Matched),
            ("matches(person.title, '^Revenue')", Eval::NotMatched),
            ("person.title.matches('Officer$')", Eval::Matched),
        ] {
            let cond = Condition::compile(rule, &Scope::scoring()).unwrap();
            // Twice: the second call reads the cached pattern.
            assert_eq!(cond.eval(&c), expected, "{rule}");
            assert_eq!(cond.eval(&c), expected, "{rule}");
        }
        let bad = Condition::compile("person.title.matches('(foo')", &Scope::scoring()).unwrap();
        assert!(matches!(bad.eval(&c), Eval::Error(e) if e.contains("not a valid regex")));
    }

    #[test]
    fn shared_values_and_bound_scopes_evaluate_like_plain_ones() {
        let mut c = ctx();
        let lists = SharedVal::from_json(&json!({"competitors": ["rival.io", "acme.io"]}));
        c.set_shared("lists", &lists);
        let cond = Condition::compile(
            "email.domain in lists.competitors && size(lists.competitors) == 2",
            &Scope::scoring(),
        )
        .unwrap();
        assert_eq!(cond.eval(&c), Eval::Matched);
        let cond = Condition::compile(
            "lists.competitors.exists(d, d == 'rival.io') && lists.competitors[1] == 'acme.io'",
            &Scope::scoring(),
        )
        .unwrap();
        assert_eq!(cond.eval(&c), Eval::Matched);
        let event = json!({"type": "page_view", "path": "/pricing/plans"});
        let scope = c.bind("event", Box::new(SharedVal::from_json(&event)));
        let cond = Condition::compile(
            "event.path.startsWith('/pricing') && event.type == 'page_view'",
            &Scope::event(),
        )
        .unwrap();
        assert_eq!(cond.eval_bound(&scope), Eval::Matched);
        assert_eq!(cond.eval_with(&c, "event", &event), Eval::Matched);
        let cond = Condition::compile("event.campaign == 'x'", &Scope::event()).unwrap();
        assert_eq!(cond.eval_bound(&scope), Eval::Missing("campaign".into()));
    }

    #[test]
    fn records_the_fields_a_rule_reads() {
        let c = Condition::compile("company.employees > 5 && email.is_free", &Scope::scoring())
            .unwrap();
        assert_eq!(c.fields(), ["company.employees", "email.is_free"]);
    }
}

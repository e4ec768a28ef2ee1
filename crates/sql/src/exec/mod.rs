//! Statement execution for the first vertical slice: binding (name resolution and PostgreSQL
//! typing of sqlparser's AST into [`Expr`] trees) fused with a materializing executor (nested
//! loop joins, hash-free grouping on index-key encodings, sorts) over the MVCC store.
//!
//! This is deliberately simple: every input is materialized, joins are nested loops and
//! subqueries in expressions must be uncorrelated (they are evaluated once, at bind time). The
//! plain-data plan of `docs/sql.md` replaces it piece by piece.

use std::cell::RefCell;
use std::cmp::Ordering;
use std::collections::HashMap;

use pgxc_common::{PgError, SqlState};
use pgxc_storage::keycode::encode_key;
use pgxc_storage::mvcc::{IndexKey, Outcome, RelId, Row, Tid, Txn};
use sqlparser::ast::{self, Expr as A, FunctionArg, FunctionArgExpr, FunctionArguments};

use crate::catalog::{
    decode_row, encode_row, index_key, key_datum, mentions, CheckDef, ColumnDef, IndexDef, TableDef,
};
use crate::engine::{Engine, QueryResult};
use crate::expr::{BinOp, CastKind, EvalContext, Expr, Func};
use crate::parser::{normalize_ident, Statement};
use crate::types::cast::{can_cast, cast_value, compare, CastContext};
use crate::types::datetime::TimeZone;
use crate::types::{DataType, Numeric, Value};

fn err(code: SqlState, msg: impl Into<String>) -> PgError {
    PgError::new(code, msg)
}

fn unsupported(what: impl std::fmt::Display) -> PgError {
    err(
        SqlState::FeatureNotSupported,
        format!("{what} is not supported yet"),
    )
}

/// A column of an intermediate relation.
#[derive(Clone, Debug)]
struct ColInfo {
    table: Option<String>,
    name: String,
    ty: DataType,
    /// Reachable only qualified and not expanded by `*` (the right side of `JOIN ... USING`).
    hidden: bool,
}

/// A materialized relation.
#[derive(Clone, Debug, Default)]
struct Rel {
    cols: Vec<ColInfo>,
    rows: Vec<Vec<Value>>,
}

/// Aggregate functions.
#[derive(Clone, Copy, Debug, PartialEq)]
enum AggFn {
    Count,
    CountStar,
    Sum,
    Avg,
    Min,
    Max,
    BoolAnd,
    BoolOr,
    StringAgg,
    ArrayAgg,
    /// The aggregates of `crate::funcs::agg` (statistics, bitwise, regression, ordered-set, json).
    Ext(crate::funcs::agg::ExtAgg),
}

#[derive(Clone, Debug)]
struct AggSpec {
    f: AggFn,
    args: Vec<Expr>,
    distinct: bool,
    filter: Option<Expr>,
    ty: DataType,
    /// `ORDER BY` inside the call: sort keys over the input row.
    order: Vec<(Expr, SortKey)>,
}

#[derive(Default)]
struct AggCx {
    group_ast: Vec<String>,
    group_exprs: Vec<Expr>,
    aggs: Vec<(String, AggSpec)>,
}

/// A bound `ON CONFLICT` clause: the arbiter indexes (positions in `TableDef::indexes`) and,
/// for DO UPDATE, the assignments and WHERE over `existing row ‖ excluded row`.
struct OnConflictPlan {
    arbiters: Vec<usize>,
    update: Option<DoUpdatePlan>,
}

/// DO UPDATE: `(column, value)` assignments and the optional WHERE.
type DoUpdatePlan = (Vec<(usize, Expr)>, Option<Expr>);

/// What names resolve against while binding.
struct Cx<'s> {
    cols: &'s [ColInfo],
    agg: Option<&'s RefCell<AggCx>>,
    /// Where window function calls register (None: they are not allowed here, 42P20).
    win: Option<&'s RefCell<window::WinCx>>,
    /// Where aggregates are rejected (for the error message).
    clause: &'static str,
}

fn agg_fn(name: &str) -> Option<AggFn> {
    Some(match name {
        "count" => AggFn::Count,
        "sum" => AggFn::Sum,
        "avg" => AggFn::Avg,
        "min" => AggFn::Min,
        "max" => AggFn::Max,
        "bool_and" | "every" => AggFn::BoolAnd,
        "bool_or" => AggFn::BoolOr,
        "string_agg" => AggFn::StringAgg,
        "array_agg" => AggFn::ArrayAgg,
        _ => return crate::funcs::agg::ExtAgg::from_name(name).map(AggFn::Ext),
    })
}

fn func_name(f: &ast::Function) -> String {
    f.name
        .0
        .last()
        .and_then(|p| p.as_ident())
        .map(normalize_ident)
        .unwrap_or_default()
}

fn contains_agg(e: &A) -> bool {
    match e {
        A::Function(f) => {
            (f.over.is_none() && agg_fn(&func_name(f)).is_some())
                || match &f.args {
                    FunctionArguments::List(l) => l.args.iter().any(|a| match a {
                        FunctionArg::Unnamed(FunctionArgExpr::Expr(x)) => contains_agg(x),
                        _ => false,
                    }),
                    _ => false,
                }
        }
        A::BinaryOp { left, right, .. } => contains_agg(left) || contains_agg(right),
        A::UnaryOp { expr, .. }
        | A::Nested(expr)
        | A::Cast { expr, .. }
        | A::IsNull(expr)
        | A::IsNotNull(expr)
        | A::IsTrue(expr)
        | A::IsFalse(expr)
        | A::IsNotTrue(expr)
        | A::IsNotFalse(expr) => contains_agg(expr),
        A::Case {
            operand,
            conditions,
            else_result,
            ..
        } => {
            operand.as_deref().is_some_and(contains_agg)
                || conditions
                    .iter()
                    .any(|c| contains_agg(&c.condition) || contains_agg(&c.result))
                || else_result.as_deref().is_some_and(contains_agg)
        }
        A::Between {
            expr, low, high, ..
        } => contains_agg(expr) || contains_agg(low) || contains_agg(high),
        A::In {
            expr,
            target: ast::InTarget::List(list),
            ..
        } => contains_agg(expr) || list.iter().any(contains_agg),
        A::IsDistinctFrom(a, b) | A::IsNotDistinctFrom(a, b) => contains_agg(a) || contains_agg(b),
        _ => false,
    }
}

fn num_rank(t: &DataType) -> Option<u8> {
    Some(match t {
        DataType::Int2 => 1,
        DataType::Int4 => 2,
        DataType::Int8 => 3,
        DataType::Numeric(_) => 4,
        DataType::Float4 => 5,
        DataType::Float8 => 6,
        _ => return None,
    })
}

fn promote(a: &DataType, b: &DataType) -> Option<DataType> {
    let (ra, rb) = (num_rank(a)?, num_rank(b)?);
    if ra == 5 && rb == 5 {
        return Some(DataType::Float4);
    }
    if ra >= 5 || rb >= 5 {
        return Some(DataType::Float8);
    }
    if ra == rb {
        return Some(a.without_typmod());
    }
    Some(if ra > rb { a } else { b }.without_typmod())
}

fn unify(a: &DataType, b: &DataType) -> Result<DataType, PgError> {
    if a == b {
        return Ok(a.clone());
    }
    if a.without_typmod() == b.without_typmod() {
        return Ok(a.without_typmod());
    }
    if let Some(t) = promote(a, b) {
        return Ok(t);
    }
    if a.is_string() && b.is_string() {
        return Ok(DataType::Text);
    }
    match (a, b) {
        (DataType::Date, DataType::Timestamp) | (DataType::Timestamp, DataType::Date) => {
            return Ok(DataType::Timestamp)
        }
        (DataType::Timestamptz, DataType::Date | DataType::Timestamp)
        | (DataType::Date | DataType::Timestamp, DataType::Timestamptz) => {
            return Ok(DataType::Timestamptz)
        }
        _ => {}
    }
    if can_cast(b, a, CastContext::Implicit) {
        return Ok(a.clone());
    }
    if can_cast(a, b, CastContext::Implicit) {
        return Ok(b.clone());
    }
    Err(err(
        SqlState::DatatypeMismatch,
        format!("types {} and {} cannot be matched", a.name(), b.name()),
    ))
}

fn common_type(types: &[DataType]) -> Result<DataType, PgError> {
    let mut t: Option<DataType> = None;
    for u in types {
        if *u == DataType::Unknown {
            continue;
        }
        t = Some(match t {
            None => u.clone(),
            Some(t) => unify(&t, u)?,
        });
    }
    Ok(t.unwrap_or(DataType::Text))
}

/// Parse sqlparser's rendering of a type (`NUMERIC(6,2)`, `CHARACTER VARYING(10)`,
/// `TIMESTAMP(3) WITH TIME ZONE`, `INT[]`) into a [`DataType`].
pub(crate) fn parse_type(dt: &ast::DataType) -> Result<DataType, PgError> {
    let s = dt.to_string();
    let mut name = String::new();
    let mut mods = Vec::new();
    let mut rest = s.as_str();
    while let Some(open) = rest.find('(') {
        name.push_str(&rest[..open]);
        let close = rest[open..]
            .find(')')
            .map(|c| c + open)
            .unwrap_or(rest.len());
        for m in rest[open + 1..close].split(',') {
            let m = m.trim();
            if !m.is_empty() {
                mods.push(m.parse::<i64>().map_err(|_| {
                    err(SqlState::SyntaxError, format!("invalid type modifier {m}"))
                })?);
            }
        }
        rest = rest.get(close + 1..).unwrap_or("");
    }
    name.push_str(rest);
    DataType::from_name(&name, &mods)
}

fn object_name(n: &ast::ObjectName) -> Vec<String> {
    n.0.iter()
        .map(|p| p.as_ident().map(normalize_ident).unwrap_or_default())
        .collect()
}

fn split_name(n: &ast::ObjectName) -> (String, String) {
    let parts = object_name(n);
    match parts.as_slice() {
        [t] => ("public".into(), t.clone()),
        [.., s, t] => (s.clone(), t.clone()),
        [] => ("public".into(), String::new()),
    }
}

fn is_default_kw(e: &A) -> bool {
    matches!(e, A::Identifier(id) if id.quote_style.is_none() && id.value.eq_ignore_ascii_case("default"))
}

fn bool_of(v: &Value) -> bool {
    matches!(v, Value::Bool(true))
}

fn row_key(vals: &[Value]) -> Vec<u8> {
    let d: Vec<_> = vals.iter().map(key_datum).collect();
    encode_key(&d).bytes
}

fn cmp_nulls(a: &Value, b: &Value, desc: bool, nulls_first: bool) -> Ordering {
    match (a.is_null(), b.is_null()) {
        (true, true) => Ordering::Equal,
        (true, false) => {
            if nulls_first {
                Ordering::Less
            } else {
                Ordering::Greater
            }
        }
        (false, true) => {
            if nulls_first {
                Ordering::Greater
            } else {
                Ordering::Less
            }
        }
        _ => {
            let o = compare(a, b).unwrap_or(Ordering::Equal);
            if desc {
                o.reverse()
            } else {
                o
            }
        }
    }
}

/// How one ORDER BY key sorts.
#[derive(Clone, Copy, Debug)]
struct SortKey {
    col: usize,
    desc: bool,
    nulls_first: bool,
}

fn sort_rows(rows: &mut [Vec<Value>], keys: &[SortKey]) {
    rows.sort_by(|a, b| {
        for k in keys {
            let (x, y) = (
                a.get(k.col).unwrap_or(&Value::Null),
                b.get(k.col).unwrap_or(&Value::Null),
            );
            let o = cmp_nulls(x, y, k.desc, k.nulls_first);
            if o != Ordering::Equal {
                return o;
            }
        }
        Ordering::Equal
    });
}

fn sort_key_of(o: &ast::OrderByExpr, col: usize) -> SortKey {
    let desc = o.options.sort == Some(ast::OrderBySort::Desc);
    SortKey {
        col,
        desc,
        nulls_first: o.options.nulls_first.unwrap_or(desc),
    }
}

/// Executes statements with one transaction.
pub(crate) struct Exec<'a> {
    eng: &'a Engine,
    txn: RefCell<&'a mut Txn>,
    cx: EvalContext,
    ctes: RefCell<Vec<(String, Rel)>>,
    /// The transaction's start time (`now()`), microseconds since 2000-01-01 UTC.
    now: i64,
    /// Values of `$1`, `$2`, ... (EXECUTE of a prepared statement).
    params: Vec<(Value, DataType)>,
    /// Rows whose deferred FOREIGN KEYs are checked at COMMIT: (schema, table, row).
    pub(crate) deferred: RefCell<Vec<(String, String, Vec<Value>)>>,
    /// Outer rows visible to correlated subqueries (innermost last): their columns and values.
    outer: RefCell<Vec<(Vec<ColInfo>, Vec<Value>)>>,
    /// The session's search_path, folded (`$user` included as written).
    search_path: Vec<String>,
    /// The session state that `pg_cursors` and `pg_prepared_statements` show.
    views: SessionViews,
    /// `WHERE CURRENT OF c`: the cursor's name and, when it is positioned on a row of a base
    /// table, that table's relation and the row's tid (see [`CursorPos`]).
    current_of: Option<(String, CursorPos)>,
    /// Sequences this statement created (the session drops them if the transaction rolls back).
    pub(crate) created_seqs: RefCell<Vec<String>>,
    /// While set, base-table scans append a hidden `ctid` column (a cursor's DECLARE records
    /// the tids of its rows for `WHERE CURRENT OF`).
    tid_scan: std::cell::Cell<bool>,
    /// The statement's cancel flag (a CancelRequest or statement_timeout sets it): the streaming
    /// executor checks it between batches and fails with 57014.
    cancel: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
    /// NOTICEs the statement reported (`... does not exist, skipping`), collected by the session.
    pub(crate) notices: RefCell<Vec<pgxc_common::error::Notice>>,
    /// The session's rowsets, visible by bare name (see `exec/rowset.rs`).
    pub(crate) rowsets: rowset::Rowsets,
}

/// A NOTICE with SQLSTATE `code` (PostgreSQL's `ereport(NOTICE, errcode(code), ...)`).
fn notice_with(code: SqlState, message: String) -> pgxc_common::error::Notice {
    pgxc_common::error::Notice {
        severity: pgxc_common::error::NoticeSeverity::Notice,
        code,
        message,
    }
}

/// A cursor's base table and the tid of each of its rows (see [`Exec::cursor_query`]).
pub(crate) type CursorTids = (u64, Vec<Tid>);

/// Where a cursor is, for `UPDATE/DELETE ... WHERE CURRENT OF`.
#[derive(Clone, Debug)]
pub(crate) enum CursorPos {
    /// On a row of base table `rel` whose version is `tid`.
    Row(u64, Tid),
    /// Not on a row (before the first, after the last, or the cursor is empty): 24000.
    NotPositioned,
    /// The cursor's query is not a simple scan of one table: 24000.
    NotUpdatable,
}

/// Rows of the session-state views, computed by the session before a statement runs.
#[derive(Clone, Debug, Default)]
pub(crate) struct SessionViews {
    /// `pg_cursors`: name, statement, is_holdable, is_binary, is_scrollable.
    pub(crate) cursors: Vec<(String, String, bool, bool, bool)>,
    /// `pg_prepared_statements`: name, statement, parameter types.
    pub(crate) prepared: Vec<(String, String, Vec<DataType>)>,
}

/// A row filter: bound once, or (correlated subqueries) bound per row with the row as the outer
/// scope of its subqueries.
enum Filter<'q> {
    None,
    Bound(Expr),
    PerRow(&'q A),
    /// `WHERE CURRENT OF cursor`: only the cursor's current row.
    CurrentOf,
}

/// Whether a binding error may come from a correlated subquery's outer reference.
fn correlation_error(e: &PgError) -> bool {
    matches!(e.code, SqlState::UndefinedColumn | SqlState::UndefinedTable)
}

/// Whether an expression contains a subquery (conservatively, by its text).
fn has_subquery(e: &A) -> bool {
    e.to_string().to_ascii_uppercase().contains("SELECT")
}

impl<'a> Exec<'a> {
    pub(crate) fn new(
        eng: &'a Engine,
        txn: &'a mut Txn,
        tz: TimeZone,
        now: i64,
        seqs: std::sync::Arc<dyn crate::expr::SequenceSource>,
    ) -> Exec<'a> {
        Exec {
            eng,
            txn: RefCell::new(txn),
            cx: EvalContext {
                tz: tz.with_now(now),
                seqs: Some(seqs),
                rng: Default::default(),
                settings: None,
            },
            ctes: RefCell::new(Vec::new()),
            now,
            params: Vec::new(),
            deferred: RefCell::new(Vec::new()),
            outer: RefCell::new(Vec::new()),
            search_path: vec!["$user".into(), "public".into()],
            views: SessionViews::default(),
            current_of: None,
            created_seqs: RefCell::new(Vec::new()),
            tid_scan: std::cell::Cell::new(false),
            cancel: None,
            notices: RefCell::new(Vec::new()),
            rowsets: rowset::Rowsets::default(),
        }
    }

    /// Give the statement the session's cancel flag.
    pub(crate) fn with_cancel(
        mut self,
        cancel: std::sync::Arc<std::sync::atomic::AtomicBool>,
    ) -> Exec<'a> {
        self.cancel = Some(cancel);
        self
    }

    /// 57014 if the statement was cancelled (checked by row-at-a-time loops of the interpreter).
    pub(crate) fn check_cancel(&self) -> Result<(), PgError> {
        match &self.cancel {
            Some(c) if c.load(std::sync::atomic::Ordering::Relaxed) => Err(err(
                SqlState::QueryCanceled,
                "canceling statement due to user request",
            )),
            _ => Ok(()),
        }
    }

    /// Give `pg_cursors` / `pg_prepared_statements` the session's state.
    pub(crate) fn with_views(mut self, views: SessionViews) -> Exec<'a> {
        self.views = views;
        self
    }

    /// The cursor position `WHERE CURRENT OF name` refers to.
    pub(crate) fn with_current_of(mut self, cur: Option<(String, CursorPos)>) -> Exec<'a> {
        self.current_of = cur;
        self
    }

    /// Run a cursor's query, returning its result and, when the query is a simple scan of one
    /// base table (PostgreSQL's "simply updatable" cursor), that table's relation and each
    /// row's tid, for `WHERE CURRENT OF`.
    pub(crate) fn cursor_query(
        &self,
        q: &ast::Query,
    ) -> Result<(QueryResult, Option<CursorTids>), PgError> {
        let simple = match q.body.as_ref() {
            ast::SetExpr::Select(sel)
                if q.with.is_none()
                    && sel.from.len() == 1
                    && sel.from[0].joins.is_empty()
                    && sel.distinct.is_none()
                    && sel.having.is_none()
                    && matches!(&sel.group_by, ast::GroupByExpr::Expressions(v, _) if v.is_empty())
                    && !sel.projection.iter().any(|p| match p {
                        ast::SelectItem::UnnamedExpr(e)
                        | ast::SelectItem::ExprWithAlias { expr: e, .. } => contains_agg(e),
                        _ => false,
                    }) =>
            {
                match &sel.from[0].relation {
                    ast::TableFactor::Table {
                        name,
                        alias,
                        args: None,
                        ..
                    } => match self.find_table_opt(name)? {
                        Some((_, def)) if def.view.is_none() => Some((
                            def.rel,
                            alias
                                .as_ref()
                                .map(|a| normalize_ident(&a.name))
                                .unwrap_or_else(|| def.name.clone()),
                        )),
                        _ => None,
                    },
                    _ => None,
                }
            }
            _ => None,
        };
        let Some((rel, qual)) = simple else {
            return Ok((
                self.run(&Statement::Sql(ast::Statement::Query(Box::new(q.clone()))))?,
                None,
            ));
        };
        let mut q2 = q.clone();
        if let ast::SetExpr::Select(sel) = q2.body.as_mut() {
            sel.projection
                .push(ast::SelectItem::UnnamedExpr(A::CompoundIdentifier(vec![
                    ast::Ident::with_quote('"', qual),
                    ast::Ident::with_quote('"', "\u{1}ctid"),
                ])));
        }
        self.tid_scan.set(true);
        let r = self.run(&Statement::Sql(ast::Statement::Query(Box::new(q2))));
        self.tid_scan.set(false);
        let mut r = r?;
        r.columns.pop();
        let mut tids = Vec::with_capacity(r.rows.len());
        for row in r.rows.iter_mut() {
            match row.pop() {
                Some(Value::Int8(t)) => tids.push(Tid(u64::try_from(t).unwrap_or(0))),
                _ => return Err(err(SqlState::InternalError, "cursor row without a tid")),
            }
        }
        Ok((r, Some((rel, tids))))
    }

    /// The tid `WHERE CURRENT OF` designates in table `def`. Errors: 34000 unknown cursor
    /// (checked by the session), 24000 if the cursor is not on a row of `def`.
    fn current_of_tid(&self, def: &TableDef) -> Result<Tid, PgError> {
        let Some((name, pos)) = &self.current_of else {
            return Err(err(SqlState::InvalidCursorName, "cursor does not exist"));
        };
        match pos {
            CursorPos::Row(rel, tid) if *rel == def.rel => Ok(*tid),
            CursorPos::NotPositioned => Err(err(
                SqlState::InvalidCursorState,
                format!("cursor \"{name}\" is not positioned on a row"),
            )),
            _ => Err(err(
                SqlState::InvalidCursorState,
                format!(
                    "cursor \"{name}\" is not a simply updatable scan of table \"{}\"",
                    def.name
                ),
            )),
        }
    }

    /// Let `current_setting`/`set_config` reach the session's settings.
    pub(crate) fn with_settings(
        mut self,
        settings: std::sync::Arc<dyn crate::expr::SettingsSource>,
    ) -> Exec<'a> {
        self.cx.settings = Some(settings);
        self
    }

    /// Use the session's `search_path` setting (comma-separated, as SHOW prints it).
    pub(crate) fn with_search_path(mut self, path: &str) -> Exec<'a> {
        self.search_path = path
            .split(',')
            .map(|s| s.trim().trim_matches('"').to_string())
            .filter(|s| !s.is_empty())
            .collect();
        self
    }

    /// Use the session's random generator (`random()`, `setseed()`, `gen_random_uuid()`).
    pub(crate) fn with_rng(mut self, rng: std::sync::Arc<crate::funcs::SessionRng>) -> Exec<'a> {
        self.cx.rng = rng;
        self
    }

    /// Run `f` with `(cols, row)` as the innermost outer scope of correlated subqueries.
    fn with_outer<T>(
        &self,
        cols: &[ColInfo],
        row: &[Value],
        f: impl FnOnce() -> Result<T, PgError>,
    ) -> Result<T, PgError> {
        self.outer.borrow_mut().push((cols.to_vec(), row.to_vec()));
        let r = f();
        self.outer.borrow_mut().pop();
        r
    }

    /// Bind a WHERE condition over `scope`, falling back to per-row binding for correlated
    /// subqueries.
    fn bind_filter<'q>(&self, w: Option<&'q A>, scope: &[ColInfo]) -> Result<Filter<'q>, PgError> {
        let Some(w) = w else {
            return Ok(Filter::None);
        };
        if let A::Function(f) = w {
            if func_name(f) == "pgxc_current_of" {
                return Ok(Filter::CurrentOf);
            }
        }
        match self.bind(w, &Cx::clause(scope, "WHERE")) {
            Ok(e) => Ok(Filter::Bound(coerce(
                e,
                &DataType::Bool,
                CastContext::Implicit,
            )?)),
            Err(e) if correlation_error(&e) && has_subquery(w) => Ok(Filter::PerRow(w)),
            Err(e) => Err(e),
        }
    }

    /// Evaluate a filter on `row` (whose columns are `scope`).
    fn filter_passes(
        &self,
        f: &Filter<'_>,
        scope: &[ColInfo],
        row: &[Value],
    ) -> Result<bool, PgError> {
        Ok(match f {
            Filter::None | Filter::CurrentOf => true,
            Filter::Bound(e) => bool_of(&e.eval(row, &self.cx)?),
            Filter::PerRow(a) => self.with_outer(scope, row, || {
                let e = self.bind(a, &Cx::clause(scope, "WHERE"))?;
                Ok(bool_of(&e.eval(row, &self.cx)?))
            })?,
        })
    }

    /// Set the values of `$1`, `$2`, ...
    pub(crate) fn with_params(mut self, params: Vec<(Value, DataType)>) -> Exec<'a> {
        self.params = params;
        self
    }

    /// Bind and evaluate a constant expression (EXECUTE arguments), coerced to `ty` when given.
    pub(crate) fn eval_const(
        &self,
        e: &A,
        ty: Option<&DataType>,
    ) -> Result<(Value, DataType), PgError> {
        let b = self.bind(e, &Cx::plain(&[]))?;
        let b = match ty {
            Some(t) => coerce(b, t, CastContext::Assignment)?,
            None => b,
        };
        let t = b.data_type();
        Ok((b.eval(&[], &self.cx)?, t))
    }

    // ---- storage ----

    fn scan(&self, rel: RelId) -> Result<Vec<Row>, PgError> {
        let mut t = self.txn.borrow_mut();
        let mut s = self.eng.block_on(t.scan(rel, false))?;
        let mut out = Vec::new();
        loop {
            self.check_cancel()?;
            let rows = self.eng.block_on(t.next(&mut s, 1024))?;
            if rows.is_empty() {
                break;
            }
            out.extend(rows);
        }
        Ok(out)
    }

    /// Every catalog row: tables and views, and schemas (rows with an empty `schema` field,
    /// named by `name`).
    fn catalog_rows(&self) -> Result<Vec<(Tid, TableDef)>, PgError> {
        self.scan(self.eng.catalog_rel())?
            .into_iter()
            .map(|r| Ok((r.tid, TableDef::decode(&r.data)?)))
            .collect()
    }

    fn tables(&self) -> Result<Vec<(Tid, TableDef)>, PgError> {
        Ok(self
            .catalog_rows()?
            .into_iter()
            .filter(|(_, t)| !t.schema.is_empty())
            .collect())
    }

    /// The schemas created with CREATE SCHEMA (besides `public`).
    fn schemas(&self) -> Result<Vec<(Tid, String)>, PgError> {
        Ok(self
            .catalog_rows()?
            .into_iter()
            .filter(|(_, t)| t.schema.is_empty())
            .map(|(tid, t)| (tid, t.name))
            .collect())
    }

    fn schema_exists(&self, name: &str) -> Result<bool, PgError> {
        Ok(
            matches!(name, "public" | "pg_catalog" | "information_schema")
                || self.schemas()?.iter().any(|(_, s)| s == name),
        )
    }

    /// The schemas of the session's search_path that exist, in order.
    fn path_schemas(&self) -> Result<Vec<String>, PgError> {
        let mut out = Vec::new();
        for s in &self.search_path {
            if s != "$user" && self.schema_exists(s)? {
                out.push(s.clone());
            }
        }
        Ok(out)
    }

    /// A table by folded name (`schema` given or search_path applied), as this transaction sees
    /// the catalog; `None` if there is none. For the coordinator's placement decisions.
    pub(crate) fn lookup_table(
        &self,
        schema: Option<&str>,
        name: &str,
    ) -> Result<Option<TableDef>, PgError> {
        let all = self.tables()?;
        if let Some(sch) = schema {
            return Ok(all
                .into_iter()
                .find(|(_, t)| t.name == name && t.schema == sch)
                .map(|(_, t)| t));
        }
        for sch in self.path_schemas()? {
            if let Some((_, t)) = all.iter().find(|(_, t)| t.name == name && t.schema == sch) {
                return Ok(Some(t.clone()));
            }
        }
        Ok(None)
    }

    fn find_table_opt(&self, n: &ast::ObjectName) -> Result<Option<(Tid, TableDef)>, PgError> {
        let (schema, name) = split_name(n);
        let all = self.tables()?;
        if n.0.len() > 1 {
            return Ok(all
                .into_iter()
                .find(|(_, t)| t.name == name && t.schema == schema));
        }
        for s in self.path_schemas()? {
            if let Some(hit) = all.iter().find(|(_, t)| t.name == name && t.schema == s) {
                return Ok(Some(hit.clone()));
            }
        }
        Ok(None)
    }

    /// The schema a new unqualified object goes to (the first existing search_path entry).
    fn creation_schema(&self, n: &ast::ObjectName) -> Result<String, PgError> {
        if n.0.len() > 1 {
            let (schema, _) = split_name(n);
            if !self.schema_exists(&schema)? {
                return Err(err(
                    SqlState::InvalidSchemaName,
                    format!("schema \"{schema}\" does not exist"),
                ));
            }
            return Ok(schema);
        }
        self.path_schemas()?.into_iter().next().ok_or_else(|| {
            err(
                SqlState::InvalidSchemaName,
                "no schema has been selected to create in",
            )
        })
    }

    fn create_schema(
        &self,
        name: &ast::ObjectName,
        if_not_exists: bool,
    ) -> Result<QueryResult, PgError> {
        let (_, n) = split_name(name);
        if self.schema_exists(&n)? {
            if if_not_exists {
                self.notify(notice_with(
                    SqlState::DuplicateSchema,
                    format!("schema \"{n}\" already exists, skipping"),
                ));
                return Ok(QueryResult::command("CREATE SCHEMA"));
            }
            return Err(err(
                SqlState::DuplicateSchema,
                format!("schema \"{n}\" already exists"),
            ));
        }
        let def = TableDef {
            schema: String::new(),
            name: n,
            rel: 0,
            columns: Vec::new(),
            indexes: Vec::new(),
            checks: Vec::new(),
            owned_seqs: Vec::new(),
            view: None,
            fks: Vec::new(),
        };
        self.put_catalog(None, &def)?;
        Ok(QueryResult::command("CREATE SCHEMA"))
    }

    fn drop_schema(
        &self,
        names: &[ast::ObjectName],
        if_exists: bool,
        cascade: bool,
    ) -> Result<QueryResult, PgError> {
        for n in names {
            let (_, s) = split_name(n);
            let Some((tid, _)) = self.schemas()?.into_iter().find(|(_, x)| *x == s) else {
                if if_exists {
                    self.notify(pgxc_common::error::Notice::info(format!(
                        "schema \"{s}\" does not exist, skipping"
                    )));
                    continue;
                }
                return Err(err(
                    SqlState::InvalidSchemaName,
                    format!("schema \"{s}\" does not exist"),
                ));
            };
            let members: Vec<ast::ObjectName> = self
                .tables()?
                .into_iter()
                .filter(|(_, t)| t.schema == s)
                .map(|(_, t)| {
                    ast::ObjectName(vec![
                        ast::ObjectNamePart::Identifier(ast::Ident::with_quote('"', s.clone())),
                        ast::ObjectNamePart::Identifier(ast::Ident::with_quote('"', t.name)),
                    ])
                })
                .collect();
            if !members.is_empty() {
                if !cascade {
                    return Err(err(
                        SqlState::DependentObjectsStillExist,
                        format!("cannot drop schema {s} because other objects depend on it"),
                    ));
                }
                for m in &members {
                    if let Some((_, d)) = self.find_table_opt(m)? {
                        let kind = if d.view.is_some() {
                            ast::ObjectType::View
                        } else {
                            ast::ObjectType::Table
                        };
                        self.drop(kind, true, true, std::slice::from_ref(m))?;
                    }
                }
            }
            let mut t = self.txn.borrow_mut();
            self.eng.block_on(t.delete(self.eng.catalog_rel(), tid))?;
        }
        Ok(QueryResult::command("DROP SCHEMA"))
    }

    /// A table (not a view) for DML or DDL on its storage (55000 for a view, as PostgreSQL for
    /// views that are not automatically updatable).
    fn find_base_table(&self, n: &ast::ObjectName) -> Result<(Tid, TableDef), PgError> {
        let (tid, def) = self.find_table(n)?;
        if def.view.is_some() {
            return Err(err(
                SqlState::ObjectNotInPrerequisiteState,
                format!("cannot change view \"{}\"", def.name),
            ));
        }
        Ok((tid, def))
    }

    fn find_table(&self, n: &ast::ObjectName) -> Result<(Tid, TableDef), PgError> {
        self.find_table_opt(n)?.ok_or_else(|| {
            err(
                SqlState::UndefinedTable,
                format!("relation \"{}\" does not exist", object_name(n).join(".")),
            )
        })
    }

    fn put_catalog(&self, old: Option<Tid>, def: &TableDef) -> Result<(), PgError> {
        let payload = def.encode()?;
        let rel = self.eng.catalog_rel();
        let mut t = self.txn.borrow_mut();
        match old {
            None => {
                self.eng.block_on(t.insert(rel, &payload, &[]))?;
            }
            Some(tid) => match self.eng.block_on(t.update(rel, tid, &payload, &[]))? {
                Outcome::Done(_) => {}
                _ => {
                    return Err(err(
                        SqlState::SerializationFailure,
                        "tuple concurrently updated",
                    ))
                }
            },
        }
        Ok(())
    }

    // ---- statements ----

    pub(crate) fn run(&self, stmt: &Statement) -> Result<QueryResult, PgError> {
        use ast::Statement as S;
        self.check_rowset_write(stmt)?;
        match stmt {
            Statement::Sql(s) => match s {
                S::Query(q) => {
                    if let ast::SetExpr::Select(sel) = q.body.as_ref() {
                        if let Some(into) = &sel.into {
                            return self.select_into(q, sel, into);
                        }
                    }
                    let rel = self.query(q)?;
                    Ok(result_of(rel, "SELECT"))
                }
                // A view target fails with 55000 before anything is written; an automatically
                // updatable view then runs as the rewritten statement on its base table.
                S::Insert(i) => self.insert(i).or_else(|e| self.view_dml(s, e)),
                S::Update(u) => self.update(u).or_else(|e| self.view_dml(s, e)),
                S::Delete(d) => self.delete(d).or_else(|e| self.view_dml(s, e)),
                S::CreateTable(c) => self.create_table(c),
                S::CreateIndex(c) => self.create_index(c),
                S::AlterTable(a) => self.alter_table(a),
                S::CreateSequence {
                    if_not_exists,
                    name,
                    sequence_options,
                    ..
                } => {
                    let (schema, n) = split_name(name);
                    let created = self.create_seq(
                        &format!("{schema}.{n}"),
                        &DataType::Int8,
                        sequence_options,
                        *if_not_exists,
                    )?;
                    if !created {
                        self.notify(notice_with(
                            SqlState::DuplicateTable,
                            format!("relation \"{n}\" already exists, skipping"),
                        ));
                    }
                    Ok(QueryResult::command("CREATE SEQUENCE"))
                }
                S::Drop {
                    object_type,
                    if_exists,
                    names,
                    cascade,
                    ..
                } => self.drop(*object_type, *if_exists, *cascade, names),
                S::CreateView(v) => self.create_view(v),
                S::CreateSchema {
                    schema_name: ast::SchemaName::Simple(n),
                    if_not_exists,
                    ..
                } => self.create_schema(n, *if_not_exists),
                S::Truncate(t) => {
                    for n in &t.table_names {
                        let (_, def) = self.find_base_table(&n.name)?;
                        let mut txn = self.txn.borrow_mut();
                        self.eng.block_on(txn.truncate(RelId(def.rel)))?;
                    }
                    Ok(QueryResult::command("TRUNCATE TABLE"))
                }
                S::Explain {
                    statement,
                    analyze,
                    verbose,
                    options,
                    ..
                } => self.explain_stmt(statement, *analyze, *verbose, options.as_ref()),
                S::ExplainTable { .. } => Ok(QueryResult {
                    columns: vec![("QUERY PLAN".into(), DataType::Text)],
                    rows: vec![vec![Value::Text("Result".into())]],
                    tag: "EXPLAIN".into(),
                }),
                other => Err(unsupported(format!(
                    "statement \"{}\"",
                    other
                        .to_string()
                        .split_whitespace()
                        .take(2)
                        .collect::<Vec<_>>()
                        .join(" ")
                ))),
            },
            Statement::CreateTable { create, .. } => match create {
                S::CreateTable(c) => self.create_table(c),
                _ => Err(unsupported("this CREATE TABLE form")),
            },
            Statement::Vacuum(_) | Statement::Analyze(_) => Ok(QueryResult::command("VACUUM")),
            Statement::Checkpoint => Ok(QueryResult::command("CHECKPOINT")),
            Statement::Discard(_) => Ok(QueryResult::command("DISCARD ALL")),
            Statement::AlterSequence {
                sequence,
                if_exists,
                options,
            } => self.alter_seq(sequence, *if_exists, options),
            Statement::AlterSequenceOwnedBy {
                sequence,
                if_exists,
                owned_by,
            } => {
                let mut opts = vec!["owned".to_string(), "by".to_string()];
                match owned_by {
                    Some(o) => opts.extend(object_name(o)),
                    None => opts.push("none".into()),
                }
                self.alter_seq(sequence, *if_exists, &opts)
            }
            _ => Err(unsupported("this statement")),
        }
    }

    // ---- DDL ----

    /// Report a NOTICE/WARNING with the statement's result.
    pub(crate) fn notify(&self, n: pgxc_common::error::Notice) {
        self.notices.borrow_mut().push(n);
    }

    fn create_table(&self, c: &ast::CreateTable) -> Result<QueryResult, PgError> {
        let (_, name) = split_name(&c.name);
        let schema = self.creation_schema(&c.name)?;
        if self.find_table_opt(&c.name)?.is_some() {
            if c.if_not_exists {
                self.notify(notice_with(
                    SqlState::DuplicateTable,
                    format!("relation \"{name}\" already exists, skipping"),
                ));
                return Ok(QueryResult::command("CREATE TABLE"));
            }
            return Err(err(
                SqlState::DuplicateTable,
                format!("relation \"{name}\" already exists"),
            ));
        }
        let mut columns: Vec<ColumnDef> = Vec::new();
        let mut uniques: Vec<(Vec<usize>, bool, Option<String>)> = Vec::new();
        let mut checks = Vec::new();
        let mut ctas = None;
        let mut owned: Vec<String> = Vec::new();
        let mut fk_asts: Vec<(Option<ast::Ident>, Vec<String>, ast::ForeignKeyConstraint)> =
            Vec::new();
        if let Some(
            ast::CreateTableLikeKind::Parenthesized(l) | ast::CreateTableLikeKind::Plain(l),
        ) = &c.like
        {
            let (_, src) = self.find_table(&l.name)?;
            let with_defaults = matches!(l.defaults, Some(ast::CreateTableLikeDefaults::Including));
            for col in &src.columns {
                columns.push(ColumnDef {
                    name: col.name.clone(),
                    ty: col.ty.clone(),
                    not_null: col.not_null,
                    default: if with_defaults {
                        col.default.clone()
                    } else {
                        None
                    },
                    identity_always: false,
                    generated: None,
                });
            }
        }
        if let Some(q) = &c.query {
            let mut rel = self.query(q)?;
            if c.with_data.is_some_and(|w| !w.data) {
                rel.rows.clear();
            }
            for (i, col) in rel.cols.iter().enumerate() {
                let cname = c
                    .columns
                    .get(i)
                    .map(|d| normalize_ident(&d.name))
                    .unwrap_or_else(|| col.name.clone());
                columns.push(ColumnDef {
                    name: cname,
                    ty: if col.ty == DataType::Unknown {
                        DataType::Text
                    } else {
                        col.ty.clone()
                    },
                    not_null: false,
                    default: None,
                    identity_always: false,
                    generated: None,
                });
            }
            ctas = Some(rel.rows);
        } else {
            let base = columns.len();
            for (i, cd) in c.columns.iter().enumerate() {
                let i = base + i;
                let cname = normalize_ident(&cd.name);
                if columns.iter().any(|x| x.name == cname) {
                    return Err(err(
                        SqlState::DuplicateColumn,
                        format!("column \"{cname}\" specified more than once"),
                    ));
                }
                let tyname = cd.data_type.to_string().to_ascii_lowercase();
                let ty = parse_type(&cd.data_type)?;
                let mut col = ColumnDef {
                    name: cname.clone(),
                    ty,
                    not_null: false,
                    default: None,
                    identity_always: false,
                    generated: None,
                };
                if tyname.contains("serial") {
                    let seq = format!("{schema}.{name}_{cname}_seq");
                    self.create_seq(&seq, &col.ty, &[], false)?;
                    owned.push(seq.clone());
                    col.not_null = true;
                    col.default = Some(format!("nextval('{seq}')"));
                }
                for o in &cd.options {
                    match &o.option {
                        ast::ColumnOption::NotNull => col.not_null = true,
                        ast::ColumnOption::Null => {}
                        ast::ColumnOption::Default(e) => col.default = Some(e.to_string()),
                        ast::ColumnOption::PrimaryKey(_) => {
                            col.not_null = true;
                            uniques.push((vec![i], true, o.name.as_ref().map(normalize_ident)));
                        }
                        ast::ColumnOption::Unique(_) => {
                            uniques.push((vec![i], false, o.name.as_ref().map(normalize_ident)))
                        }
                        ast::ColumnOption::Check(ch) => checks.push(CheckDef {
                            name: o
                                .name
                                .as_ref()
                                .map(normalize_ident)
                                .unwrap_or_else(|| format!("{name}_{cname}_check")),
                            expr: ch.expr.to_string(),
                        }),
                        ast::ColumnOption::ForeignKey(fk) => {
                            fk_asts.push((o.name.clone(), vec![cname.clone()], fk.clone()))
                        }
                        ast::ColumnOption::Generated {
                            generated_as,
                            sequence_options,
                            generation_expr,
                            ..
                        } => match generation_expr {
                            Some(g) => col.generated = Some(g.to_string()),
                            None => {
                                let seq = format!("{schema}.{name}_{cname}_seq");
                                self.create_seq(
                                    &seq,
                                    &col.ty,
                                    sequence_options.as_deref().unwrap_or(&[]),
                                    false,
                                )?;
                                owned.push(seq.clone());
                                col.not_null = true;
                                col.default = Some(format!("nextval('{seq}')"));
                                col.identity_always =
                                    matches!(generated_as, ast::GeneratedAs::Always);
                            }
                        },
                        other => return Err(unsupported(format!("column option {other}"))),
                    }
                }
                columns.push(col);
            }
        }
        let colpos = |cols: &[ColumnDef], id: &ast::IndexColumn| -> Result<usize, PgError> {
            let n = match &id.column.expr {
                A::Identifier(i) => normalize_ident(i),
                other => other.to_string(),
            };
            cols.iter().position(|c| c.name == n).ok_or_else(|| {
                err(
                    SqlState::UndefinedColumn,
                    format!("column \"{n}\" named in key does not exist"),
                )
            })
        };
        for tc in &c.constraints {
            match tc {
                ast::TableConstraint::PrimaryKey(pk) => {
                    let cols = pk
                        .columns
                        .iter()
                        .map(|i| colpos(&columns, i))
                        .collect::<Result<Vec<_>, _>>()?;
                    for &p in &cols {
                        columns[p].not_null = true;
                    }
                    uniques.push((cols, true, pk.name.as_ref().map(normalize_ident)));
                }
                ast::TableConstraint::Unique(u) => {
                    let cols = u
                        .columns
                        .iter()
                        .map(|i| colpos(&columns, i))
                        .collect::<Result<Vec<_>, _>>()?;
                    uniques.push((cols, false, u.name.as_ref().map(normalize_ident)));
                }
                ast::TableConstraint::Check(ch) => checks.push(CheckDef {
                    name: ch
                        .name
                        .as_ref()
                        .map(normalize_ident)
                        .unwrap_or_else(|| format!("{name}_check")),
                    expr: ch.expr.to_string(),
                }),
                ast::TableConstraint::ForeignKey(fk) => fk_asts.push((
                    None,
                    fk.columns.iter().map(normalize_ident).collect(),
                    fk.clone(),
                )),
                other => return Err(unsupported(format!("constraint {other}"))),
            }
        }
        if uniques.iter().filter(|u| u.1).count() > 1 {
            return Err(err(
                SqlState::InvalidTableDefinition,
                format!("multiple primary keys for table \"{name}\" are not allowed"),
            ));
        }
        // Validate defaults and checks bind.
        let scope: Vec<ColInfo> = columns
            .iter()
            .map(|c| ColInfo {
                table: Some(name.clone()),
                name: c.name.clone(),
                ty: c.ty.clone(),
                hidden: false,
            })
            .collect();
        for col in &columns {
            if let Some(d) = &col.default {
                let e = self.bind_text(d, &[])?;
                coerce(e, &col.ty, CastContext::Assignment)?;
            }
        }
        for ch in &checks {
            self.bind_text(&ch.expr, &scope)?;
        }
        let rel = {
            let mut t = self.txn.borrow_mut();
            self.eng
                .block_on(t.create_table(&format!("{schema}.{name}")))?
        };
        let mut def = TableDef {
            schema,
            name: name.clone(),
            rel: rel.0,
            columns,
            indexes: Vec::new(),
            checks,
            owned_seqs: owned,
            view: None,
            fks: Vec::new(),
        };
        for (cols, primary, cname) in uniques {
            let iname = cname.unwrap_or_else(|| {
                if primary {
                    format!("{name}_pkey")
                } else {
                    let names: Vec<&str> =
                        cols.iter().map(|&c| def.columns[c].name.as_str()).collect();
                    format!("{name}_{}_key", names.join("_"))
                }
            });
            self.add_index(&mut def, iname, cols, true, primary)?;
        }
        for (cname, cols, fk) in &fk_asts {
            let f = self.bind_fk(&def, cname.as_ref(), cols, fk)?;
            def.fks.push(f);
        }
        if let Some(rows) = ctas {
            for r in rows {
                self.insert_row(&def, r)?;
            }
        }
        self.put_catalog(None, &def)?;
        Ok(QueryResult::command(if c.query.is_some() {
            "SELECT"
        } else {
            "CREATE TABLE"
        }))
    }

    /// `SELECT ... INTO t FROM ...`: CREATE TABLE t AS the query without its INTO.
    fn select_into(
        &self,
        q: &ast::Query,
        sel: &ast::Select,
        into: &ast::SelectInto,
    ) -> Result<QueryResult, PgError> {
        let Some(A::Identifier(_) | A::CompoundIdentifier(_)) = into.targets.first() else {
            return Err(unsupported("this SELECT INTO target"));
        };
        let target = into.targets[0].to_string();
        let mut sel = sel.clone();
        sel.into = None;
        let mut q = q.clone();
        *q.body = ast::SetExpr::Select(Box::new(sel));
        let sql = format!("CREATE TABLE {target} AS {q}");
        match crate::parser::parse(&sql)?.into_iter().next() {
            Some(Statement::Sql(ast::Statement::CreateTable(c))) => {
                self.create_table(&c)?;
                Ok(QueryResult::command("SELECT"))
            }
            _ => Err(unsupported("this SELECT INTO")),
        }
    }

    fn create_view(&self, v: &ast::CreateView) -> Result<QueryResult, PgError> {
        if v.materialized {
            return Err(unsupported("materialized views"));
        }
        let (_, name) = split_name(&v.name);
        let schema = self.creation_schema(&v.name)?;
        let existing = self.find_table_opt(&v.name)?;
        if let Some((_, d)) = &existing {
            if !v.or_replace || d.view.is_none() {
                return Err(err(
                    SqlState::DuplicateTable,
                    format!("relation \"{name}\" already exists"),
                ));
            }
        }
        let rel = self.query(&v.query)?;
        let columns = rel
            .cols
            .iter()
            .enumerate()
            .map(|(i, c)| ColumnDef {
                name: v
                    .columns
                    .get(i)
                    .map(|d| normalize_ident(&d.name))
                    .unwrap_or_else(|| c.name.clone()),
                ty: out_type(&c.ty),
                not_null: false,
                default: None,
                identity_always: false,
                generated: None,
            })
            .collect();
        let def = TableDef {
            schema,
            name,
            rel: 0,
            columns,
            indexes: Vec::new(),
            checks: Vec::new(),
            owned_seqs: Vec::new(),
            view: Some(v.query.to_string()),
            fks: Vec::new(),
        };
        self.put_catalog(existing.map(|(t, _)| t), &def)?;
        Ok(QueryResult::command("CREATE VIEW"))
    }

    fn add_index(
        &self,
        def: &mut TableDef,
        name: String,
        cols: Vec<usize>,
        unique: bool,
        primary: bool,
    ) -> Result<(), PgError> {
        self.add_index_with(def, name, cols, Vec::new(), unique, primary)
    }

    /// [`Exec::add_index`] with expression keys (`exprs` non-empty: an expression index).
    fn add_index_with(
        &self,
        def: &mut TableDef,
        name: String,
        cols: Vec<usize>,
        exprs: Vec<Expr>,
        unique: bool,
        primary: bool,
    ) -> Result<(), PgError> {
        let taken = self
            .tables()?
            .into_iter()
            .any(|(_, t)| t.name == name || t.indexes.iter().any(|i| i.name == name))
            || def.indexes.iter().any(|i| i.name == name);
        if taken {
            return Err(err(
                SqlState::DuplicateTable,
                format!("relation \"{name}\" already exists"),
            ));
        }
        let idx = IndexDef {
            name: name.clone(),
            rel: 0,
            columns: cols,
            unique,
            primary,
            exprs,
        };
        let probe = idx.clone();
        let rel = {
            let mut t = self.txn.borrow_mut();
            self.eng
                .block_on(t.create_index(RelId(def.rel), &name, unique, |p| {
                    let row = decode_row(p)?;
                    Ok(index_key(&probe, &row))
                }))?
        };
        def.indexes.push(IndexDef { rel: rel.0, ..idx });
        Ok(())
    }

    fn create_index(&self, c: &ast::CreateIndex) -> Result<QueryResult, PgError> {
        let (tid, mut def) = self.find_base_table(&c.table_name)?;
        let mut cols = Vec::new();
        // Expression keys: (bound expression, name part) per key column.
        let mut exprs: Vec<(Expr, String)> = Vec::new();
        let scope = Self::table_scope(&def, None);
        for ic in &c.columns {
            let mut e = &ic.column.expr;
            while let A::Nested(x) = e {
                e = x;
            }
            if let A::Identifier(i) = e {
                let n = normalize_ident(i);
                let p = def.column(&n).ok_or_else(|| {
                    err(
                        SqlState::UndefinedColumn,
                        format!("column \"{n}\" does not exist"),
                    )
                })?;
                cols.push(p);
                exprs.push((Expr::Column(p, def.columns[p].ty.clone()), n));
                continue;
            }
            if has_subquery(e) || contains_agg(e) {
                return Err(err(
                    SqlState::FeatureNotSupported,
                    "cannot use subquery or aggregate function in index expression",
                ));
            }
            let b = self.bind(e, &Cx::clause(&scope, "index expressions"))?;
            let part = match e {
                A::Function(f) => func_name(f),
                _ => "expr".to_string(),
            };
            exprs.push((b, part));
        }
        let is_expr = exprs.len() != cols.len();
        let name = match &c.name {
            Some(n) => split_name(n).1,
            None => {
                let names: Vec<&str> = exprs.iter().map(|(_, n)| n.as_str()).collect();
                format!("{}_{}_idx", def.name, names.join("_"))
            }
        };
        if c.if_not_exists
            && self
                .tables()?
                .iter()
                .any(|(_, t)| t.indexes.iter().any(|i| i.name == name))
        {
            self.notify(notice_with(
                SqlState::DuplicateTable,
                format!("relation \"{name}\" already exists, skipping"),
            ));
            return Ok(QueryResult::command("CREATE INDEX"));
        }
        if is_expr {
            let keys = exprs.into_iter().map(|(e, _)| e).collect();
            self.add_index_with(&mut def, name, Vec::new(), keys, c.unique, false)?;
        } else {
            self.add_index(&mut def, name, cols, c.unique, false)?;
        }
        self.put_catalog(Some(tid), &def)?;
        Ok(QueryResult::command("CREATE INDEX"))
    }

    fn drop(
        &self,
        kind: ast::ObjectType,
        if_exists: bool,
        cascade: bool,
        names: &[ast::ObjectName],
    ) -> Result<QueryResult, PgError> {
        match kind {
            ast::ObjectType::Schema => self.drop_schema(names, if_exists, cascade),
            ast::ObjectType::Table | ast::ObjectType::View => {
                let want_view = kind == ast::ObjectType::View;
                let mut found = Vec::new();
                for n in names {
                    match self.find_table_opt(n)? {
                        Some(t) if t.1.view.is_some() != want_view => {
                            return Err(err(
                                SqlState::WrongObjectType,
                                format!(
                                    "\"{}\" is not a {}",
                                    t.1.name,
                                    if want_view { "view" } else { "table" }
                                ),
                            ))
                        }
                        Some(t) => found.push(t),
                        None if if_exists => {
                            self.notify(pgxc_common::error::Notice::info(format!(
                                "{} \"{}\" does not exist, skipping",
                                if want_view { "view" } else { "table" },
                                split_name(n).1
                            )));
                        }
                        None => {
                            return Err(err(
                                SqlState::UndefinedTable,
                                format!("table \"{}\" does not exist", object_name(n).join(".")),
                            ))
                        }
                    }
                }
                // Views that use a dropped relation: 2BP01 without CASCADE, dropped with it.
                let all = self.tables()?;
                for (ctid, child) in &all {
                    if found.iter().any(|(t, _)| t == ctid) {
                        continue;
                    }
                    let refs: Vec<bool> = child
                        .fks
                        .iter()
                        .map(|f| {
                            found
                                .iter()
                                .any(|(_, d)| d.name == f.ref_table && d.schema == f.ref_schema)
                        })
                        .collect();
                    if refs.iter().any(|r| *r) {
                        if !cascade {
                            return Err(err(
                                SqlState::DependentObjectsStillExist,
                                format!(
                                    "cannot drop table because constraints on table {} depend on it",
                                    child.name
                                ),
                            ));
                        }
                        let mut c = child.clone();
                        let mut k = refs.iter();
                        c.fks.retain(|_| !k.next().copied().unwrap_or(false));
                        self.put_catalog(Some(*ctid), &c)?;
                    }
                }
                let mut i = 0;
                while i < found.len() {
                    let name = found[i].1.name.clone();
                    for (tid, t) in &all {
                        if let Some(v) = &t.view {
                            if mentions(v, &name) && !found.iter().any(|(x, _)| x == tid) {
                                if !cascade {
                                    return Err(err(
                                        SqlState::DependentObjectsStillExist,
                                        format!(
                                            "cannot drop {name} because other objects depend on it"
                                        ),
                                    ));
                                }
                                found.push((*tid, t.clone()));
                            }
                        }
                    }
                    i += 1;
                }
                for (tid, def) in found {
                    if def.view.is_some() {
                        let mut t = self.txn.borrow_mut();
                        self.eng.block_on(t.delete(self.eng.catalog_rel(), tid))?;
                        continue;
                    }
                    for sname in &def.owned_seqs {
                        self.eng.drop_sequence(sname)?;
                    }
                    let mut t = self.txn.borrow_mut();
                    self.eng.block_on(t.drop_relation(RelId(def.rel)))?;
                    match self.eng.block_on(t.delete(self.eng.catalog_rel(), tid))? {
                        Outcome::Done(()) => {}
                        _ => {
                            return Err(err(
                                SqlState::SerializationFailure,
                                "tuple concurrently deleted",
                            ))
                        }
                    }
                }
                Ok(QueryResult::command(if want_view {
                    "DROP VIEW"
                } else {
                    "DROP TABLE"
                }))
            }
            ast::ObjectType::Index => {
                for n in names {
                    let (_, iname) = split_name(n);
                    let hit = self.tables()?.into_iter().find_map(|(tid, t)| {
                        let p = t.indexes.iter().position(|i| i.name == iname)?;
                        Some((tid, t, p))
                    });
                    match hit {
                        Some((tid, mut def, p)) => {
                            let idx = def.indexes.remove(p);
                            {
                                let mut t = self.txn.borrow_mut();
                                self.eng.block_on(t.drop_relation(RelId(idx.rel)))?;
                            }
                            self.put_catalog(Some(tid), &def)?;
                        }
                        None if if_exists => {
                            self.notify(pgxc_common::error::Notice::info(format!(
                                "index \"{iname}\" does not exist, skipping"
                            )));
                        }
                        None => {
                            return Err(err(
                                SqlState::UndefinedObject,
                                format!("index \"{iname}\" does not exist"),
                            ))
                        }
                    }
                }
                Ok(QueryResult::command("DROP INDEX"))
            }
            ast::ObjectType::Sequence => {
                for n in names {
                    let (schema, name) = split_name(n);
                    let key = format!("{schema}.{name}");
                    if !self.eng.drop_sequence(&key)? {
                        if !if_exists {
                            return Err(err(
                                SqlState::UndefinedTable,
                                format!("sequence \"{name}\" does not exist"),
                            ));
                        }
                        self.notify(pgxc_common::error::Notice::info(format!(
                            "sequence \"{name}\" does not exist, skipping"
                        )));
                    }
                }
                Ok(QueryResult::command("DROP SEQUENCE"))
            }
            other => Err(unsupported(format!("DROP {other}"))),
        }
    }

    /// Create local sequence `key` (`schema.name`) for values of type `ty`.
    fn create_seq(
        &self,
        key: &str,
        ty: &DataType,
        opts: &[ast::SequenceOptions],
        if_not_exists: bool,
    ) -> Result<bool, PgError> {
        let type_max = match ty {
            DataType::Int2 => i64::from(i16::MAX),
            DataType::Int4 => i64::from(i32::MAX),
            _ => i64::MAX,
        };
        let konst = |e: &A| -> Result<i64, PgError> {
            match self.eval_const_int8(e, CastContext::Assignment)? {
                Value::Int8(v) => Ok(v),
                _ => Err(err(
                    SqlState::InvalidParameterValue,
                    "invalid sequence option",
                )),
            }
        };
        let (mut inc, mut min, mut max, mut start, mut cycle) = (1i64, None, None, None, false);
        for o in opts {
            match o {
                ast::SequenceOptions::IncrementBy(e, _) => inc = konst(e)?,
                ast::SequenceOptions::MinValue(Some(e)) => min = Some(konst(e)?),
                ast::SequenceOptions::MaxValue(Some(e)) => max = Some(konst(e)?),
                ast::SequenceOptions::StartWith(e, _) => start = Some(konst(e)?),
                ast::SequenceOptions::Cycle(c) => cycle = !*c,
                _ => {}
            }
        }
        if inc == 0 {
            return Err(err(
                SqlState::InvalidParameterValue,
                "INCREMENT must not be zero",
            ));
        }
        let min = min.unwrap_or(if inc > 0 { 1 } else { -type_max - 1 });
        let max = max.unwrap_or(if inc > 0 { type_max } else { -1 });
        let start = start.unwrap_or(if inc > 0 { min } else { max });
        let created = self.eng.create_sequence(
            key,
            crate::engine::SeqState::new(start, inc, min, max, cycle),
            if_not_exists,
        )?;
        if created {
            self.created_seqs.borrow_mut().push(key.to_string());
        }
        Ok(created)
    }

    /// `ALTER SEQUENCE`: PostgreSQL's options (RESTART [WITH n], INCREMENT [BY] n, [NO]
    /// MINVALUE/MAXVALUE, START [WITH] n, [NO] CYCLE, CACHE n, OWNED BY t.c | NONE), applied
    /// durably and non-transactionally like PostgreSQL's. Errors: 42P01 for an unknown sequence
    /// (unless IF EXISTS), 42601 for a malformed option, 22023 for inconsistent bounds.
    fn alter_seq(
        &self,
        sequence: &ast::ObjectName,
        if_exists: bool,
        options: &[String],
    ) -> Result<QueryResult, PgError> {
        let (schema, name) = split_name(sequence);
        let key = format!("{schema}.{name}");
        if !self.eng.seqs().contains_key(&key) {
            if if_exists {
                return Ok(QueryResult::command("ALTER SEQUENCE"));
            }
            return Err(err(
                SqlState::UndefinedTable,
                format!("relation \"{name}\" does not exist"),
            ));
        }
        let bad = |w: &str| {
            err(
                SqlState::SyntaxError,
                format!("syntax error at or near \"{w}\""),
            )
        };
        let mut i = 0;
        let word = |i: usize| options.get(i).map(|s| s.to_ascii_lowercase());
        let number = |i: &mut usize| -> Result<i64, PgError> {
            let mut neg = false;
            if matches!(options.get(*i).map(String::as_str), Some("-") | Some("+")) {
                neg = options[*i] == "-";
                *i += 1;
            }
            let t = options.get(*i).ok_or_else(|| bad("end of input"))?;
            let v: i64 = t.parse().map_err(|_| bad(t))?;
            *i += 1;
            Ok(if neg { -v } else { v })
        };
        let (mut restart, mut inc, mut min, mut max, mut start, mut cycle) =
            (None, None, None, None, None, None);
        let mut owned: Option<Option<Vec<String>>> = None;
        while i < options.len() {
            let w = word(i).unwrap_or_default();
            i += 1;
            match w.as_str() {
                "restart" => {
                    if word(i).as_deref() == Some("with") {
                        i += 1;
                    }
                    if i < options.len()
                        && word(i)
                            .is_some_and(|w| !w.starts_with(|c: char| c.is_ascii_alphabetic()))
                    {
                        restart = Some(Some(number(&mut i)?));
                    } else {
                        restart = Some(None);
                    }
                }
                "increment" => {
                    if word(i).as_deref() == Some("by") {
                        i += 1;
                    }
                    inc = Some(number(&mut i)?);
                }
                "start" => {
                    if word(i).as_deref() == Some("with") {
                        i += 1;
                    }
                    start = Some(number(&mut i)?);
                }
                "minvalue" => min = Some(Some(number(&mut i)?)),
                "maxvalue" => max = Some(Some(number(&mut i)?)),
                "cycle" => cycle = Some(true),
                "cache" => {
                    number(&mut i)?;
                }
                "no" => {
                    let w2 = word(i).unwrap_or_default();
                    i += 1;
                    match w2.as_str() {
                        "minvalue" => min = Some(None),
                        "maxvalue" => max = Some(None),
                        "cycle" => cycle = Some(false),
                        _ => return Err(bad(&w2)),
                    }
                }
                "owned" => {
                    if word(i).as_deref() != Some("by") {
                        return Err(bad(&w));
                    }
                    i += 1;
                    let rest: Vec<String> =
                        options[i..].iter().filter(|t| *t != ".").cloned().collect();
                    i = options.len();
                    owned = Some(if rest.len() == 1 && rest[0].eq_ignore_ascii_case("none") {
                        None
                    } else {
                        Some(rest)
                    });
                }
                "as" => {
                    i += 1;
                }
                // pg_dump's `ALTER SEQUENCE s OWNER TO role`: there are no roles to change.
                "owner" if word(i).as_deref() == Some("to") && i + 1 < options.len() => {
                    i += 2;
                }
                "rename" | "set" => return Err(unsupported(format!("ALTER SEQUENCE ... {w}"))),
                _ => return Err(bad(&w)),
            }
        }
        if inc == Some(0) {
            return Err(err(
                SqlState::InvalidParameterValue,
                "INCREMENT must not be zero",
            ));
        }
        if let Some(o) = &owned {
            // Detach from any owning table, then attach to the new one.
            let target = match o {
                Some(parts) if parts.len() >= 2 => {
                    let tparts = &parts[..parts.len() - 1];
                    let on = ast::ObjectName(
                        tparts
                            .iter()
                            .map(|p| ast::ObjectNamePart::Identifier(ast::Ident::new(p.clone())))
                            .collect(),
                    );
                    let (tid, def) = self.find_base_table(&on)?;
                    let col = &parts[parts.len() - 1];
                    if !def.columns.iter().any(|c| c.name == *col) {
                        return Err(err(
                            SqlState::UndefinedColumn,
                            format!(
                                "column \"{col}\" of relation \"{}\" does not exist",
                                def.name
                            ),
                        ));
                    }
                    Some((tid, def))
                }
                Some(_) => return Err(bad("OWNED BY")),
                None => None,
            };
            for (tid, mut def) in self.tables()? {
                if def.owned_seqs.contains(&key) && target.as_ref().is_none_or(|(t, _)| *t != tid) {
                    def.owned_seqs.retain(|k| *k != key);
                    self.put_catalog(Some(tid), &def)?;
                }
            }
            if let Some((tid, mut def)) = target {
                if !def.owned_seqs.contains(&key) {
                    def.owned_seqs.push(key.clone());
                    self.put_catalog(Some(tid), &def)?;
                }
            }
        }
        self.eng.alter_sequence(&key, |old| {
            let mut s = old.clone();
            if let Some(v) = inc {
                s.increment = v;
            }
            let type_max = i64::MAX;
            match min {
                Some(Some(v)) => s.min = v,
                Some(None) => s.min = if s.increment > 0 { 1 } else { i64::MIN },
                None => {}
            }
            match max {
                Some(Some(v)) => s.max = v,
                Some(None) => s.max = if s.increment > 0 { type_max } else { -1 },
                None => {}
            }
            if let Some(c) = cycle {
                s.cycle = c;
            }
            if let Some(v) = start {
                s.start = v;
            }
            if s.min >= s.max {
                return Err(err(
                    SqlState::InvalidParameterValue,
                    format!(
                        "MINVALUE ({}) must be less than MAXVALUE ({})",
                        s.min, s.max
                    ),
                ));
            }
            if s.start < s.min || s.start > s.max {
                return Err(err(
                    SqlState::InvalidParameterValue,
                    format!(
                        "START value ({}) cannot be {} than {}VALUE ({})",
                        s.start,
                        if s.start < s.min { "less" } else { "greater" },
                        if s.start < s.min { "MIN" } else { "MAX" },
                        if s.start < s.min { s.min } else { s.max }
                    ),
                ));
            }
            if let Some(r) = restart {
                let v = r.unwrap_or(s.start);
                if v < s.min || v > s.max {
                    return Err(err(
                        SqlState::InvalidParameterValue,
                        format!("RESTART value ({v}) cannot be outside the sequence bounds"),
                    ));
                }
                s.last = v;
                s.is_called = false;
            }
            Ok(s)
        })?;
        Ok(QueryResult::command("ALTER SEQUENCE"))
    }

    // ---- DML ----

    fn table_scope(def: &TableDef, alias: Option<&str>) -> Vec<ColInfo> {
        let q = alias.unwrap_or(&def.name).to_string();
        def.columns
            .iter()
            .map(|c| ColInfo {
                table: Some(q.clone()),
                name: c.name.clone(),
                ty: c.ty.clone(),
                hidden: false,
            })
            .collect()
    }

    fn default_expr(&self, col: &ColumnDef) -> Result<Expr, PgError> {
        match &col.default {
            Some(d) => coerce(self.bind_text(d, &[])?, &col.ty, CastContext::Assignment),
            None => Ok(Expr::Const(Value::Null, col.ty.clone())),
        }
    }

    /// Check NOT NULL, CHECK and FOREIGN KEY constraints of a new row version.
    fn check_row(&self, def: &TableDef, row: &[Value]) -> Result<(), PgError> {
        self.check_row_no_fk(def, row)?;
        self.check_fks(def, row)
    }

    /// Check NOT NULL and CHECK constraints.
    fn check_row_no_fk(&self, def: &TableDef, row: &[Value]) -> Result<(), PgError> {
        for (c, v) in def.columns.iter().zip(row) {
            if c.not_null && v.is_null() {
                return Err(err(
                    SqlState::NotNullViolation,
                    format!(
                        "null value in column \"{}\" of relation \"{}\" violates not-null constraint",
                        c.name, def.name
                    ),
                ));
            }
        }
        if !def.checks.is_empty() {
            let scope = Self::table_scope(def, None);
            for ch in &def.checks {
                let e = self.bind_text(&ch.expr, &scope)?;
                if e.eval(row, &self.cx)? == Value::Bool(false) {
                    return Err(err(
                        SqlState::CheckViolation,
                        format!(
                            "new row for relation \"{}\" violates check constraint \"{}\"",
                            def.name, ch.name
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    fn keys(def: &TableDef, row: &[Value]) -> Vec<(RelId, IndexKey)> {
        def.indexes
            .iter()
            .map(|i| (RelId(i.rel), index_key(i, row)))
            .collect()
    }

    fn unique_error(def: &TableDef, e: PgError) -> PgError {
        if e.code == SqlState::UniqueViolation {
            let name = def
                .indexes
                .iter()
                .find(|i| i.unique)
                .map(|i| i.name.clone())
                .unwrap_or_default();
            return err(
                SqlState::UniqueViolation,
                format!("duplicate key value violates unique constraint \"{name}\""),
            );
        }
        e
    }

    /// [`Exec::insert_row`] for many rows: each checked, then all written with one
    /// `insert_many` (one storage write transaction when nothing blocks).
    fn insert_rows(
        &self,
        def: &TableDef,
        rows: Vec<Vec<Value>>,
    ) -> Result<Vec<Vec<Value>>, PgError> {
        if rows.is_empty() {
            return Ok(rows);
        }
        let mut payloads = Vec::with_capacity(rows.len());
        for row in &rows {
            self.check_row(def, row)?;
            payloads.push((encode_row(row)?, Self::keys(def, row)));
        }
        let batch: Vec<pgxc_storage::mvcc::NewRow<'_>> = payloads
            .iter()
            .map(|(p, k)| (p.as_slice(), k.as_slice()))
            .collect();
        let mut t = self.txn.borrow_mut();
        self.eng
            .block_on(t.insert_many(RelId(def.rel), &batch))
            .map_err(|e| Self::unique_error(def, e))?;
        Ok(rows)
    }

    fn insert_row(&self, def: &TableDef, row: Vec<Value>) -> Result<Vec<Value>, PgError> {
        self.check_row(def, &row)?;
        let payload = encode_row(&row)?;
        let keys = Self::keys(def, &row);
        let mut t = self.txn.borrow_mut();
        self.eng
            .block_on(t.insert(RelId(def.rel), &payload, &keys))
            .map_err(|e| Self::unique_error(def, e))?;
        Ok(row)
    }

    fn returning(
        &self,
        items: Option<&Vec<ast::SelectItem>>,
        scope: &[ColInfo],
        rows: Vec<Vec<Value>>,
        tag: String,
    ) -> Result<QueryResult, PgError> {
        let Some(items) = items else {
            return Ok(QueryResult::command(tag));
        };
        let (exprs, names) = self.bind_projection(items, scope, None)?;
        let mut out = Vec::new();
        for r in &rows {
            out.push(
                exprs
                    .iter()
                    .map(|e| e.eval(r, &self.cx))
                    .collect::<Result<Vec<_>, _>>()?,
            );
        }
        Ok(QueryResult {
            columns: names
                .into_iter()
                .zip(exprs.iter().map(|e| out_type(&e.data_type())))
                .collect(),
            rows: out,
            tag,
        })
    }

    fn insert(&self, ins: &ast::Insert) -> Result<QueryResult, PgError> {
        let name = match &ins.table {
            ast::TableObject::TableName(n) => n,
            _ => return Err(unsupported("INSERT into a table function")),
        };
        let (_, def) = self.find_base_table(name)?;
        let conflict = match &ins.on {
            None => None,
            Some(ast::OnInsert::OnConflict(oc)) => Some(self.bind_on_conflict(&def, ins, oc)?),
            Some(_) => return Err(unsupported("ON DUPLICATE KEY")),
        };
        let targets: Vec<usize> = if ins.columns.is_empty() {
            (0..def.columns.len()).collect()
        } else {
            let mut v = Vec::new();
            for c in &ins.columns {
                let n = object_name(c).last().cloned().unwrap_or_default();
                let p = def.column(&n).ok_or_else(|| {
                    err(
                        SqlState::UndefinedColumn,
                        format!("column \"{n}\" of relation \"{}\" does not exist", def.name),
                    )
                })?;
                if v.contains(&p) {
                    return Err(err(
                        SqlState::DuplicateColumn,
                        format!("column \"{n}\" specified more than once"),
                    ));
                }
                v.push(p);
            }
            v
        };
        let defaults: Vec<Expr> = def
            .columns
            .iter()
            .map(|c| self.default_expr(c))
            .collect::<Result<_, _>>()?;
        let overriding = matches!(ins.overriding, Some(ast::InsertOverriding::System));
        let generated = self.generated_exprs(&def)?;
        let mut source_rows: Vec<Vec<Value>> = Vec::new();
        match &ins.source {
            None => source_rows.push(Vec::new()),
            Some(q) => {
                let values = match q.body.as_ref() {
                    ast::SetExpr::Values(v)
                        if q.order_by.is_none() && q.limit_clause.is_none() && q.with.is_none() =>
                    {
                        Some(v)
                    }
                    _ => None,
                };
                if let Some(v) = values {
                    for r in &v.rows {
                        let r = &r.content;
                        if r.len() > targets.len() {
                            return Err(err(
                                SqlState::SyntaxError,
                                "INSERT has more expressions than target columns",
                            ));
                        }
                        if r.len() < targets.len() && !ins.columns.is_empty() {
                            return Err(err(
                                SqlState::SyntaxError,
                                "INSERT has more target columns than expressions",
                            ));
                        }
                        let mut full: Vec<Value> = Vec::with_capacity(r.len());
                        for (e, &t) in r.iter().zip(&targets) {
                            let col = &def.columns[t];
                            if !is_default_kw(e) {
                                Self::check_explicit(col, overriding)?;
                            }
                            let bound = if is_default_kw(e) {
                                defaults[t].clone()
                            } else {
                                let b = self.bind(e, &Cx::plain(&[]))?;
                                coerce_assign(b, col)?
                            };
                            full.push(bound.eval(&[], &self.cx)?);
                        }
                        source_rows.push(full);
                    }
                } else {
                    let rel = self.query(q)?;
                    if rel.cols.len() > targets.len() {
                        return Err(err(
                            SqlState::SyntaxError,
                            "INSERT has more expressions than target columns",
                        ));
                    }
                    for &t in &targets[..rel.cols.len()] {
                        Self::check_explicit(&def.columns[t], overriding)?;
                    }
                    for r in rel.rows {
                        let mut full = Vec::new();
                        for ((v, c), &t) in r.into_iter().zip(&rel.cols).zip(&targets) {
                            let col = &def.columns[t];
                            let e = coerce_assign(Expr::Const(v, c.ty.clone()), col)?;
                            full.push(e.eval(&[], &self.cx)?);
                        }
                        source_rows.push(full);
                    }
                }
            }
        }
        let mut inserted = Vec::new();
        let mut pending: Vec<Vec<Value>> = Vec::new();
        let mut touched: std::collections::HashSet<(u64, Vec<u8>)> = Default::default();
        for src in source_rows {
            let mut row = Vec::with_capacity(def.columns.len());
            for (i, d) in defaults.iter().enumerate() {
                match targets.iter().position(|&t| t == i) {
                    Some(k) if k < src.len() => row.push(src[k].clone()),
                    _ => row.push(d.eval(&[], &self.cx)?),
                }
            }
            self.apply_generated(&generated, &mut row)?;
            if let Some(oc) = &conflict {
                if let Some(r) = self.on_conflict(&def, oc, row.clone(), &mut touched)? {
                    if let Some(r) = r {
                        inserted.push(r);
                    }
                    continue;
                }
                for i in &oc.arbiters {
                    let k = index_key(&def.indexes[*i], &row);
                    if !k.has_null {
                        touched.insert((def.indexes[*i].rel, k.bytes));
                    }
                }
            }
            if conflict.is_some() {
                inserted.push(self.insert_row(&def, row)?);
            } else {
                // Plain INSERT / COPY: rows are written in batches (one storage write each).
                pending.push(row);
                if pending.len() >= 1024 {
                    inserted.extend(self.insert_rows(&def, std::mem::take(&mut pending))?);
                }
            }
        }
        inserted.extend(self.insert_rows(&def, pending)?);
        let n = inserted.len();
        let alias = ins.table_alias.as_ref().map(|a| normalize_ident(&a.alias));
        self.returning(
            ins.returning.as_ref(),
            &Self::table_scope(&def, alias.as_deref()),
            inserted,
            format!("INSERT 0 {n}"),
        )
    }

    fn check_explicit(col: &ColumnDef, overriding: bool) -> Result<(), PgError> {
        if (col.identity_always && !overriding) || col.generated.is_some() {
            return Err(err(
                SqlState::GeneratedAlways,
                format!(
                    "cannot insert a non-DEFAULT value into column \"{}\"",
                    col.name
                ),
            ));
        }
        Ok(())
    }

    /// The stored generated columns: (position, expression over the row).
    fn generated_exprs(&self, def: &TableDef) -> Result<Vec<(usize, Expr)>, PgError> {
        let scope = Self::table_scope(def, None);
        let mut out = Vec::new();
        for (i, c) in def.columns.iter().enumerate() {
            if let Some(g) = &c.generated {
                out.push((i, coerce_assign(self.bind_text(g, &scope)?, c)?));
            }
        }
        Ok(out)
    }

    fn apply_generated(&self, gen: &[(usize, Expr)], row: &mut [Value]) -> Result<(), PgError> {
        for (i, e) in gen {
            let v = e.eval(row, &self.cx)?;
            row[*i] = v;
        }
        Ok(())
    }

    fn bind_on_conflict(
        &self,
        def: &TableDef,
        ins: &ast::Insert,
        oc: &ast::OnConflict,
    ) -> Result<OnConflictPlan, PgError> {
        let arbiters: Vec<usize> = match &oc.conflict_target {
            None => (0..def.indexes.len())
                .filter(|&i| def.indexes[i].unique)
                .collect(),
            Some(ast::ConflictTarget::Columns { columns, .. }) => {
                let mut cols = Vec::new();
                for c in columns {
                    let n = normalize_ident(c);
                    cols.push(def.column(&n).ok_or_else(|| {
                        err(
                            SqlState::UndefinedColumn,
                            format!("column \"{n}\" does not exist"),
                        )
                    })?);
                }
                cols.sort_unstable();
                def.indexes
                    .iter()
                    .enumerate()
                    .filter(|(_, i)| {
                        let mut ic = i.columns.clone();
                        ic.sort_unstable();
                        i.unique && ic == cols
                    })
                    .map(|(k, _)| k)
                    .collect()
            }
            Some(ast::ConflictTarget::OnConstraint(n)) => {
                let (_, cname) = split_name(n);
                let hit: Vec<usize> = def
                    .indexes
                    .iter()
                    .enumerate()
                    .filter(|(_, i)| i.name == cname)
                    .map(|(k, _)| k)
                    .collect();
                if hit.is_empty() {
                    return Err(err(
                        SqlState::UndefinedObject,
                        format!(
                            "constraint \"{cname}\" for table \"{}\" does not exist",
                            def.name
                        ),
                    ));
                }
                hit
            }
        };
        if arbiters.is_empty() && oc.conflict_target.is_some() {
            return Err(err(
                SqlState::InvalidColumnReference,
                "there is no unique or exclusion constraint matching the ON CONFLICT specification",
            ));
        }
        let alias = ins
            .table_alias
            .as_ref()
            .map(|a| normalize_ident(&a.alias))
            .unwrap_or_else(|| def.name.clone());
        let mut scope = Self::table_scope(def, Some(&alias));
        scope.extend(def.columns.iter().map(|c| ColInfo {
            table: Some("excluded".into()),
            name: c.name.clone(),
            ty: c.ty.clone(),
            hidden: true,
        }));
        let update = match &oc.action {
            ast::OnConflictAction::DoNothing => None,
            ast::OnConflictAction::DoUpdate(du) => {
                let mut sets = Vec::new();
                for a in &du.assignments {
                    let names = match &a.target {
                        ast::AssignmentTarget::ColumnName(n) => object_name(n),
                        ast::AssignmentTarget::Tuple(_) => {
                            return Err(unsupported("multi-column SET"))
                        }
                    };
                    let n = names.last().cloned().unwrap_or_default();
                    let p = def.column(&n).ok_or_else(|| {
                        err(
                            SqlState::UndefinedColumn,
                            format!("column \"{n}\" of relation \"{}\" does not exist", def.name),
                        )
                    })?;
                    let e = if is_default_kw(&a.value) {
                        self.default_expr(&def.columns[p])?
                    } else {
                        coerce_assign(self.bind(&a.value, &Cx::plain(&scope))?, &def.columns[p])?
                    };
                    sets.push((p, e));
                }
                let filter = match &du.selection {
                    Some(w) => Some(coerce(
                        self.bind(w, &Cx::clause(&scope, "WHERE"))?,
                        &DataType::Bool,
                        CastContext::Implicit,
                    )?),
                    None => None,
                };
                Some((sets, filter))
            }
        };
        Ok(OnConflictPlan { arbiters, update })
    }

    /// Handle a proposed row under ON CONFLICT: `None` = no conflict (insert it), `Some(None)`
    /// = skipped, `Some(Some(row))` = the existing row was updated to `row`.
    fn on_conflict(
        &self,
        def: &TableDef,
        oc: &OnConflictPlan,
        row: Vec<Value>,
        touched: &mut std::collections::HashSet<(u64, Vec<u8>)>,
    ) -> Result<Option<Option<Vec<Value>>>, PgError> {
        for &i in &oc.arbiters {
            let idx = &def.indexes[i];
            let key = index_key(idx, &row);
            if key.has_null {
                continue;
            }
            let seen = touched.contains(&(idx.rel, key.bytes.clone()));
            let existing = {
                let mut t = self.txn.borrow_mut();
                let mut scan = self.eng.block_on(t.index_scan(
                    RelId(idx.rel),
                    pgxc_storage::mvcc::KeyRange::eq(&key.bytes),
                    false,
                ))?;
                self.eng.block_on(t.next(&mut scan, 1))?.into_iter().next()
            };
            if existing.is_none() && !seen {
                continue;
            }
            let Some((sets, filter)) = &oc.update else {
                return Ok(Some(None));
            };
            if seen {
                return Err(err(
                    SqlState::CardinalityViolation,
                    "ON CONFLICT DO UPDATE command cannot affect row a second time",
                ));
            }
            let Some(existing) = existing else {
                return Ok(Some(None));
            };
            let old = decode_row(&existing.data)?;
            let mut combined = old.clone();
            combined.extend(row.iter().cloned());
            if let Some(f) = filter {
                if !bool_of(&f.eval(&combined, &self.cx)?) {
                    return Ok(Some(None));
                }
            }
            let mut new = old;
            for (p, e) in sets {
                new[*p] = e.eval(&combined, &self.cx)?;
            }
            self.check_row(def, &new)?;
            let payload = encode_row(&new)?;
            let keys = Self::keys(def, &new);
            let o = {
                let mut t = self.txn.borrow_mut();
                self.eng
                    .block_on(t.update(RelId(def.rel), existing.tid, &payload, &keys))
                    .map_err(|e| Self::unique_error(def, e))?
            };
            if !matches!(o, Outcome::Done(_)) {
                return Err(err(
                    SqlState::SerializationFailure,
                    "could not serialize access due to concurrent update",
                ));
            }
            touched.insert((idx.rel, key.bytes));
            return Ok(Some(Some(new)));
        }
        Ok(None)
    }

    fn target_table(&self, tf: &ast::TableFactor) -> Result<(TableDef, Option<String>), PgError> {
        match tf {
            ast::TableFactor::Table { name, alias, .. } => {
                let (_, def) = self.find_base_table(name)?;
                Ok((def, alias.as_ref().map(|a| normalize_ident(&a.name))))
            }
            _ => Err(unsupported("this UPDATE/DELETE target")),
        }
    }

    /// The value of `e`, an expression over no columns, cast to int8 in context `ctx`.
    fn eval_const_int8(&self, e: &A, ctx: CastContext) -> Result<Value, PgError> {
        coerce(self.bind(e, &Cx::plain(&[]))?, &DataType::Int8, ctx)?.eval(&[], &self.cx)
    }

    /// The cross join of a FROM list: of `SELECT ... FROM`, or the extra relation of
    /// `UPDATE ... FROM` / `DELETE ... USING` (one empty row for an empty list).
    fn cross_join_from(&self, items: &[ast::TableWithJoins]) -> Result<Rel, PgError> {
        let mut rel = Rel {
            cols: Vec::new(),
            rows: vec![Vec::new()],
        };
        for (i, twj) in items.iter().enumerate() {
            if i > 0
                && (query::is_lateral(&twj.relation)
                    || twj.joins.iter().any(|j| query::is_lateral(&j.relation)))
            {
                // LATERAL items see the FROM items before them.
                rel = self.join_step(
                    rel,
                    &twj.relation,
                    &ast::JoinOperator::CrossJoin(ast::JoinConstraint::None),
                )?;
                for j in &twj.joins {
                    rel = self.join_step(rel, &j.relation, &j.join_operator)?;
                }
                continue;
            }
            let r = self.join_tree(twj)?;
            rel = if i == 0 {
                r
            } else {
                self.join(
                    rel,
                    r,
                    &ast::JoinOperator::CrossJoin(ast::JoinConstraint::None),
                )?
            };
        }
        Ok(rel)
    }

    /// The first row of `extra` that, appended to `row`, satisfies `filter`.
    fn first_match(
        &self,
        row: &[Value],
        extra: &Rel,
        filter: &Filter<'_>,
        scope: &[ColInfo],
    ) -> Result<Option<Vec<Value>>, PgError> {
        for e in &extra.rows {
            let mut combined = row.to_vec();
            combined.extend(e.iter().cloned());
            if self.filter_passes(filter, scope, &combined)? {
                return Ok(Some(combined));
            }
        }
        Ok(None)
    }

    /// The write loop of UPDATE and DELETE: for each row of `def` that (joined with `extra`)
    /// satisfies `filter`, `write` changes the version at `tid` and, once that is done, `done`
    /// turns the old row, the matching combined row and what `write` kept into an output row.
    /// A row this statement already changed, or one deleted meanwhile, is skipped; one a
    /// committed transaction updated meanwhile is re-checked on its newest version and retried
    /// (PostgreSQL's EvalPlanQual).
    fn modify_matching<D, S>(
        &self,
        def: &TableDef,
        extra: &Rel,
        filter: &Filter<'_>,
        scope: &[ColInfo],
        mut write: impl FnMut(Tid, &[Value], &[Value]) -> Result<(Outcome<D>, S), PgError>,
        mut done: impl FnMut(&[Value], Vec<Value>, S) -> Result<Vec<Value>, PgError>,
    ) -> Result<Vec<Vec<Value>>, PgError> {
        let mut out = Vec::new();
        let only = match filter {
            Filter::CurrentOf => Some(self.current_of_tid(def)?),
            _ => None,
        };
        for r in self.target_rows(def, filter, extra)? {
            if only.is_some_and(|t| t != r.tid) {
                continue;
            }
            let mut tid = r.tid;
            let mut row = decode_row(&r.data)?;
            while let Some(combined) = self.first_match(&row, extra, filter, scope)? {
                match write(tid, &row, &combined)? {
                    (Outcome::Done(_), kept) => {
                        out.push(done(&row, combined, kept)?);
                        break;
                    }
                    (Outcome::SelfModified | Outcome::Gone, _) => break,
                    (Outcome::Changed(nr), _) => {
                        tid = nr.tid;
                        row = decode_row(&nr.data)?;
                    }
                }
            }
        }
        Ok(out)
    }

    fn update(&self, u: &ast::Update) -> Result<QueryResult, PgError> {
        if !u.table.joins.is_empty() {
            return Err(unsupported("UPDATE of a join"));
        }
        let (def, alias) = self.target_table(&u.table.relation)?;
        let from = match &u.from {
            Some(ast::UpdateTableFromKind::BeforeSet(v))
            | Some(ast::UpdateTableFromKind::AfterSet(v)) => Some(v),
            None => None,
        };
        let extra = self.cross_join_from(from.map_or(&[], Vec::as_slice))?;
        let generated = self.generated_exprs(&def)?;
        let mut scope = Self::table_scope(&def, alias.as_deref());
        scope.extend(extra.cols.iter().cloned());
        let mut sets: Vec<(usize, Expr)> = Vec::new();
        for a in &u.assignments {
            match &a.target {
                ast::AssignmentTarget::ColumnName(n) => {
                    let n = object_name(n).last().cloned().unwrap_or_default();
                    let p = self.target_column(&def, &n)?;
                    let e = if is_default_kw(&a.value) {
                        self.default_expr(&def.columns[p])?
                    } else {
                        coerce_assign(self.bind(&a.value, &Cx::plain(&scope))?, &def.columns[p])?
                    };
                    sets.push((p, e));
                }
                ast::AssignmentTarget::Tuple(names) => {
                    let values: Vec<Expr> = match &a.value {
                        A::Tuple(v) => v
                            .iter()
                            .map(|x| self.bind(x, &Cx::plain(&scope)))
                            .collect::<Result<_, _>>()?,
                        A::Subquery(q) => {
                            let rel = self.query(q)?;
                            if rel.rows.len() > 1 {
                                return Err(err(
                                    SqlState::CardinalityViolation,
                                    "more than one row returned by a subquery used as an expression",
                                ));
                            }
                            let row = rel.rows.into_iter().next();
                            rel.cols
                                .iter()
                                .enumerate()
                                .map(|(i, c)| {
                                    Expr::Const(
                                        row.as_ref()
                                            .and_then(|r| r.get(i).cloned())
                                            .unwrap_or(Value::Null),
                                        out_type(&c.ty),
                                    )
                                })
                                .collect()
                        }
                        _ => return Err(unsupported("this multi-column SET source")),
                    };
                    if values.len() != names.len() {
                        return Err(err(
                            SqlState::SyntaxError,
                            "number of columns does not match number of values",
                        ));
                    }
                    for (n, v) in names.iter().zip(values) {
                        let n = object_name(n).last().cloned().unwrap_or_default();
                        let p = self.target_column(&def, &n)?;
                        sets.push((p, coerce_assign(v, &def.columns[p])?));
                    }
                }
            }
        }
        let filter = self.bind_filter(u.selection.as_ref(), &scope)?;
        let done = self.modify_matching(
            &def,
            &extra,
            &filter,
            &scope,
            |tid, row, combined| {
                let mut new = row.to_vec();
                for (p, e) in &sets {
                    new[*p] = e.eval(combined, &self.cx)?;
                }
                self.apply_generated(&generated, &mut new)?;
                self.check_row(&def, &new)?;
                let payload = encode_row(&new)?;
                let keys = Self::keys(&def, &new);
                let mut t = self.txn.borrow_mut();
                let o = self
                    .eng
                    .block_on(t.update(RelId(def.rel), tid, &payload, &keys))
                    .map_err(|e| Self::unique_error(&def, e))?;
                Ok((o, new))
            },
            |row, combined, new| {
                self.fk_parent_changed(&def, row, Some(&new))?;
                let mut out = new;
                out.extend(combined[def.columns.len()..].iter().cloned());
                Ok(out)
            },
        )?;
        let n = done.len();
        self.returning(u.returning.as_ref(), &scope, done, format!("UPDATE {n}"))
    }

    fn target_column(&self, def: &TableDef, n: &str) -> Result<usize, PgError> {
        def.column(n).ok_or_else(|| {
            err(
                SqlState::UndefinedColumn,
                format!("column \"{n}\" of relation \"{}\" does not exist", def.name),
            )
        })
    }

    fn delete(&self, d: &ast::Delete) -> Result<QueryResult, PgError> {
        let from = match &d.from {
            ast::FromTable::WithFromKeyword(v) | ast::FromTable::WithoutKeyword(v) => v,
        };
        if from.len() != 1 || !from[0].joins.is_empty() {
            return Err(unsupported("DELETE from several tables"));
        }
        let (def, alias) = self.target_table(&from[0].relation)?;
        let extra = self.cross_join_from(d.using.as_deref().unwrap_or_default())?;
        let mut scope = Self::table_scope(&def, alias.as_deref());
        scope.extend(extra.cols.iter().cloned());
        let filter = self.bind_filter(d.selection.as_ref(), &scope)?;
        let done = self.modify_matching(
            &def,
            &extra,
            &filter,
            &scope,
            |tid, _, _| {
                let mut t = self.txn.borrow_mut();
                Ok((self.eng.block_on(t.delete(RelId(def.rel), tid))?, ()))
            },
            |row, combined, ()| {
                self.fk_parent_changed(&def, row, None)?;
                Ok(combined)
            },
        )?;
        let n = done.len();
        self.returning(d.returning.as_ref(), &scope, done, format!("DELETE {n}"))
    }
}

fn out_type(t: &DataType) -> DataType {
    if *t == DataType::Unknown {
        DataType::Text
    } else {
        t.clone()
    }
}

fn result_of(rel: Rel, verb: &str) -> QueryResult {
    let n = rel.rows.len();
    QueryResult {
        columns: rel
            .cols
            .into_iter()
            .map(|c| (c.name, out_type(&c.ty)))
            .collect(),
        rows: rel.rows,
        tag: format!("{verb} {n}"),
    }
}

fn coerce_assign(e: Expr, col: &ColumnDef) -> Result<Expr, PgError> {
    let from = e.data_type();
    coerce(e, &col.ty, CastContext::Assignment).map_err(|x| {
        if x.code == SqlState::DatatypeMismatch || x.code == SqlState::CannotCoerce {
            err(
                SqlState::DatatypeMismatch,
                format!(
                    "column \"{}\" is of type {} but expression is of type {}",
                    col.name,
                    col.ty.name(),
                    from.name()
                ),
            )
        } else {
            x
        }
    })
}

/// Convert `e` to type `to` in context `ctx`: unknown literals are parsed as `to` now (22P02 etc.
/// for bad input), other types get a cast node when PostgreSQL allows the cast in `ctx`
/// (42804 otherwise).
fn coerce(e: Expr, to: &DataType, ctx: CastContext) -> Result<Expr, PgError> {
    let from = e.data_type();
    if from == *to {
        return Ok(e);
    }
    if *to == DataType::Unknown {
        return Ok(e);
    }
    match e {
        Expr::Const(Value::Null, _) => Ok(Expr::Const(Value::Null, to.clone())),
        Expr::Const(v, DataType::Unknown) => {
            let v = cast_value(
                v,
                &DataType::Unknown,
                to,
                if ctx == CastContext::Implicit {
                    CastContext::Assignment
                } else {
                    ctx
                },
                &TimeZone::default(),
            )?;
            Ok(Expr::Const(v, to.clone()))
        }
        e => {
            if from.without_typmod() == to.without_typmod() && ctx == CastContext::Implicit {
                return Ok(e);
            }
            if can_cast(&from, to, ctx) {
                let kind = match ctx {
                    CastContext::Explicit => CastKind::Explicit,
                    CastContext::Assignment => CastKind::Assignment,
                    CastContext::Implicit => CastKind::Implicit,
                };
                Ok(Expr::Cast(Box::new(e), to.clone(), kind))
            } else {
                Err(err(
                    SqlState::DatatypeMismatch,
                    format!("cannot convert type {} to {}", from.name(), to.name()),
                ))
            }
        }
    }
}

impl<'s> Cx<'s> {
    fn plain(cols: &'s [ColInfo]) -> Cx<'s> {
        Cx {
            cols,
            agg: None,
            win: None,
            clause: "this context",
        }
    }
    fn clause(cols: &'s [ColInfo], clause: &'static str) -> Cx<'s> {
        Cx {
            cols,
            agg: None,
            win: None,
            clause,
        }
    }
}

pub(crate) mod agg;
mod alter;
mod bind;
mod bind_funcs;
pub mod copy;
mod fk;
mod grouping;
pub(crate) mod load;
// The planner's SELECT front end: lives with the planner, but binds with this module's internals.
#[path = "../plan/bind.rs"]
pub(crate) mod plan_bind;
mod query;
pub(crate) mod rowset;
mod srf;
mod views;
mod window;

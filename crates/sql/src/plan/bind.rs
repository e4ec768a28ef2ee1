//! The planner's front end: sqlparser's SELECT to a [`LogicalSelect`], with the interpreter's
//! binder (names, types, implicit casts, GROUP BY rules, uncorrelated subqueries evaluated
//! once), then [`Planner`] and the streaming executor; EXPLAIN; the access path of UPDATE and
//! DELETE target rows.
//!
//! This file belongs to the planner (`crate::plan`) but is compiled as `exec::plan_bind`, a child
//! of the interpreter's module, because it reuses the binder's internals.
//!
//! Shapes it takes (anything else, and any binding error, falls back to the interpreter, which
//! then reports the error itself): a SELECT, or a UNION [ALL] of SELECTs whose column types
//! agree (no INTERSECT/EXCEPT, VALUES, CTE, FOR UPDATE), over base tables, views and derived
//! tables that are themselves plannable (no CTE references, catalog views, sequences, table
//! functions or LATERAL), joined INNER/LEFT/RIGHT/FULL/CROSS with ON/USING/NATURAL or by commas;
//! WHERE without correlated subqueries; GROUP BY expressions (no GROUPING SETS/ROLLUP/CUBE),
//! aggregates, HAVING; DISTINCT (not DISTINCT ON); ORDER BY; LIMIT/OFFSET/FETCH FIRST; no window
//! functions and no set-returning functions.

use std::cell::RefCell;

use pgxc_storage::mvcc::{KeyRange, Scan};

use super::*;
use crate::plan::executor::{self, ExecCtx, Operator};
use crate::plan::explain::{explain, ExplainOptions};
use crate::plan::planner::{
    conjuncts, BaseRel, IndexInfo, JoinTree, LogicalAgg, LogicalSelect, Planner,
};
use crate::plan::{
    AggCall, CursorId, JoinType, PhysicalPlan, PlanOptions, ScanColumn, SortSpec, TableAccess,
};

/// Set-returning functions: a select list calling one is the interpreter's (it expands rows).
/// Also what a coordinator must not push under a merged ORDER BY (`pgxc_sql::SET_RETURNING_FUNCTIONS`).
pub const SRFS: &[&str] = &[
    "generate_series",
    "generate_subscripts",
    "unnest",
    "regexp_matches",
    "regexp_split_to_table",
    "string_to_table",
    "json_array_elements",
    "json_array_elements_text",
    "jsonb_array_elements",
    "jsonb_array_elements_text",
    "json_each",
    "json_each_text",
    "jsonb_each",
    "jsonb_each_text",
    "json_object_keys",
    "jsonb_object_keys",
    "json_populate_recordset",
    "jsonb_populate_recordset",
    "json_to_recordset",
    "jsonb_to_recordset",
    "jsonb_path_query",
    "pg_get_keywords",
];

/// Storage access for the executor: the statement's transaction, through the engine's
/// `block_on`.
struct TxnAccess<'e, 'a> {
    ex: &'e Exec<'a>,
    scans: Vec<Option<Scan>>,
}

impl TxnAccess<'_, '_> {
    fn add(&mut self, s: Scan) -> CursorId {
        if let Some(i) = self.scans.iter().position(Option::is_none) {
            self.scans[i] = Some(s);
            return CursorId(i);
        }
        self.scans.push(Some(s));
        CursorId(self.scans.len() - 1)
    }
}

impl TableAccess for TxnAccess<'_, '_> {
    fn open_scan(&mut self, rel: u64) -> Result<CursorId, PgError> {
        let s = {
            let mut t = self.ex.txn.borrow_mut();
            self.ex.eng.block_on(t.scan(RelId(rel), false))?
        };
        Ok(self.add(s))
    }

    fn open_index_scan(
        &mut self,
        index: u64,
        range: KeyRange,
        reverse: bool,
    ) -> Result<CursorId, PgError> {
        let s = {
            let mut t = self.ex.txn.borrow_mut();
            self.ex
                .eng
                .block_on(t.index_scan(RelId(index), range, reverse))?
        };
        Ok(self.add(s))
    }

    fn next_rows(&mut self, cursor: CursorId, max: usize) -> Result<Vec<Row>, PgError> {
        let Some(Some(s)) = self.scans.get_mut(cursor.0) else {
            return Ok(Vec::new());
        };
        let mut t = self.ex.txn.borrow_mut();
        self.ex.eng.block_on(t.next(s, max))
    }

    fn close(&mut self, cursor: CursorId) {
        if let Some(s) = self.scans.get_mut(cursor.0) {
            *s = None;
        }
    }

    fn fetch(&mut self, rel: u64, tid: Tid) -> Result<Option<Row>, PgError> {
        let mut t = self.ex.txn.borrow_mut();
        self.ex.eng.block_on(t.fetch(RelId(rel), tid))
    }

    fn estimated_tuples(&self, rel: u64) -> Option<f64> {
        self.ex
            .eng
            .store()
            .rel_stats(RelId(rel))
            .ok()
            .map(|s| s.heap_tuples as f64)
    }
}

/// A planned SELECT: the plan and its output columns.
pub(super) struct Planned {
    plan: PhysicalPlan,
    cols: Vec<ColInfo>,
}

/// Where an ORDER BY item comes from (as the interpreter resolves it).
enum Src {
    Col(usize),
    Expr(Expr),
}

/// Whether `text` calls a set-returning function: one of [`SRFS`] or any the interpreter
/// expands (`exec::srf`).
fn mentions_srf(text: &str) -> bool {
    if mentions_any(text, SRFS) {
        return true;
    }
    let l = text.to_ascii_lowercase();
    let b = l.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_alphabetic() || b[i] == b'_' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            if l[i..].trim_start().starts_with('(') && super::srf::srf_kind(&l[start..i]).is_some()
            {
                return true;
            }
        } else {
            i += 1;
        }
    }
    false
}

fn mentions_any(text: &str, names: &[&str]) -> bool {
    let l = text.to_ascii_lowercase();
    names.iter().any(|n| {
        l.match_indices(n).any(|(i, _)| {
            let before = i == 0 || {
                let c = l.as_bytes()[i - 1];
                !(c.is_ascii_alphanumeric() || c == b'_')
            };
            let after = l[i + n.len()..].trim_start().starts_with('(');
            before && after
        })
    })
}

impl<'a> Exec<'a> {
    /// The planner settings of this statement, from the session's settings.
    fn plan_opts(&self) -> PlanOptions {
        let mut o = match &self.cx.settings {
            Some(st) => PlanOptions::from_gucs(|n| st.get(n).ok()),
            None => PlanOptions::default(),
        };
        o.cancel = self.cancel.clone();
        o
    }

    fn access(&self) -> TxnAccess<'_, 'a> {
        TxnAccess {
            ex: self,
            scans: Vec::new(),
        }
    }

    /// Run `q` through the planner and the streaming executor when its shape is supported:
    /// `Ok(None)` means "use the interpreter".
    pub(super) fn planned_query(&self, q: &ast::Query) -> Result<Option<Rel>, PgError> {
        let Some(p) = self.plan_query(q) else {
            return Ok(None);
        };
        let opts = self.plan_opts();
        let mut acc = self.access();
        let mut cx = ExecCtx {
            access: &mut acc,
            eval: &self.cx,
            opts: &opts,
        };
        let rows = executor::run(&p.plan, &mut cx)?;
        Ok(Some(Rel { cols: p.cols, rows }))
    }

    /// Plan a query, or `None` for a shape the planner does not take (or a binding error, which
    /// the interpreter then reports).
    pub(super) fn plan_query(&self, q: &ast::Query) -> Option<Planned> {
        let opts = self.plan_opts();
        if !opts.use_planner || self.tid_scan.get() {
            return None;
        }
        if matches!(
            q.body.as_ref(),
            ast::SetExpr::SetOperation { .. } | ast::SetExpr::Values(_)
        ) {
            return self.plan_set_query(q, &opts).ok().flatten();
        }
        let (lq, cols) = self.bind_select(q).ok().flatten()?;
        let plan = Planner::new(&opts).plan(&lq);
        Some(Planned { plan, cols })
    }

    /// `UNION [ALL]` of plannable SELECTs whose column types agree, with ORDER BY output
    /// positions or names and LIMIT/OFFSET: Append (+ Distinct) (+ Sort / TopN) (+ Limit).
    fn plan_set_query(
        &self,
        q: &ast::Query,
        opts: &PlanOptions,
    ) -> Result<Option<Planned>, PgError> {
        if q.with.is_some()
            || !q.locks.is_empty()
            || q.for_clause.is_some()
            || q.settings.is_some()
            || q.format_clause.is_some()
            || !q.pipe_operators.is_empty()
            || q.fetch.as_ref().is_some_and(|f| f.percent || f.with_ties)
        {
            return Ok(None);
        }
        let Some((mut plan, mut cols, _)) = self.plan_set_expr(q.body.as_ref(), opts)? else {
            return Ok(None);
        };
        let order: &[ast::OrderByExpr] = match &q.order_by {
            Some(ast::OrderBy {
                kind: ast::OrderByKind::Expressions(v),
                ..
            }) => v,
            Some(_) => return Ok(None),
            None => &[],
        };
        let mut keys = Vec::new();
        for o in order {
            if o.with_fill.is_some() {
                return Ok(None);
            }
            let col = match &o.expr {
                A::Value(v) => match &v.value {
                    ast::Value::Number(n, _) => match n.parse::<usize>() {
                        Ok(k) if k >= 1 && k <= cols.len() => k - 1,
                        _ => return Ok(None),
                    },
                    _ => return Ok(None),
                },
                A::Identifier(id) => {
                    let n = normalize_ident(id);
                    match cols.iter().position(|c| c.name == n && !c.hidden) {
                        Some(i) => i,
                        None => return Ok(None),
                    }
                }
                _ => return Ok(None),
            };
            let k = sort_key_of(o, col);
            keys.push(SortSpec {
                col: k.col,
                desc: k.desc,
                nulls_first: k.nulls_first,
            });
        }
        let Some((limit, offset)) = self.limit_offset(q)? else {
            return Ok(None);
        };
        let est = *plan.est();
        if !keys.is_empty() {
            plan = match limit {
                Some(l) if l.saturating_add(offset) < 1_000_000 => PhysicalPlan::TopN {
                    input: Box::new(plan),
                    keys,
                    limit: l,
                    offset,
                    est,
                },
                _ => PhysicalPlan::Sort {
                    input: Box::new(plan),
                    keys,
                    est,
                },
            };
        }
        let topn = matches!(plan, PhysicalPlan::TopN { .. });
        if !topn && (limit.is_some() || offset > 0) {
            plan = PhysicalPlan::Limit {
                input: Box::new(plan),
                limit,
                offset,
                est,
            };
        }
        for c in cols.iter_mut() {
            c.ty = out_type(&c.ty);
        }
        Ok(Some(Planned { plan, cols }))
    }

    /// One operand of a set operation: its plan, columns and (unresolved) column types.
    #[allow(clippy::type_complexity)]
    fn plan_set_expr(
        &self,
        e: &ast::SetExpr,
        opts: &PlanOptions,
    ) -> Result<Option<(PhysicalPlan, Vec<ColInfo>, Vec<DataType>)>, PgError> {
        match e {
            ast::SetExpr::Select(_) => {
                let q = ast::Query {
                    with: None,
                    body: Box::new(e.clone()),
                    order_by: None,
                    limit_clause: None,
                    fetch: None,
                    locks: Vec::new(),
                    for_clause: None,
                    settings: None,
                    format_clause: None,
                    pipe_operators: Vec::new(),
                };
                let Some((lq, cols)) = self.bind_select(&q)? else {
                    return Ok(None);
                };
                let raw = lq.project[..lq.width].iter().map(Expr::data_type).collect();
                Ok(Some((Planner::new(opts).plan(&lq), cols, raw)))
            }
            ast::SetExpr::Values(v) => {
                // As the interpreter's VALUES: bound without columns, typed per column by
                // PostgreSQL's UNION-style resolution, evaluated once.
                let width = v.rows.first().map(|r| r.content.len()).unwrap_or(0);
                let mut bound: Vec<Vec<Expr>> = Vec::new();
                for r in &v.rows {
                    if r.content.len() != width {
                        return Ok(None);
                    }
                    bound.push(
                        r.content
                            .iter()
                            .map(|e| self.bind(e, &Cx::plain(&[])))
                            .collect::<Result<_, _>>()?,
                    );
                }
                if bound
                    .iter()
                    .flatten()
                    .any(crate::plan::planner::is_volatile)
                {
                    return Ok(None);
                }
                let mut cols = Vec::new();
                for c in 0..width {
                    let types: Vec<DataType> = bound.iter().map(|r| r[c].data_type()).collect();
                    cols.push(ColInfo {
                        table: None,
                        name: format!("column{}", c + 1),
                        ty: common_type(&types)?,
                        hidden: false,
                    });
                }
                let mut rows = Vec::new();
                for r in bound {
                    let mut out = Vec::new();
                    for (e, c) in r.into_iter().zip(&cols) {
                        out.push(coerce(e, &c.ty, CastContext::Implicit)?.eval(&[], &self.cx)?);
                    }
                    rows.push(out);
                }
                let raw = cols.iter().map(|c| c.ty.clone()).collect();
                let n = rows.len() as f64;
                let plan = PhysicalPlan::Values {
                    rows,
                    width,
                    est: crate::plan::Estimate {
                        startup: 0.0,
                        total: n * 0.01,
                        rows: n,
                        width: 4 * width as u32,
                    },
                };
                Ok(Some((plan, cols, raw)))
            }
            ast::SetExpr::SetOperation {
                left,
                op: ast::SetOperator::Union,
                set_quantifier,
                right,
            } => {
                let all = match set_quantifier {
                    ast::SetQuantifier::All => true,
                    ast::SetQuantifier::None | ast::SetQuantifier::Distinct => false,
                    _ => return Ok(None),
                };
                let Some((lp, lcols, lraw)) = self.plan_set_expr(left, opts)? else {
                    return Ok(None);
                };
                let Some((rp, _, rraw)) = self.plan_set_expr(right, opts)? else {
                    return Ok(None);
                };
                if lraw.len() != rraw.len() {
                    return Ok(None);
                }
                // Only operands of one type per column (no casts between them).
                for (a, b) in lraw.iter().zip(&rraw) {
                    if *a == DataType::Unknown
                        || common_type(&[a.clone(), b.clone()]).ok().as_ref() != Some(a)
                        || a != b
                    {
                        return Ok(None);
                    }
                }
                let width = lraw.len();
                let (le, re) = (*lp.est(), *rp.est());
                let est = crate::plan::Estimate {
                    startup: le.startup,
                    total: le.total + re.total,
                    rows: le.rows + re.rows,
                    width: le.width.max(re.width),
                };
                let mut plan = PhysicalPlan::Append {
                    inputs: vec![lp, rp],
                    est,
                };
                if !all {
                    plan = PhysicalPlan::Distinct {
                        input: Box::new(plan),
                        width,
                        est,
                    };
                }
                let cols = lcols
                    .into_iter()
                    .map(|mut c| {
                        c.table = None;
                        c
                    })
                    .collect();
                Ok(Some((plan, cols, lraw)))
            }
            _ => Ok(None),
        }
    }

    fn base_rel(
        &self,
        name: &ast::ObjectName,
        alias: Option<&ast::TableAlias>,
    ) -> Result<Option<(BaseRel, Vec<ColInfo>)>, PgError> {
        let parts = object_name(name);
        if parts.len() == 1 && self.ctes.borrow().iter().any(|(n, _)| *n == parts[0]) {
            return Ok(None);
        }
        if let Some(r) = self.rowset_base_rel(&parts, alias) {
            return Ok(Some(r));
        }
        if parts
            .iter()
            .any(|p| p.starts_with("pg_") || p == "information_schema")
        {
            return Ok(None);
        }
        let key = match parts.as_slice() {
            [n] => format!("public.{n}"),
            [.., s, n] => format!("{s}.{n}"),
            [] => return Ok(None),
        };
        if self.eng.seqs().contains_key(&key) {
            return Ok(None);
        }
        let Some((_, def)) = self.find_table_opt(name)? else {
            return Ok(None);
        };
        let qual = alias
            .map(|a| normalize_ident(&a.name))
            .unwrap_or_else(|| parts.last().cloned().unwrap_or_default());
        if let Some(v) = &def.view {
            let q = match crate::parser::parse(v)?.into_iter().next() {
                Some(Statement::Sql(ast::Statement::Query(q))) => q,
                _ => return Ok(None),
            };
            let Some(mut p) = self.plan_query(&q) else {
                return Ok(None);
            };
            for (c, d) in p.cols.iter_mut().zip(&def.columns) {
                c.name = d.name.clone();
                c.hidden = false;
            }
            return Ok(Some(Self::derived_rel(p, &def.name, qual, alias)));
        }
        if alias.is_some_and(|a| a.columns.len() > def.columns.len()) {
            return Ok(None);
        }
        let mut cols = Self::table_scope(&def, None);
        for c in cols.iter_mut() {
            c.table = Some(qual.clone());
        }
        if let Some(a) = alias {
            for (c, n) in cols.iter_mut().zip(&a.columns) {
                c.name = normalize_ident(&n.name);
            }
        }
        let tuples = self
            .eng
            .store()
            .rel_stats(RelId(def.rel))
            .map(|s| s.heap_tuples as f64)
            .unwrap_or(1000.0);
        let rel = BaseRel {
            rel: def.rel,
            table: def.name.clone(),
            alias: qual,
            columns: def
                .columns
                .iter()
                .map(|c| ScanColumn {
                    name: c.name.clone(),
                    ty: c.ty.clone(),
                })
                .collect(),
            indexes: def
                .indexes
                .iter()
                // Expression indexes (no key columns) are not access paths yet.
                .filter(|i| !i.columns.is_empty())
                .map(|i| IndexInfo {
                    id: i.rel,
                    name: i.name.clone(),
                    columns: i.columns.clone(),
                    unique: i.unique,
                })
                .collect(),
            tuples,
            source: None,
        };
        Ok(Some((rel, cols)))
    }

    /// A planned subquery (derived table or view) as a FROM item named `qual`.
    fn derived_rel(
        p: Planned,
        name: &str,
        qual: String,
        alias: Option<&ast::TableAlias>,
    ) -> (BaseRel, Vec<ColInfo>) {
        let mut cols = p.cols;
        for c in cols.iter_mut() {
            c.table = Some(qual.clone());
        }
        if let Some(a) = alias {
            for (c, n) in cols.iter_mut().zip(&a.columns) {
                c.name = normalize_ident(&n.name);
            }
        }
        let rel = BaseRel {
            rel: 0,
            table: name.to_string(),
            alias: qual,
            columns: cols
                .iter()
                .map(|c| ScanColumn {
                    name: c.name.clone(),
                    ty: c.ty.clone(),
                })
                .collect(),
            indexes: Vec::new(),
            tuples: p.plan.est().rows,
            source: Some(Box::new(p.plan)),
        };
        (rel, cols)
    }

    /// One FROM item: its join tree (ON conditions shifted to absolute positions starting at
    /// `base`), appending base relations to `rels`, and its columns.
    fn bind_from_factor(
        &self,
        tf: &ast::TableFactor,
        base: usize,
        rels: &mut Vec<BaseRel>,
    ) -> Result<Option<(JoinTree, Vec<ColInfo>)>, PgError> {
        match tf {
            ast::TableFactor::Table {
                name,
                alias,
                args: None,
                with_hints,
                version: None,
                with_ordinality: false,
                partitions,
                ..
            } if with_hints.is_empty() && partitions.is_empty() => {
                let Some((rel, cols)) = self.base_rel(name, alias.as_ref())? else {
                    return Ok(None);
                };
                rels.push(rel);
                Ok(Some((JoinTree::Rel(rels.len() - 1), cols)))
            }
            ast::TableFactor::NestedJoin {
                table_with_joins,
                alias: None,
            } => self.bind_from_twj(table_with_joins, base, rels),
            ast::TableFactor::Derived {
                lateral: false,
                subquery,
                alias: Some(alias),
                ..
            } => {
                let Some(p) = self.plan_query(subquery) else {
                    return Ok(None);
                };
                let qual = normalize_ident(&alias.name);
                let (rel, cols) = Self::derived_rel(p, &qual.clone(), qual, Some(alias));
                rels.push(rel);
                Ok(Some((JoinTree::Rel(rels.len() - 1), cols)))
            }
            _ => Ok(None),
        }
    }

    fn bind_from_twj(
        &self,
        twj: &ast::TableWithJoins,
        base: usize,
        rels: &mut Vec<BaseRel>,
    ) -> Result<Option<(JoinTree, Vec<ColInfo>)>, PgError> {
        use ast::JoinOperator as J;
        let first = rels.len();
        let Some((mut tree, mut cols)) = self.bind_from_factor(&twj.relation, base, rels)? else {
            return Ok(None);
        };
        for j in &twj.joins {
            let (kind, c) = match &j.join_operator {
                J::Join(c) | J::Inner(c) => (JoinType::Inner, Some(c)),
                J::Left(c) | J::LeftOuter(c) => (JoinType::Left, Some(c)),
                J::Right(c) | J::RightOuter(c) => (JoinType::Right, Some(c)),
                J::FullOuter(c) => (JoinType::Full, Some(c)),
                J::CrossJoin(ast::JoinConstraint::None) => (JoinType::Inner, None),
                _ => return Ok(None),
            };
            if matches!(c, Some(ast::JoinConstraint::None)) {
                return Ok(None);
            }
            let merging = matches!(
                c,
                Some(ast::JoinConstraint::Using(_) | ast::JoinConstraint::Natural)
            );
            let Some((rtree, mut rcols)) =
                self.bind_from_factor(&j.relation, base + cols.len(), rels)?
            else {
                return Ok(None);
            };
            if duplicate_alias(&cols, &rcols) {
                return Ok(None);
            }
            let nl = cols.len();
            let mut using: Vec<String> = Vec::new();
            match c {
                Some(ast::JoinConstraint::Using(names)) => {
                    using = names
                        .iter()
                        .map(|n| object_name(n).last().cloned().unwrap_or_default())
                        .collect()
                }
                Some(ast::JoinConstraint::Natural) => {
                    using = cols
                        .iter()
                        .filter(|c| {
                            !c.hidden && rcols.iter().any(|r| r.name == c.name && !r.hidden)
                        })
                        .map(|c| c.name.clone())
                        .collect()
                }
                _ => {}
            }
            let mut pairs = Vec::new();
            for u in &using {
                let li = cols.iter().position(|c| c.name == *u && !c.hidden);
                let ri = rcols.iter().position(|c| c.name == *u && !c.hidden);
                let (Some(li), Some(ri)) = (li, ri) else {
                    return Ok(None);
                };
                rcols[ri].hidden = true;
                pairs.push((li, nl + ri));
            }
            let mut all = cols.clone();
            all.extend(rcols.iter().cloned());
            let mut parts = Vec::new();
            for &(a, b) in &pairs {
                let x = Expr::Column(a, all[a].ty.clone());
                let y = Expr::Column(b, all[b].ty.clone());
                parts.push(self.binary_expr(BinOp::Eq, x, y)?);
            }
            if let Some(ast::JoinConstraint::On(e)) = c {
                if has_subquery(e) {
                    return Ok(None);
                }
                parts.push(coerce(
                    self.bind(e, &Cx::clause(&all, "JOIN conditions"))?,
                    &DataType::Bool,
                    CastContext::Implicit,
                )?);
            }
            let mut cond = Vec::new();
            for p in parts {
                conjuncts(
                    crate::plan::planner::map_columns(&p, &|i| i + base),
                    &mut cond,
                );
            }
            tree = JoinTree::Join {
                left: Box::new(tree),
                right: Box::new(rtree),
                kind,
                cond,
            };
            cols = all;
            if merging {
                // USING / NATURAL: the merged columns come first (the left value, the right one
                // for a RIGHT join, COALESCE of both for a FULL join) and the joined columns stay
                // reachable qualified only, as the interpreter's join gives them. The join so
                // far becomes a derived relation computing that row.
                let Some((t, c)) = self.merge_using(tree, cols, &pairs, kind, first, base, rels)
                else {
                    return Ok(None);
                };
                tree = t;
                cols = c;
            }
        }
        Ok(Some((tree, cols)))
    }

    /// Wrap the join `tree` (base relations `rels[first..]`, columns `cols` from full-row
    /// position `base`) of a USING / NATURAL join with column pairs `pairs` into one derived
    /// relation whose row is `merged columns ‖ cols`.
    #[allow(clippy::too_many_arguments)]
    fn merge_using(
        &self,
        tree: JoinTree,
        mut cols: Vec<ColInfo>,
        pairs: &[(usize, usize)],
        kind: JoinType,
        first: usize,
        base: usize,
        rels: &mut Vec<BaseRel>,
    ) -> Option<(JoinTree, Vec<ColInfo>)> {
        fn renumber(t: JoinTree, first: usize, base: usize) -> JoinTree {
            match t {
                JoinTree::Rel(i) => JoinTree::Rel(i - first),
                JoinTree::Join {
                    left,
                    right,
                    kind,
                    cond,
                } => JoinTree::Join {
                    left: Box::new(renumber(*left, first, base)),
                    right: Box::new(renumber(*right, first, base)),
                    kind,
                    cond: cond
                        .iter()
                        .map(|e| crate::plan::planner::map_columns(e, &|x| x - base))
                        .collect(),
                },
            }
        }
        if rels.len() < first {
            return None;
        }
        let sub_rels: Vec<BaseRel> = rels.drain(first..).collect();
        let mut project: Vec<Expr> = Vec::new();
        let mut merged_cols = Vec::new();
        for &(a, b) in pairs {
            let (ta, tb) = (cols[a].ty.clone(), cols[b].ty.clone());
            project.push(match kind {
                JoinType::Right => Expr::Column(b, tb),
                JoinType::Full => Expr::Coalesce(
                    vec![Expr::Column(a, ta.clone()), Expr::Column(b, tb)],
                    ta.clone(),
                ),
                _ => Expr::Column(a, ta.clone()),
            });
            merged_cols.push(ColInfo {
                table: None,
                name: cols[a].name.clone(),
                ty: ta,
                hidden: false,
            });
        }
        for &(a, _) in pairs {
            cols[a].hidden = true;
        }
        project.extend(
            cols.iter()
                .enumerate()
                .map(|(i, c)| Expr::Column(i, c.ty.clone())),
        );
        merged_cols.extend(cols);
        let width = project.len();
        let lq = LogicalSelect {
            rels: sub_rels,
            tree: Some(renumber(tree, first, base)),
            filter: Vec::new(),
            agg: None,
            having: None,
            project,
            names: merged_cols.iter().map(|c| c.name.clone()).collect(),
            width,
            distinct: false,
            order: Vec::new(),
            limit: None,
            offset: 0,
        };
        let plan = Planner::new(&self.plan_opts()).plan(&lq);
        rels.push(BaseRel {
            rel: 0,
            table: "join".into(),
            alias: String::new(),
            columns: merged_cols
                .iter()
                .map(|c| ScanColumn {
                    name: c.name.clone(),
                    ty: c.ty.clone(),
                })
                .collect(),
            indexes: Vec::new(),
            tuples: plan.est().rows,
            source: Some(Box::new(plan)),
        });
        Some((JoinTree::Rel(rels.len() - 1), merged_cols))
    }

    /// Bind a SELECT the planner takes: `Ok(None)` for other shapes; errors are binding errors.
    fn bind_select(
        &self,
        q: &ast::Query,
    ) -> Result<Option<(LogicalSelect, Vec<ColInfo>)>, PgError> {
        if q.with.is_some()
            || !q.locks.is_empty()
            || q.for_clause.is_some()
            || q.settings.is_some()
            || q.format_clause.is_some()
            || !q.pipe_operators.is_empty()
        {
            return Ok(None);
        }
        let ast::SetExpr::Select(s) = q.body.as_ref() else {
            return Ok(None);
        };
        if matches!(s.distinct, Some(ast::Distinct::On(_)))
            || s.top.is_some()
            || s.exclude.is_some()
            || s.into.is_some()
            || !s.lateral_views.is_empty()
            || s.prewhere.is_some()
            || !s.connect_by.is_empty()
            || !s.cluster_by.is_empty()
            || !s.distribute_by.is_empty()
            || !s.sort_by.is_empty()
            || !s.named_window.is_empty()
            || s.qualify.is_some()
            || s.value_table_mode.is_some()
        {
            return Ok(None);
        }
        let group_ast: Vec<&A> = match &s.group_by {
            ast::GroupByExpr::Expressions(v, m) if m.is_empty() => v.iter().collect(),
            _ => return Ok(None),
        };
        if group_ast.iter().any(|g| {
            matches!(
                g,
                A::Rollup(_) | A::Cube(_) | A::GroupingSets(_) | A::Tuple(_)
            )
        }) {
            return Ok(None);
        }
        let order: &[ast::OrderByExpr] = match &q.order_by {
            Some(ast::OrderBy {
                kind: ast::OrderByKind::Expressions(v),
                ..
            }) => v,
            Some(_) => return Ok(None),
            None => &[],
        };
        if order.iter().any(|o| o.with_fill.is_some()) {
            return Ok(None);
        }
        // Set-returning and window functions stay with the interpreter.
        let mut text = String::new();
        for p in &s.projection {
            text.push_str(&p.to_string());
            text.push(' ');
        }
        for o in order {
            text.push_str(&o.to_string());
            text.push(' ');
        }
        if let Some(h) = &s.having {
            text.push_str(&h.to_string());
        }
        if let Some(w) = &s.selection {
            text.push(' ');
            text.push_str(&w.to_string());
        }
        let upper = text.to_ascii_uppercase();
        if mentions_srf(&text)
            || upper.contains(" OVER ")
            || upper.contains(" OVER(")
            || upper.contains("GROUPING(")
        {
            return Ok(None);
        }
        if q.fetch.as_ref().is_some_and(|f| f.percent || f.with_ties) {
            return Ok(None);
        }
        // FROM.
        let mut rels = Vec::new();
        let mut cols: Vec<ColInfo> = Vec::new();
        let mut tree: Option<JoinTree> = None;
        for twj in &s.from {
            let Some((t, c)) = self.bind_from_twj(twj, cols.len(), &mut rels)? else {
                return Ok(None);
            };
            if duplicate_alias(&cols, &c) {
                return Ok(None);
            }
            cols.extend(c);
            tree = Some(match tree {
                None => t,
                Some(l) => JoinTree::Join {
                    left: Box::new(l),
                    right: Box::new(t),
                    kind: JoinType::Inner,
                    cond: Vec::new(),
                },
            });
        }
        // WHERE.
        let mut filter = Vec::new();
        if let Some(w) = &s.selection {
            let f = self.bind(w, &Cx::clause(&cols, "WHERE"))?;
            if f.data_type() != DataType::Bool && f.data_type() != DataType::Unknown {
                return Ok(None);
            }
            conjuncts(
                coerce(f, &DataType::Bool, CastContext::Implicit)?,
                &mut filter,
            );
        }
        // Grouping, as the interpreter binds it.
        let proj_exprs: Vec<&A> = s
            .projection
            .iter()
            .filter_map(|p| match p {
                ast::SelectItem::UnnamedExpr(e)
                | ast::SelectItem::ExprWithAlias { expr: e, .. } => Some(e),
                _ => None,
            })
            .collect();
        let is_agg = !group_ast.is_empty()
            || s.having.is_some()
            || proj_exprs.iter().any(|e| contains_agg(e))
            || order.iter().any(|o| contains_agg(&o.expr));
        let aggcx = RefCell::new(AggCx::default());
        if is_agg {
            let mut ag = AggCx::default();
            for g in &group_ast {
                let mut target: &A = g;
                if let A::Value(v) = g {
                    if let ast::Value::Number(n, _) = &v.value {
                        let k: usize = n.parse().unwrap_or(0);
                        let Some(t) = k.checked_sub(1).and_then(|k| s.projection.get(k)).and_then(
                            |p| match p {
                                ast::SelectItem::UnnamedExpr(e)
                                | ast::SelectItem::ExprWithAlias { expr: e, .. } => Some(e),
                                _ => None,
                            },
                        ) else {
                            return Ok(None);
                        };
                        target = t;
                    }
                }
                if let A::Identifier(id) = g {
                    let n = normalize_ident(id);
                    if !cols.iter().any(|c| c.name == n) {
                        for p in &s.projection {
                            if let ast::SelectItem::ExprWithAlias { expr, alias } = p {
                                if normalize_ident(alias) == n {
                                    target = expr;
                                }
                            }
                        }
                    }
                }
                let e = self.bind(target, &Cx::clause(&cols, "GROUP BY"))?;
                ag.group_ast.push(target.to_string());
                ag.group_exprs.push(e);
            }
            *aggcx.borrow_mut() = ag;
        }
        let cx = Cx {
            cols: &cols,
            agg: if is_agg { Some(&aggcx) } else { None },
            win: None,
            clause: "this context",
        };
        let (exprs, names) = self.bind_projection_cx(&s.projection, &cx)?;
        let having = match &s.having {
            Some(h) => Some(coerce(
                self.bind(h, &cx)?,
                &DataType::Bool,
                CastContext::Implicit,
            )?),
            None => None,
        };
        let out_cols: Vec<ColInfo> = names
            .iter()
            .zip(&exprs)
            .map(|(n, e)| ColInfo {
                table: None,
                name: n.clone(),
                ty: out_type(&e.data_type()),
                hidden: false,
            })
            .collect();
        let proj_ast: Vec<Option<String>> = s
            .projection
            .iter()
            .flat_map(|p| match p {
                ast::SelectItem::UnnamedExpr(e)
                | ast::SelectItem::ExprWithAlias { expr: e, .. } => vec![Some(e.to_string())],
                _ => Vec::new(),
            })
            .collect();
        let proj_ast = if proj_ast.len() == exprs.len() {
            proj_ast
        } else {
            Vec::new()
        };
        let width = exprs.len();
        let mut project = exprs;
        let mut keys = Vec::new();
        for o in order {
            let col = match self.order_src(&o.expr, &out_cols, &proj_ast, &cx)? {
                Src::Col(c) => c,
                Src::Expr(e) => {
                    project.push(e);
                    project.len() - 1
                }
            };
            let k = sort_key_of(o, col);
            keys.push(SortSpec {
                col: k.col,
                desc: k.desc,
                nulls_first: k.nulls_first,
            });
        }
        let distinct = matches!(s.distinct, Some(ast::Distinct::Distinct));
        if distinct && keys.iter().any(|k| k.col >= width) {
            return Ok(None);
        }
        let Some((limit_n, offset_n)) = self.limit_offset(q)? else {
            return Ok(None);
        };
        let agg = if is_agg {
            let ag = aggcx.borrow();
            Some(LogicalAgg {
                group: ag.group_exprs.clone(),
                aggs: ag
                    .aggs
                    .iter()
                    .map(|(_, spec)| AggCall::from_spec(spec))
                    .collect(),
            })
        } else {
            None
        };
        Ok(Some((
            LogicalSelect {
                rels,
                tree,
                filter,
                agg,
                having,
                project,
                names,
                width,
                distinct,
                order: keys,
                limit: limit_n,
                offset: offset_n,
            },
            out_cols,
        )))
    }

    /// LIMIT / OFFSET / FETCH FIRST of a query as counts (`None` limit: all rows); `Ok(None)`
    /// for a form the planner leaves to the interpreter (a negative count: its error).
    fn limit_offset(&self, q: &ast::Query) -> Result<Option<(Option<u64>, u64)>, PgError> {
        let (mut limit, mut offset) = (None, None);
        match &q.limit_clause {
            Some(ast::LimitClause::LimitOffset {
                limit: l,
                offset: o,
                limit_by,
            }) => {
                if !limit_by.is_empty() {
                    return Ok(None);
                }
                limit = l.as_ref();
                offset = o.as_ref().map(|o| &o.value);
            }
            Some(ast::LimitClause::OffsetCommaLimit {
                offset: o,
                limit: l,
            }) => {
                limit = Some(l);
                offset = Some(o);
            }
            None => {}
        }
        let count = |e: &A| -> Result<Option<Option<u64>>, PgError> {
            if matches!(e, A::Identifier(i) if i.value.eq_ignore_ascii_case("all")) {
                return Ok(Some(None));
            }
            Ok(match self.eval_const_int8(e, CastContext::Assignment)? {
                Value::Null => Some(None),
                Value::Int8(n) if n < 0 => None,
                Value::Int8(n) => Some(Some(u64::try_from(n).unwrap_or(0))),
                _ => Some(None),
            })
        };
        let mut limit_n = match limit {
            Some(e) => match count(e)? {
                Some(v) => v,
                None => return Ok(None),
            },
            None => None,
        };
        if let Some(f) = &q.fetch {
            limit_n = match &f.quantity {
                Some(e) => match count(e)? {
                    Some(v) => v,
                    None => return Ok(None),
                },
                None => Some(1),
            };
        }
        let offset_n = match offset {
            Some(e) => match count(e)? {
                Some(v) => v.unwrap_or(0),
                None => return Ok(None),
            },
            None => 0,
        };
        Ok(Some((limit_n, offset_n)))
    }

    /// ORDER BY item resolution, as the interpreter's `order_source`: output position, output
    /// name, the text of a select-list expression, or an expression over the input.
    fn order_src(
        &self,
        e: &A,
        out_cols: &[ColInfo],
        proj_ast: &[Option<String>],
        cx: &Cx<'_>,
    ) -> Result<Src, PgError> {
        if let A::Value(v) = e {
            if let ast::Value::Number(n, _) = &v.value {
                let k: usize = n.parse().unwrap_or(0);
                if k == 0 || k > out_cols.len() {
                    return Err(err(
                        SqlState::InvalidColumnReference,
                        format!("ORDER BY position {n} is not in select list"),
                    ));
                }
                return Ok(Src::Col(k - 1));
            }
        }
        if let A::Identifier(id) = e {
            let n = normalize_ident(id);
            if let Some(i) = out_cols.iter().position(|c| c.name == n && !c.hidden) {
                return Ok(Src::Col(i));
            }
        }
        let s = e.to_string();
        if let Some(i) = proj_ast
            .iter()
            .position(|p| p.as_deref() == Some(s.as_str()))
        {
            return Ok(Src::Col(i));
        }
        Ok(Src::Expr(self.bind(e, cx)?))
    }

    /// EXPLAIN [ANALYZE] [VERBOSE] [(options)] of a statement.
    pub(super) fn explain_stmt(
        &self,
        stmt: &ast::Statement,
        analyze: bool,
        verbose: bool,
        options: Option<&Vec<ast::UtilityOption>>,
    ) -> Result<QueryResult, PgError> {
        let mut opts = ExplainOptions {
            costs: true,
            verbose,
            analyze,
        };
        for o in options.into_iter().flatten() {
            let name = o.name.value.to_ascii_lowercase();
            let on = match &o.arg {
                None => true,
                Some(a) => {
                    let v = a.to_string().to_ascii_lowercase();
                    !matches!(v.trim_matches('\''), "off" | "false" | "0")
                }
            };
            match name.as_str() {
                "costs" => opts.costs = on,
                "verbose" => opts.verbose = on,
                "analyze" => opts.analyze = on,
                _ => {}
            }
        }
        let lines = match stmt {
            ast::Statement::Query(q) => match self.plan_query(q) {
                Some(p) => self.explain_plan(&p.plan, opts)?,
                None => {
                    let mut rows = None;
                    if opts.analyze {
                        rows = Some(self.query(q)?.rows.len());
                    }
                    vec![interpreted("Interpreted Query", rows, opts)]
                }
            },
            ast::Statement::Update(u) => self.explain_modify(
                "Update",
                &u.table.relation,
                u.table.joins.is_empty() && u.from.is_none(),
                u.selection.as_ref(),
                stmt,
                opts,
            )?,
            ast::Statement::Delete(d) => {
                let from = match &d.from {
                    ast::FromTable::WithFromKeyword(v) | ast::FromTable::WithoutKeyword(v) => v,
                };
                match from.first() {
                    Some(t) if from.len() == 1 => self.explain_modify(
                        "Delete",
                        &t.relation,
                        t.joins.is_empty() && d.using.is_none(),
                        d.selection.as_ref(),
                        stmt,
                        opts,
                    )?,
                    _ => vec![interpreted("Interpreted Delete", None, opts)],
                }
            }
            ast::Statement::Insert(i) => {
                let table = i.table.to_string();
                let mut rows = None;
                if opts.analyze {
                    rows = Some(0);
                    self.run(&Statement::Sql(stmt.clone()))?;
                }
                let mut v = vec![interpreted(&format!("Insert on {table}"), rows, opts)];
                v.push(format!(
                    "  ->  {}",
                    interpreted("Interpreted Query", None, opts)
                ));
                v
            }
            _ => vec![interpreted("Interpreted Statement", None, opts)],
        };
        Ok(QueryResult {
            columns: vec![("QUERY PLAN".into(), DataType::Text)],
            rows: lines.into_iter().map(|l| vec![Value::Text(l)]).collect(),
            tag: "EXPLAIN".into(),
        })
    }

    fn explain_plan(
        &self,
        plan: &PhysicalPlan,
        opts: ExplainOptions,
    ) -> Result<Vec<String>, PgError> {
        if !opts.analyze {
            return Ok(explain(plan, opts, None));
        }
        let mut op = executor::build(plan);
        let eopts = self.plan_opts();
        let mut acc = self.access();
        let mut cx = ExecCtx {
            access: &mut acc,
            eval: &self.cx,
            opts: &eopts,
        };
        let r = executor::drain(op.as_mut(), &mut cx);
        op.close(&mut cx);
        r?;
        Ok(explain(plan, opts, Some(op.as_ref() as &dyn Operator)))
    }

    fn explain_modify(
        &self,
        verb: &str,
        target: &ast::TableFactor,
        simple: bool,
        selection: Option<&A>,
        stmt: &ast::Statement,
        opts: ExplainOptions,
    ) -> Result<Vec<String>, PgError> {
        let (def, alias) = self.target_table(target)?;
        let mut lines = Vec::new();
        let mut scan = None;
        if simple && self.plan_opts().use_planner && !selection.is_some_and(has_subquery) {
            let scope = Self::table_scope(&def, alias.as_deref());
            let f = match selection {
                Some(w) => Some(coerce(
                    self.bind(w, &Cx::clause(&scope, "WHERE"))?,
                    &DataType::Bool,
                    CastContext::Implicit,
                )?),
                None => None,
            };
            scan = Some(self.target_scan_plan(&def, alias.as_deref(), f));
        }
        let mut actual = None;
        if opts.analyze {
            let r = self.run(&Statement::Sql(stmt.clone()))?;
            actual = Some(
                r.tag
                    .rsplit(' ')
                    .next()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0),
            );
        }
        let name = format!(
            "{verb} on {}{}",
            def.name,
            alias
                .as_ref()
                .filter(|a| **a != def.name)
                .map(|a| format!(" {a}"))
                .unwrap_or_default()
        );
        lines.push(interpreted(&name, actual.map(|_| 0), opts));
        match scan {
            Some(p) => {
                // The scan is the child of the Update/Delete line: its first line gets the
                // arrow, every other line moves right by one level (6 columns).
                let sub = explain(
                    &p,
                    ExplainOptions {
                        analyze: false,
                        ..opts
                    },
                    None,
                );
                for (i, l) in sub.into_iter().enumerate() {
                    lines.push(if i == 0 {
                        format!("  ->  {l}")
                    } else {
                        format!("      {l}")
                    });
                }
            }
            None => lines.push(format!(
                "  ->  {}",
                interpreted("Interpreted Scan", None, opts)
            )),
        }
        Ok(lines)
    }

    /// The scan plan for UPDATE/DELETE target rows of `def` filtered by `filter` (bound over
    /// the table row).
    fn target_scan_plan(
        &self,
        def: &TableDef,
        alias: Option<&str>,
        filter: Option<Expr>,
    ) -> PhysicalPlan {
        let mut conds = Vec::new();
        if let Some(f) = filter {
            conjuncts(f, &mut conds);
        }
        let tuples = self
            .eng
            .store()
            .rel_stats(RelId(def.rel))
            .map(|s| s.heap_tuples as f64)
            .unwrap_or(1000.0);
        let rel = BaseRel {
            rel: def.rel,
            table: def.name.clone(),
            alias: alias.unwrap_or(&def.name).to_string(),
            columns: def
                .columns
                .iter()
                .map(|c| ScanColumn {
                    name: c.name.clone(),
                    ty: c.ty.clone(),
                })
                .collect(),
            indexes: def
                .indexes
                .iter()
                // Expression indexes (no key columns) are not access paths yet.
                .filter(|i| !i.columns.is_empty())
                .map(|i| IndexInfo {
                    id: i.rel,
                    name: i.name.clone(),
                    columns: i.columns.clone(),
                    unique: i.unique,
                })
                .collect(),
            tuples,
            source: None,
        };
        let width = def.columns.len();
        let q = LogicalSelect {
            rels: vec![rel],
            tree: Some(JoinTree::Rel(0)),
            filter: conds,
            agg: None,
            having: None,
            project: def
                .columns
                .iter()
                .enumerate()
                .map(|(i, c)| Expr::Column(i, c.ty.clone()))
                .collect(),
            names: def.columns.iter().map(|c| c.name.clone()).collect(),
            width,
            distinct: false,
            order: Vec::new(),
            limit: None,
            offset: 0,
        };
        let plan = Planner::new(&self.plan_opts()).plan(&q);
        // The identity projection adds nothing: the scan is the plan.
        match plan {
            PhysicalPlan::Project { input, .. } => *input,
            other => other,
        }
    }

    /// Candidate rows for UPDATE/DELETE of `def`: every row (a sequential scan), or, when the
    /// bound WHERE condition (over the table row alone: no FROM/USING list) gives index bounds
    /// and an index scan is cheaper, only the rows within those bounds. The caller still
    /// evaluates the full condition on every candidate.
    pub(super) fn target_rows(
        &self,
        def: &TableDef,
        filter: &Filter<'_>,
        extra: &Rel,
    ) -> Result<Vec<Row>, PgError> {
        let Filter::Bound(f) = filter else {
            return self.scan(RelId(def.rel));
        };
        if !extra.cols.is_empty() || !self.plan_opts().use_planner {
            return self.scan(RelId(def.rel));
        }
        let PhysicalPlan::IndexScan {
            index,
            qual,
            backward,
            ..
        } = self.target_scan_plan(def, None, Some(f.clone()))
        else {
            return self.scan(RelId(def.rel));
        };
        let ranges = executor::qual_ranges(&qual, &[], &self.cx, backward)?;
        let mut acc = self.access();
        let mut out = Vec::new();
        for r in ranges.into_iter().rev() {
            let c = acc.open_index_scan(index, r, backward)?;
            loop {
                let rows = acc.next_rows(c, crate::plan::BATCH)?;
                if rows.is_empty() {
                    break;
                }
                out.extend(rows);
            }
            acc.close(c);
        }
        Ok(out)
    }
}

/// Whether a FROM item on the right reuses a table name of the left (42712, which the
/// interpreter reports).
fn duplicate_alias(left: &[ColInfo], right: &[ColInfo]) -> bool {
    right
        .iter()
        .filter_map(|c| c.table.as_deref())
        .any(|q| left.iter().any(|c| c.table.as_deref() == Some(q)))
}

/// A line for work the interpreter does (no plan to show).
fn interpreted(name: &str, rows: Option<usize>, opts: ExplainOptions) -> String {
    match rows {
        Some(n) if opts.analyze => format!("{name} (actual rows={n} loops=1)"),
        _ => name.to_string(),
    }
}

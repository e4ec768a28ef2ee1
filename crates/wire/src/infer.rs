//! Parameter-type inference for the extended protocol, the way PostgreSQL's parse analysis
//! resolves `$n` whose type the client left unspecified (OID 0) in the common cases:
//!
//! - `$n` compared with, or combined arithmetically with, an operand of known type (`col = $1`,
//!   `abalance + $1`, `$1 < t.c`) takes that operand's type;
//! - `expr IN ($1, $2)`, `expr BETWEEN $1 AND $2` take `expr`'s type, `expr = ANY($1)` its array type;
//! - `$n::type` / `CAST($n AS type)` take the cast's type;
//! - `x LIKE $1`, `x || $1` take `text`;
//! - `INSERT ... VALUES (...)` positions and `UPDATE ... SET col = $n` take the target column's type;
//! - `LIMIT $n` / `OFFSET $n` take `bigint`.
//!
//! Anything else stays unresolved (`None`); the caller reports it as `text`, as PostgreSQL does for a
//! parameter of unknown type in a select list. Column types come from a lookup function (the
//! caller's catalog), so the same code serves a standalone datanode and a coordinator.

use std::collections::HashMap;
use std::ops::ControlFlow;

use pgxc_sql::parser::normalize_ident;
use pgxc_sql::types::DataType;
use sqlparser::ast::{
    self, AssignmentTarget, BinaryOperator as B, Expr, ObjectName, SetExpr, TableFactor, Visit,
    Visitor,
};

/// The columns of one relation: `(name, type)` in attribute order.
pub type Columns = Vec<(String, DataType)>;

/// The parameter number of `e` if it is a bare `$n` (1-based).
fn placeholder(e: &Expr) -> Option<usize> {
    match e {
        Expr::Value(v) => match &v.value {
            ast::Value::Placeholder(p) => p.strip_prefix('$')?.parse().ok(),
            _ => None,
        },
        Expr::Nested(inner) => placeholder(inner),
        _ => None,
    }
}

/// The folded last part of an object name (`public.t` → `t`).
fn last_name(n: &ObjectName) -> String {
    n.0.last()
        .and_then(|p| p.as_ident())
        .map(normalize_ident)
        .unwrap_or_default()
}

/// A SQL type as sqlparser printed it (`INT8`, `VARCHAR(10)`, `NUMERIC(10,2)`, `INTEGER[]`,
/// `TIMESTAMP WITH TIME ZONE`) resolved to a [`DataType`].
pub fn parse_type(t: &ast::DataType) -> Option<DataType> {
    let s = t.to_string();
    let (s, array) = match s.strip_suffix("[]") {
        Some(base) => (base.to_string(), true),
        None => (s, false),
    };
    let (name, mods) = match s.find('(') {
        Some(i) => {
            let mods: Vec<i64> = s[i + 1..]
                .trim_end_matches(')')
                .split(',')
                .filter_map(|m| m.trim().parse().ok())
                .collect();
            (s[..i].to_string(), mods)
        }
        None => (s, Vec::new()),
    };
    let base = DataType::from_name(&name, &mods).ok()?;
    Some(if array {
        DataType::Array(Box::new(base))
    } else {
        base
    })
}

/// Relations named by the statement (first pass): names, aliases and CTE names.
#[derive(Default)]
struct Relations {
    /// Every relation name (as written), in order of appearance.
    names: Vec<ObjectName>,
    /// `(relation, alias)` of each table in a FROM list.
    aliased: Vec<(ObjectName, Option<String>)>,
    /// CTE names (never looked up in the catalog).
    ctes: Vec<String>,
    /// Table functions in FROM (`generate_series(...)`): not relations, never looked up.
    functions: Vec<ObjectName>,
}

impl Visitor for Relations {
    type Break = ();
    fn pre_visit_relation(&mut self, r: &ObjectName) -> ControlFlow<()> {
        self.names.push(r.clone());
        ControlFlow::Continue(())
    }
    fn pre_visit_table_factor(&mut self, t: &TableFactor) -> ControlFlow<()> {
        match t {
            TableFactor::Table {
                name,
                alias,
                args: None,
                ..
            } => self.aliased.push((
                name.clone(),
                alias.as_ref().map(|a| normalize_ident(&a.name)),
            )),
            TableFactor::Table {
                name,
                args: Some(_),
                ..
            } => self.functions.push(name.clone()),
            _ => {}
        }
        ControlFlow::Continue(())
    }
    fn pre_visit_query(&mut self, q: &ast::Query) -> ControlFlow<()> {
        if let Some(w) = &q.with {
            for c in &w.cte_tables {
                self.ctes.push(normalize_ident(&c.alias.name));
            }
        }
        ControlFlow::Continue(())
    }
}

/// The second pass: assigns types to parameters from their context.
struct Infer {
    /// `(range variable name, columns)`: each table by its alias (or its own name).
    scope: Vec<(String, Columns)>,
    /// Columns of each looked-up relation by folded name.
    tables: HashMap<String, Columns>,
    types: Vec<Option<DataType>>,
}

impl Infer {
    fn set(&mut self, n: usize, t: DataType) {
        if t == DataType::Unknown {
            return;
        }
        if let Some(slot) = n.checked_sub(1).and_then(|i| self.types.get_mut(i)) {
            if slot.is_none() {
                *slot = Some(t.without_typmod());
            }
        }
    }

    fn set_if_param(&mut self, e: &Expr, t: Option<DataType>) {
        if let (Some(n), Some(t)) = (placeholder(e), t) {
            self.set(n, t);
        }
    }

    fn column(&self, qualifier: Option<&str>, col: &str) -> Option<DataType> {
        self.scope
            .iter()
            .filter(|(name, _)| qualifier.is_none_or(|q| q == name))
            .find_map(|(_, cols)| cols.iter().find(|(c, _)| c == col).map(|(_, t)| t.clone()))
    }

    /// The type of `e` where it is evident without the binder.
    fn type_of(&self, e: &Expr) -> Option<DataType> {
        match e {
            Expr::Identifier(id) => self.column(None, &normalize_ident(id)),
            Expr::CompoundIdentifier(parts) if parts.len() >= 2 => {
                let col = normalize_ident(&parts[parts.len() - 1]);
                let q = normalize_ident(&parts[parts.len() - 2]);
                self.column(Some(&q), &col)
            }
            Expr::Value(v) => match &v.value {
                ast::Value::Number(s, _) => Some(if s.contains(['.', 'e', 'E']) {
                    DataType::Numeric(None)
                } else if s.parse::<i32>().is_ok() {
                    DataType::Int4
                } else if s.parse::<i64>().is_ok() {
                    DataType::Int8
                } else {
                    DataType::Numeric(None)
                }),
                ast::Value::Boolean(_) => Some(DataType::Bool),
                ast::Value::Placeholder(_) => placeholder(e)
                    .and_then(|n| self.types.get(n.checked_sub(1)?).cloned().flatten()),
                _ => None,
            },
            Expr::Cast { data_type, .. } => parse_type(data_type),
            Expr::Nested(inner) => self.type_of(inner),
            Expr::UnaryOp { expr, .. } => self.type_of(expr),
            Expr::BinaryOp { left, op, right } => match op {
                B::Plus | B::Minus | B::Multiply | B::Divide | B::Modulo => {
                    self.type_of(left).or_else(|| self.type_of(right))
                }
                B::StringConcat => Some(DataType::Text),
                B::Eq | B::NotEq | B::Lt | B::LtEq | B::Gt | B::GtEq | B::And | B::Or => {
                    Some(DataType::Bool)
                }
                _ => None,
            },
            _ => None,
        }
    }

    /// The column types of a DML target, by name.
    fn target(&self, name: &ObjectName) -> Option<&Columns> {
        self.tables.get(&last_name(name))
    }
}

impl Visitor for Infer {
    type Break = ();

    fn pre_visit_statement(&mut self, s: &ast::Statement) -> ControlFlow<()> {
        match s {
            ast::Statement::Insert(ins) => {
                let ast::TableObject::TableName(name) = &ins.table else {
                    return ControlFlow::Continue(());
                };
                let Some(cols) = self.target(name).cloned() else {
                    return ControlFlow::Continue(());
                };
                let targets: Vec<Option<DataType>> = if ins.columns.is_empty() {
                    cols.iter().map(|(_, t)| Some(t.clone())).collect()
                } else {
                    ins.columns
                        .iter()
                        .map(|c| {
                            let c = last_name(c);
                            cols.iter().find(|(n, _)| *n == c).map(|(_, t)| t.clone())
                        })
                        .collect()
                };
                if let Some(src) = &ins.source {
                    if let SetExpr::Values(v) = src.body.as_ref() {
                        for row in &v.rows {
                            for (e, t) in row.content.iter().zip(&targets) {
                                self.set_if_param(e, t.clone());
                            }
                        }
                    }
                }
            }
            ast::Statement::Update(u) => {
                if let TableFactor::Table { name, .. } = &u.table.relation {
                    if let Some(cols) = self.target(name).cloned() {
                        for a in &u.assignments {
                            if let AssignmentTarget::ColumnName(c) = &a.target {
                                let c = last_name(c);
                                let t = cols.iter().find(|(n, _)| *n == c).map(|(_, t)| t.clone());
                                self.set_if_param(&a.value, t);
                            }
                        }
                    }
                }
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_query(&mut self, q: &ast::Query) -> ControlFlow<()> {
        match &q.limit_clause {
            Some(ast::LimitClause::LimitOffset { limit, offset, .. }) => {
                if let Some(l) = limit {
                    self.set_if_param(l, Some(DataType::Int8));
                }
                if let Some(o) = offset {
                    self.set_if_param(&o.value, Some(DataType::Int8));
                }
            }
            Some(ast::LimitClause::OffsetCommaLimit { offset, limit }) => {
                self.set_if_param(offset, Some(DataType::Int8));
                self.set_if_param(limit, Some(DataType::Int8));
            }
            None => {}
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
        match e {
            Expr::BinaryOp { left, op, right } => match op {
                B::Eq
                | B::NotEq
                | B::Lt
                | B::LtEq
                | B::Gt
                | B::GtEq
                | B::Plus
                | B::Minus
                | B::Multiply
                | B::Divide
                | B::Modulo => {
                    let (tl, tr) = (self.type_of(left), self.type_of(right));
                    self.set_if_param(left, tr);
                    self.set_if_param(right, tl);
                }
                B::StringConcat => {
                    self.set_if_param(left, Some(DataType::Text));
                    self.set_if_param(right, Some(DataType::Text));
                }
                _ => {}
            },
            Expr::Like { expr, pattern, .. } | Expr::ILike { expr, pattern, .. } => {
                self.set_if_param(expr, Some(DataType::Text));
                self.set_if_param(pattern, Some(DataType::Text));
            }
            Expr::In {
                expr,
                target: ast::InTarget::List(list),
                ..
            } => {
                let t = self.type_of(expr).or_else(|| {
                    list.iter()
                        .find(|x| placeholder(x).is_none())
                        .and_then(|x| self.type_of(x))
                });
                self.set_if_param(expr, t.clone());
                for x in list {
                    self.set_if_param(x, t.clone());
                }
            }
            Expr::Between {
                expr, low, high, ..
            } => {
                let t = self
                    .type_of(expr)
                    .or_else(|| self.type_of(low))
                    .or_else(|| self.type_of(high));
                for x in [expr, low, high] {
                    self.set_if_param(x, t.clone());
                }
            }
            Expr::AnyOp { left, right, .. } | Expr::AllOp { left, right, .. } => {
                if let Some(t) = self.type_of(left) {
                    self.set_if_param(right, Some(DataType::Array(Box::new(t))));
                }
            }
            Expr::Cast {
                expr, data_type, ..
            } => self.set_if_param(expr, parse_type(data_type)),
            _ => {}
        }
        ControlFlow::Continue(())
    }
}

/// Infer the types of `$1..$nparams` in `stmt`. `lookup` gives a relation's columns (`None`: not a
/// table the caller knows; CTE names are never asked). Unresolved parameters are `None`.
pub fn infer_param_types(
    stmt: &ast::Statement,
    nparams: usize,
    lookup: &mut dyn FnMut(&ObjectName) -> Option<Columns>,
) -> Vec<Option<DataType>> {
    let mut rels = Relations::default();
    let _ = stmt.visit(&mut rels);
    let mut tables: HashMap<String, Columns> = HashMap::new();
    for n in &rels.names {
        let key = last_name(n);
        if rels.ctes.contains(&key) || tables.contains_key(&key) || rels.functions.contains(n) {
            continue;
        }
        if let Some(cols) = lookup(n) {
            tables.insert(key, cols);
        }
    }
    let mut scope = Vec::new();
    for (name, alias) in &rels.aliased {
        let key = last_name(name);
        if let Some(cols) = tables.get(&key) {
            scope.push((alias.clone().unwrap_or(key), cols.clone()));
        }
    }
    // DML targets (not in a FROM list) are in scope under their own names.
    for (key, cols) in &tables {
        if !scope.iter().any(|(n, _)| n == key) {
            scope.push((key.clone(), cols.clone()));
        }
    }
    let mut inf = Infer {
        scope,
        tables,
        types: vec![None; nparams],
    };
    // Two rounds: a parameter typed in the first round can type an arithmetic neighbour.
    for _ in 0..2 {
        let _ = stmt.visit(&mut inf);
    }
    inf.types
}

#[cfg(test)]
mod tests {
    use super::*;
    use pgxc_sql::parser::{parse, Statement};

    fn infer(sql: &str, n: usize) -> Vec<Option<DataType>> {
        let stmts = parse(sql).expect("parses");
        let Statement::Sql(s) = &stmts[0] else {
            panic!("not a plain statement")
        };
        infer_param_types(s, n, &mut |name| {
            // Only real relations are looked up (a failed lookup would abort a transaction).
            assert!(
                !["acc2", "generate_series"].contains(&last_name(name).as_str()),
                "looked up {name}"
            );
            (last_name(name) == "acc").then(|| {
                vec![
                    ("aid".to_string(), DataType::Int4),
                    ("bal".to_string(), DataType::Int8),
                    ("filler".to_string(), DataType::Char(84)),
                    ("ts".to_string(), DataType::Timestamptz),
                ]
            })
        })
    }

    #[test]
    fn infers_common_contexts() {
        use DataType as T;
        assert_eq!(
            infer("UPDATE acc SET bal = bal + $1, ts = $3 WHERE aid = $2", 3),
            vec![Some(T::Int8), Some(T::Int4), Some(T::Timestamptz)]
        );
        assert_eq!(
            infer("INSERT INTO acc (bal, aid) VALUES ($1, $2)", 2),
            vec![Some(T::Int8), Some(T::Int4)]
        );
        assert_eq!(
            infer("SELECT * FROM acc a WHERE $1 = a.aid LIMIT $2 OFFSET $3", 3),
            vec![Some(T::Int4), Some(T::Int8), Some(T::Int8)]
        );
        assert_eq!(
            infer("SELECT $1::int8 + 1, $2, $3 || 'x'", 3),
            vec![Some(T::Int8), None, Some(T::Text)]
        );
        assert_eq!(
            infer(
                "SELECT 1 FROM acc WHERE aid IN ($1, $2) AND bal BETWEEN $3 AND 10 AND aid = ANY($4)",
                4
            ),
            vec![
                Some(T::Int4),
                Some(T::Int4),
                Some(T::Int8),
                Some(T::Array(Box::new(T::Int4)))
            ]
        );
        assert_eq!(
            infer(
                "WITH acc2 AS (SELECT 1 AS x) SELECT * FROM acc2, acc WHERE filler = $1",
                1
            ),
            vec![Some(T::Char(84))]
        );
        assert_eq!(
            infer(
                "SELECT * FROM generate_series(1, 3) g, acc WHERE bal > $1",
                1
            ),
            vec![Some(T::Int8)]
        );
    }
}

//! The extended protocol's typing: Describe of a prepared statement (ParameterDescription with
//! inferred parameter types, RowDescription or NoData) and Bind's parameter decoding.
//!
//! - **Parameter types**: a type the client declared in Parse (non-zero OID) wins; otherwise the
//!   type is inferred from the statement ([`crate::infer`]); otherwise the parameter is `text`
//!   (OID 25), as PostgreSQL reports a parameter of unknown type in a select list.
//! - **Result columns** of a statement are found without running it: a query is run with
//!   `LIMIT 0` and every `$n` replaced by `NULL::type` (the engine's `LIMIT 0` pulls no rows, so
//!   this costs one plan, not a scan); `INSERT/UPDATE/DELETE ... RETURNING` as a `SELECT` of the
//!   RETURNING list from the target table with `LIMIT 0`; `EXPLAIN` is one `text` column
//!   `QUERY PLAN`; `SHOW` runs (it has no side effects); anything else is NoData.
//! - **Bind**: a parameter is substituted into the statement text as a literal of its type. Text
//!   format: `'value'` cast to the declared type (uncast when undeclared, so the engine resolves
//!   the literal from context exactly like an unknown-typed literal in PostgreSQL). Binary format:
//!   decoded with the type's `*recv` rules ([`pgxc_sql::types::binary::from_binary`]) and printed
//!   back as `'text'::type`, so every type the engine has (integers, floats, numeric, bool, text,
//!   varchar, bpchar, bytea, date, time, timetz, timestamp(tz), interval, uuid, json, jsonb, inet,
//!   money, one-dimensional arrays) binds in both formats. NULL is `NULL::type`.

use pgxc_common::{PgError, SqlState};
use pgxc_sql::parser::{self, Statement};
use pgxc_sql::types::{binary, DataType, TimeZone};
use sqlparser::ast::{self, FromTable, ObjectName, UpdateTableFromKind};

use crate::infer::{infer_param_types, Columns};
use crate::WireSession;

/// A client COPY found at Execute of a portal.
pub(crate) enum ClientCopy {
    /// `COPY ... FROM STDIN`: the statement and its column count (for CopyInResponse).
    In(Box<parser::Copy>, usize),
    /// `COPY ... TO STDOUT`: CopyOutResponse, the CopyData, CopyDone and CommandComplete, encoded.
    Out(Vec<u8>),
}

/// Whether `sql` starts with the word COPY (a cheap test before parsing).
pub(crate) fn looks_like_copy(sql: &str) -> bool {
    let t = sql.trim_start();
    t.len() >= 4 && t[..4].eq_ignore_ascii_case("copy")
}

/// If `sql` is one `COPY ... FROM STDIN` or `COPY ... TO STDOUT`, what to do for it (`None`: not a
/// client COPY). Errors: 25P02 in a failed transaction block, 42P01 for an unknown table, the
/// session's COPY TO errors.
pub(crate) fn prepare_copy<S: WireSession + ?Sized>(
    s: &mut S,
    sql: &str,
) -> Option<Result<ClientCopy, PgError>> {
    let stmt = match parse_one(sql) {
        Ok(Some(Statement::Copy(c)))
            if matches!(
                c.target,
                parser::CopyTarget::Stdin | parser::CopyTarget::Stdout
            ) =>
        {
            c
        }
        _ => return None,
    };
    if s.in_failed_transaction() {
        return Some(Err(PgError::new(
            SqlState::InFailedSqlTransaction,
            "current transaction is aborted, commands ignored until end of transaction block",
        )));
    }
    if stmt.from {
        let ncols = match &stmt.source {
            parser::CopySource::Table { columns, .. } if !columns.is_empty() => columns.len(),
            parser::CopySource::Table { name, .. } => {
                match s.execute(&format!("SELECT * FROM {name} LIMIT 0")) {
                    Ok(r) => r.first().map_or(0, |q| q.columns.len()),
                    Err(e) => return Some(Err(e)),
                }
            }
            parser::CopySource::Query(_) => 0,
        };
        return Some(Ok(ClientCopy::In(Box::new(stmt), ncols)));
    }
    Some(s.copy_out(&stmt).map(|co| {
        let mut out = Vec::new();
        let mut m = crate::Msg::new(b'H').u8(0).i16(co.columns as i16);
        for _ in 0..co.columns {
            m = m.i16(0);
        }
        m.finish(&mut out);
        for line in &co.lines {
            crate::Msg::new(b'd').bytes(line).finish(&mut out);
        }
        crate::Msg::new(b'c').finish(&mut out);
        crate::command_complete(&mut out, &format!("COPY {}", co.rows));
        ClientCopy::Out(out)
    }))
}

/// What Describe (statement) answers: the parameter types (ParameterDescription) and the result
/// columns (`None`: NoData).
#[derive(Clone, Debug, PartialEq)]
pub struct Description {
    /// One type per parameter `$1..$n`.
    pub params: Vec<DataType>,
    /// The result columns, or `None` when the statement returns no rows.
    pub columns: Option<Vec<(String, DataType)>>,
}

/// How the result columns of a statement are found.
enum Probe {
    /// The statement returns no rows.
    NoData,
    /// Run this text (with `$n` still in it) and take the last result's columns.
    Run(String),
    /// Known without running.
    Fixed(Vec<(String, DataType)>),
}

/// The SQL name a parameter literal is cast to (`None`: leave the literal untyped).
pub(crate) fn cast_name(t: &DataType) -> Option<String> {
    match t {
        DataType::Unknown | DataType::Char(_) => None,
        DataType::Array(e) if matches!(**e, DataType::Char(_)) => Some("bpchar[]".into()),
        other => Some(other.without_typmod().name()),
    }
}

/// The declared type of OID `oid` (`None` for 0 / unspecified or an OID pgxc does not have).
pub(crate) fn declared_type(oid: u32) -> Option<DataType> {
    if oid == 0 {
        return None;
    }
    DataType::from_oid(oid, -1)
}

/// The highest `$n` in `sql` (outside quotes and comments).
pub(crate) fn count_params(sql: &str) -> usize {
    let mut max = 0;
    crate::scan_params(sql, |n| {
        max = max.max(n);
        None
    });
    max
}

/// Parse `sql` as one statement. Errors: the parser's 42601; 42601 for more than one statement
/// (PostgreSQL: "cannot insert multiple commands into a prepared statement").
fn parse_one(sql: &str) -> Result<Option<Statement>, PgError> {
    let mut stmts = parser::parse(sql)?;
    match stmts.len() {
        0 => Ok(None),
        1 => Ok(stmts.pop()),
        _ => Err(PgError::new(
            SqlState::SyntaxError,
            "cannot insert multiple commands into a prepared statement",
        )),
    }
}

/// Parse's check that the text is at most one statement (42601 `cannot insert multiple commands
/// into a prepared statement`, or the statement's syntax error). Only texts with an inner `;` are
/// parsed here; the others are parsed when they are described or run.
pub fn check_single_statement(sql: &str) -> Result<(), PgError> {
    if sql.trim_end().trim_end_matches(';').contains(';') {
        parse_one(sql)?;
    }
    Ok(())
}

/// The columns of relation `name` as `session` sees it (`SELECT * FROM name LIMIT 0`), or `None`.
fn relation_columns<S: WireSession + ?Sized>(
    session: &mut S,
    name: &ObjectName,
) -> Option<Columns> {
    if session.in_failed_transaction() {
        return None;
    }
    let r = session
        .execute(&format!("SELECT * FROM {name} LIMIT 0"))
        .ok()?;
    r.last().map(|q| q.columns.clone())
}

/// Run the catalog lookups and probes of a Describe inside a savepoint when a transaction block
/// is open, so a probe that fails (a statement text the probe form cannot express) reports its
/// error without aborting the client's transaction. Outside a block each probe is its own
/// statement; in a failed block the probes fail with 25P02, as PostgreSQL's Parse does.
fn guarded<S: WireSession + ?Sized, R>(
    session: &mut S,
    f: impl FnOnce(&mut S) -> Result<R, PgError>,
) -> Result<R, PgError> {
    if session.transaction_status() != b'T' {
        return f(session);
    }
    session.execute("SAVEPOINT pgxc_describe")?;
    let r = f(session);
    let end = if r.is_ok() {
        "RELEASE SAVEPOINT pgxc_describe"
    } else {
        "ROLLBACK TO SAVEPOINT pgxc_describe; RELEASE SAVEPOINT pgxc_describe"
    };
    session.execute(end)?;
    r
}

/// The parameter types of `sql`: declared (`declared[i]` non-zero), else inferred, else `text`.
/// Looks relations up through `session`. Errors: the statement does not parse (42601).
pub fn param_types<S: WireSession + ?Sized>(
    session: &mut S,
    sql: &str,
    declared: &[u32],
) -> Result<Vec<DataType>, PgError> {
    let stmt = parse_one(sql)?;
    guarded(session, |s| {
        Ok(resolve_params(s, stmt.as_ref(), sql, declared))
    })
}

fn resolve_params<S: WireSession + ?Sized>(
    session: &mut S,
    stmt: Option<&Statement>,
    sql: &str,
    declared: &[u32],
) -> Vec<DataType> {
    let n = declared.len().max(count_params(sql));
    let need = (0..n).any(|i| declared_type(declared.get(i).copied().unwrap_or(0)).is_none());
    let inferred = match (stmt, need) {
        (Some(Statement::Sql(s)), true) => {
            infer_param_types(s, n, &mut |name| relation_columns(session, name))
        }
        _ => vec![None; n],
    };
    (0..n)
        .map(|i| {
            declared_type(declared.get(i).copied().unwrap_or(0))
                .or_else(|| inferred.get(i).cloned().flatten())
                .unwrap_or(DataType::Text)
        })
        .collect()
}

/// The probe finding a statement's result columns.
fn probe(stmt: &Statement) -> Probe {
    let ast = match stmt {
        Statement::Sql(s) => s,
        Statement::Show(_) => return Probe::Run(String::new()),
        _ => return Probe::NoData,
    };
    let select_from = |items: &[ast::SelectItem], from: String| {
        let list: Vec<String> = items.iter().map(ToString::to_string).collect();
        Probe::Run(format!("SELECT {} FROM {from} LIMIT 0", list.join(", ")))
    };
    match ast {
        ast::Statement::Query(q) => {
            let mut q = q.as_ref().clone();
            q.limit_clause = None;
            q.fetch = None;
            q.locks.clear();
            Probe::Run(format!("{q} LIMIT 0"))
        }
        ast::Statement::Explain { .. } => {
            Probe::Fixed(vec![("QUERY PLAN".to_string(), DataType::Text)])
        }
        ast::Statement::Insert(i) => match (&i.returning, &i.table) {
            (Some(items), ast::TableObject::TableName(name)) => {
                let alias = i
                    .table_alias
                    .as_ref()
                    .map(|a| format!(" AS {}", a.alias))
                    .unwrap_or_default();
                select_from(items, format!("{name}{alias}"))
            }
            _ => Probe::NoData,
        },
        ast::Statement::Update(u) => match &u.returning {
            Some(items) => {
                let mut from = vec![u.table.to_string()];
                if let Some(UpdateTableFromKind::AfterSet(t) | UpdateTableFromKind::BeforeSet(t)) =
                    &u.from
                {
                    from.extend(t.iter().map(ToString::to_string));
                }
                select_from(items, from.join(", "))
            }
            None => Probe::NoData,
        },
        ast::Statement::Delete(d) => match &d.returning {
            Some(items) => {
                let (FromTable::WithFromKeyword(t) | FromTable::WithoutKeyword(t)) = &d.from;
                let mut from: Vec<String> = t.iter().map(ToString::to_string).collect();
                if let Some(u) = &d.using {
                    from.extend(u.iter().map(ToString::to_string));
                }
                select_from(items, from.join(", "))
            }
            None => Probe::NoData,
        },
        ast::Statement::ShowVariable { .. } => Probe::Run(String::new()),
        _ => Probe::NoData,
    }
}

/// Replace every `$n` of `sql` by `NULL::type` of `types[n-1]` (`NULL::text` when untyped).
fn with_null_params(sql: &str, types: &[DataType]) -> String {
    crate::scan_params(sql, |n| {
        let t = types.get(n.checked_sub(1)?)?;
        Some(format!(
            "(NULL::{})",
            cast_name(t).unwrap_or_else(|| "text".into())
        ))
    })
}

/// Describe statement `sql` with the client's `declared` parameter OIDs, using `session` for
/// catalog lookups and the `LIMIT 0` probe. Mirrors PostgreSQL's answer to Describe ('S'): the
/// parameter types and the RowDescription (or NoData). Errors: a syntax error (42601), more than one
/// statement (42601), or whatever the probe raises (42P01 for an unknown table, 42703, ...).
pub fn describe<S: WireSession + ?Sized>(
    session: &mut S,
    sql: &str,
    declared: &[u32],
) -> Result<Description, PgError> {
    let stmt = parse_one(sql)?;
    guarded(session, |s| describe_parsed(s, stmt, sql, declared))
}

fn describe_parsed<S: WireSession + ?Sized>(
    session: &mut S,
    stmt: Option<Statement>,
    sql: &str,
    declared: &[u32],
) -> Result<Description, PgError> {
    let params = resolve_params(session, stmt.as_ref(), sql, declared);
    let Some(stmt) = stmt else {
        return Ok(Description {
            params,
            columns: None,
        });
    };
    let columns = match probe(&stmt) {
        Probe::NoData => None,
        Probe::Fixed(c) => Some(c),
        Probe::Run(text) => {
            let text = if text.is_empty() { sql } else { &text };
            let r = session.execute(&with_null_params(text, &params))?;
            r.last()
                .filter(|q| !q.columns.is_empty())
                .map(|q| q.columns.clone())
        }
    };
    Ok(Description { params, columns })
}

/// A bound parameter as SQL literal text for substitution: `value` in `format` (0 text, 1 binary)
/// of type `ty` (`declared` says whether the client or the inference fixed it). `tz` is the
/// session's zone (binary timestamptz prints with its offset, so the literal reads back exactly).
/// Errors: 22P03 for a binary value that does not decode as `ty`; 22021 for invalid UTF-8 text.
pub fn param_literal(
    value: Option<&[u8]>,
    format: i16,
    ty: Option<&DataType>,
    declared: bool,
    tz: &TimeZone,
) -> Result<String, PgError> {
    let cast = |lit: String, t: Option<&DataType>| match t.and_then(cast_name) {
        Some(name) => format!("({lit}::{name})"),
        None => lit,
    };
    let quote = |s: &str| format!("'{}'", s.replace('\'', "''"));
    let Some(bytes) = value else {
        return Ok(cast("NULL".into(), ty));
    };
    if format == 0 {
        let s = std::str::from_utf8(bytes).map_err(|_| {
            PgError::new(
                SqlState::CharacterNotInRepertoire,
                "invalid byte sequence for encoding \"UTF8\" in bind parameter",
            )
        })?;
        return Ok(cast(quote(s), if declared { ty } else { None }));
    }
    if format != 1 {
        return Err(PgError::new(
            SqlState::ProtocolViolation,
            format!("unsupported format code: {format}"),
        ));
    }
    let t = ty.cloned().unwrap_or(DataType::Text);
    let v = binary::from_binary(&t, bytes).map_err(|e| {
        if e.code == SqlState::CharacterNotInRepertoire {
            e
        } else {
            PgError::new(
                SqlState::InvalidBinaryRepresentation,
                format!(
                    "incorrect binary data format in bind parameter ({}: {})",
                    t.name(),
                    e.message
                ),
            )
        }
    })?;
    if v.is_null() {
        return Ok(cast("NULL".into(), Some(&t)));
    }
    let mut tz = tz.clone();
    tz.extra_float_digits = tz.extra_float_digits.max(1);
    Ok(cast(quote(&v.to_text(&t, &tz)), Some(&t)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_parameters_become_typed_literals() {
        let tz = TimeZone::utc();
        let lit = |b: &[u8], t: DataType| param_literal(Some(b), 1, Some(&t), false, &tz);
        assert_eq!(
            lit(&41i64.to_be_bytes(), DataType::Int8).unwrap(),
            "('41'::bigint)"
        );
        assert_eq!(lit(&[1], DataType::Bool).unwrap(), "('t'::boolean)");
        assert_eq!(
            lit(&0.1f64.to_be_bytes(), DataType::Float8).unwrap(),
            "('0.1'::double precision)"
        );
        assert_eq!(lit(b"it's", DataType::Text).unwrap(), "('it''s'::text)");
        assert_eq!(lit(&[1, 2], DataType::Bytea).unwrap(), "('\\x0102'::bytea)");
        // A wrong length is 22P03, not a panic.
        assert_eq!(
            lit(&[0, 1], DataType::Int8).unwrap_err().code,
            SqlState::InvalidBinaryRepresentation
        );
        assert_eq!(
            param_literal(None, 1, Some(&DataType::Int4), false, &tz).unwrap(),
            "(NULL::integer)"
        );
        assert_eq!(
            param_literal(Some(b"5"), 0, Some(&DataType::Int4), false, &tz).unwrap(),
            "'5'"
        );
        assert_eq!(
            param_literal(Some(b"5"), 0, Some(&DataType::Int4), true, &tz).unwrap(),
            "('5'::integer)"
        );
    }

    #[test]
    fn parse_takes_one_statement() {
        assert!(check_single_statement("SELECT 1;").is_ok());
        assert!(check_single_statement("SELECT ';'").is_ok());
        assert_eq!(
            check_single_statement("SELECT 1; SELECT 2")
                .unwrap_err()
                .code,
            SqlState::SyntaxError
        );
    }

    #[test]
    fn probes_do_not_run_the_statement() {
        let p = |sql: &str| match probe(&parse_one(sql).unwrap().unwrap()) {
            Probe::Run(s) => Some(s),
            Probe::Fixed(_) => Some("fixed".into()),
            Probe::NoData => None,
        };
        assert_eq!(
            p("SELECT a FROM t WHERE a = $1 ORDER BY a LIMIT 5 FOR UPDATE").as_deref(),
            Some("SELECT a FROM t WHERE a = $1 ORDER BY a LIMIT 0")
        );
        assert_eq!(
            p("UPDATE t SET a = $1 RETURNING a, b").as_deref(),
            Some("SELECT a, b FROM t LIMIT 0")
        );
        assert_eq!(p("INSERT INTO t VALUES ($1)"), None);
        assert_eq!(
            with_null_params("SELECT $1 + $2", &[DataType::Int4, DataType::Unknown]),
            "SELECT (NULL::integer) + (NULL::text)"
        );
    }
}

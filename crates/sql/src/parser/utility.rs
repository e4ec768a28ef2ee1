//! PostgreSQL utility statements parsed by hand (PostgreSQL 15 gram.y shapes).

use super::cursor::{Cursor, PResult};
use super::lexer::Kind;
use super::{
    Copy, CopySource, CopyTarget, DiscardTarget, IsolationLevel, Lock, LockMode, OptionValue,
    ResetTarget, Set, SetValue, ShowTarget, Statement, StmtCtx, TableAndColumns, TransactionMode,
    TransactionStmt, UtilityOption, Vacuum,
};

/// `( name [value] [, ...] )`, the cursor on the `(`.
fn option_list(c: &mut Cursor<'_>) -> PResult<Vec<UtilityOption>> {
    c.expect(Kind::LParen)?;
    let mut out = Vec::new();
    loop {
        let name = match c.peek() {
            Some(t) if t.kind == Kind::Word => t.value.clone(),
            _ => return Err(c.error()),
        };
        c.advance();
        let value = if c.peek_kind(Kind::Comma) || c.peek_kind(Kind::RParen) {
            None
        } else {
            Some(option_value(c)?)
        };
        out.push(UtilityOption { name, value });
        if c.eat(Kind::Comma) {
            continue;
        }
        c.expect(Kind::RParen)?;
        return Ok(out);
    }
}

/// One option value: a string, a signed number, a word, `*` or `(a, b)`.
fn option_value(c: &mut Cursor<'_>) -> PResult<OptionValue> {
    let t = c.peek().ok_or_else(|| c.error())?;
    let v = match t.kind {
        Kind::Str => OptionValue::Str(t.value.clone()),
        Kind::Number => OptionValue::Number(t.value.clone()),
        Kind::Word => OptionValue::Word(t.value.clone()),
        Kind::QuotedIdent => OptionValue::Word(t.value.clone()),
        Kind::Op if t.value == "*" => OptionValue::Star,
        Kind::Op if t.value == "-" || t.value == "+" => {
            c.advance();
            let n = c.expect(Kind::Number)?;
            let sign = if t.value == "-" { "-" } else { "" };
            return Ok(OptionValue::Number(format!("{sign}{}", n.value)));
        }
        Kind::LParen => return Ok(OptionValue::List(c.ident_list()?)),
        _ => return Err(c.error()),
    };
    c.advance();
    Ok(v)
}

fn flag(name: &str) -> UtilityOption {
    UtilityOption {
        name: name.to_string(),
        value: None,
    }
}

/// `t [(cols)] [, ...]` to the end of the statement.
fn table_and_columns_list(c: &mut Cursor<'_>) -> PResult<Vec<TableAndColumns>> {
    let mut out = Vec::new();
    if c.at_end() {
        return Ok(out);
    }
    loop {
        let name = c.object_name()?;
        let columns = if c.peek_kind(Kind::LParen) {
            c.ident_list()?
        } else {
            Vec::new()
        };
        out.push(TableAndColumns { name, columns });
        if !c.eat(Kind::Comma) {
            break;
        }
    }
    c.expect_end()?;
    Ok(out)
}

pub(crate) fn vacuum(ctx: &StmtCtx<'_>) -> PResult<Statement> {
    let mut c = ctx.cursor();
    c.expect_kw("vacuum")?;
    let mut v = Vacuum::default();
    if c.peek_kind(Kind::LParen) {
        v.options = option_list(&mut c)?;
    } else {
        for kw in ["full", "freeze", "verbose"] {
            if c.kw(kw) {
                v.options.push(flag(kw));
            }
        }
        if c.kw("analyze") || c.kw("analyse") {
            v.options.push(flag("analyze"));
        }
    }
    v.tables = table_and_columns_list(&mut c)?;
    Ok(Statement::Vacuum(v))
}

pub(crate) fn analyze(ctx: &StmtCtx<'_>) -> PResult<Statement> {
    let mut c = ctx.cursor();
    c.advance();
    let mut v = Vacuum::default();
    if c.peek_kind(Kind::LParen) {
        v.options = option_list(&mut c)?;
    } else if c.kw("verbose") {
        v.options.push(flag("verbose"));
    }
    v.tables = table_and_columns_list(&mut c)?;
    Ok(Statement::Analyze(v))
}

pub(crate) fn checkpoint(ctx: &StmtCtx<'_>) -> PResult<Statement> {
    let mut c = ctx.cursor();
    c.advance();
    c.expect_end()?;
    Ok(Statement::Checkpoint)
}

pub(crate) fn discard(ctx: &StmtCtx<'_>) -> PResult<Statement> {
    let mut c = ctx.cursor();
    c.advance();
    let target = if c.kw("all") {
        DiscardTarget::All
    } else if c.kw("plans") {
        DiscardTarget::Plans
    } else if c.kw("sequences") {
        DiscardTarget::Sequences
    } else if c.kw("temp") || c.kw("temporary") {
        DiscardTarget::Temp
    } else {
        return Err(c.error());
    };
    c.expect_end()?;
    Ok(Statement::Discard(target))
}

pub(crate) fn lock(ctx: &StmtCtx<'_>) -> PResult<Statement> {
    let mut c = ctx.cursor();
    c.advance();
    c.kw("table");
    let mut tables = Vec::new();
    let mut only = false;
    loop {
        if c.kw("only") {
            only = true;
            if c.eat(Kind::LParen) {
                tables.push(c.object_name()?);
                c.expect(Kind::RParen)?;
            } else {
                tables.push(c.object_name()?);
            }
        } else {
            tables.push(c.object_name()?);
            if c.peek()
                .is_some_and(|t| t.kind == Kind::Op && t.value == "*")
            {
                c.advance();
            }
        }
        if !c.eat(Kind::Comma) {
            break;
        }
    }
    let mut mode = LockMode::AccessExclusive;
    if c.kw("in") {
        mode = if c.kws(&["access", "share"]) {
            LockMode::AccessShare
        } else if c.kws(&["access", "exclusive"]) {
            LockMode::AccessExclusive
        } else if c.kws(&["row", "share"]) {
            LockMode::RowShare
        } else if c.kws(&["row", "exclusive"]) {
            LockMode::RowExclusive
        } else if c.kws(&["share", "update", "exclusive"]) {
            LockMode::ShareUpdateExclusive
        } else if c.kws(&["share", "row", "exclusive"]) {
            LockMode::ShareRowExclusive
        } else if c.kw("share") {
            LockMode::Share
        } else if c.kw("exclusive") {
            LockMode::Exclusive
        } else {
            return Err(c.error());
        };
        c.expect_kw("mode")?;
    }
    let nowait = c.kw("nowait");
    c.expect_end()?;
    Ok(Statement::Lock(Lock {
        tables,
        only,
        mode,
        nowait,
    }))
}

pub(crate) fn copy(ctx: &StmtCtx<'_>) -> PResult<Statement> {
    let mut c = ctx.cursor();
    c.advance();
    let mut options = Vec::new();
    let word = |v: &str| Some(OptionValue::Word(v.to_string()));
    let source = if c.peek_kind(Kind::LParen) {
        // COPY ( query ) TO ...
        let open = c.i;
        let mut depth = 0usize;
        let mut close = None;
        for (k, t) in ctx.toks.iter().enumerate().skip(open) {
            match t.kind {
                Kind::LParen => depth += 1,
                Kind::RParen => {
                    depth -= 1;
                    if depth == 0 {
                        close = Some(k);
                        break;
                    }
                }
                _ => {}
            }
        }
        let Some(close) = close else {
            c.i = ctx.toks.len();
            return Err(c.error());
        };
        if close == open + 1 {
            c.i = close;
            return Err(c.error());
        }
        let range = ctx.toks[open + 1].start..ctx.toks[close - 1].end;
        let query = ctx.sqlparser_sub(range, |p| p.parse_query())?;
        c.i = close + 1;
        CopySource::Query(query)
    } else {
        if c.kw("binary") {
            options.push(UtilityOption {
                name: "format".into(),
                value: word("binary"),
            });
        }
        let name = c.object_name()?;
        let columns = if c.peek_kind(Kind::LParen) {
            c.ident_list()?
        } else {
            Vec::new()
        };
        CopySource::Table { name, columns }
    };
    let from = if c.kw("from") {
        true
    } else if c.kw("to") {
        false
    } else {
        return Err(c.error());
    };
    if from && matches!(source, CopySource::Query(_)) {
        return Err(c.error_prev());
    }
    let target = if c.kw("program") {
        CopyTarget::Program(c.string()?)
    } else if c.kw("stdin") {
        CopyTarget::Stdin
    } else if c.kw("stdout") {
        CopyTarget::Stdout
    } else if c.peek_kind(Kind::Str) {
        CopyTarget::File(c.string()?)
    } else {
        return Err(c.error());
    };
    if c.kws(&["using", "delimiters"]) {
        options.push(UtilityOption {
            name: "delimiter".into(),
            value: Some(OptionValue::Str(c.string()?)),
        });
    }
    c.kw("with");
    if c.peek_kind(Kind::LParen) {
        options.extend(option_list(&mut c)?);
    } else {
        // Legacy option list.
        loop {
            let str_opt = |c: &mut Cursor<'_>, name: &str| -> PResult<UtilityOption> {
                c.kw("as");
                Ok(UtilityOption {
                    name: name.to_string(),
                    value: Some(OptionValue::Str(c.string()?)),
                })
            };
            let opt = if c.kw("binary") {
                UtilityOption {
                    name: "format".into(),
                    value: word("binary"),
                }
            } else if c.kw("csv") {
                UtilityOption {
                    name: "format".into(),
                    value: word("csv"),
                }
            } else if c.kw("header") {
                flag("header")
            } else if c.kw("freeze") {
                flag("freeze")
            } else if c.kw("delimiter") {
                str_opt(&mut c, "delimiter")?
            } else if c.kw("null") {
                str_opt(&mut c, "null")?
            } else if c.kw("quote") {
                str_opt(&mut c, "quote")?
            } else if c.kw("escape") {
                str_opt(&mut c, "escape")?
            } else if c.kw("encoding") {
                UtilityOption {
                    name: "encoding".into(),
                    value: Some(OptionValue::Str(c.string()?)),
                }
            } else if c.kw("force") {
                let name = if c.kw("quote") {
                    "force_quote"
                } else if c.kws(&["not", "null"]) {
                    "force_not_null"
                } else if c.kw("null") {
                    "force_null"
                } else {
                    return Err(c.error());
                };
                let value = if c
                    .peek()
                    .is_some_and(|t| t.kind == Kind::Op && t.value == "*")
                {
                    c.advance();
                    OptionValue::Star
                } else {
                    let mut cols = vec![c.ident()?];
                    while c.eat(Kind::Comma) {
                        cols.push(c.ident()?);
                    }
                    OptionValue::List(cols)
                };
                UtilityOption {
                    name: name.into(),
                    value: Some(value),
                }
            } else {
                break;
            };
            options.push(opt);
        }
    }
    let where_clause = if c.peek_kw("where") {
        if !from {
            return Err(c.error());
        }
        c.advance();
        if c.at_end() {
            return Err(c.error());
        }
        let range = ctx.toks[c.i].start..ctx.end;
        Some(ctx.sqlparser_sub(range, |p| p.parse_expr())?)
    } else {
        c.expect_end()?;
        None
    };
    Ok(Statement::Copy(Copy {
        source,
        from,
        target,
        options,
        where_clause,
    }))
}

/// Transaction modes, separated by commas or blanks (possibly none).
fn transaction_modes(c: &mut Cursor<'_>) -> PResult<Vec<TransactionMode>> {
    let mut out = Vec::new();
    loop {
        let m = if c.kws(&["isolation", "level"]) {
            TransactionMode::IsolationLevel(if c.kws(&["read", "uncommitted"]) {
                IsolationLevel::ReadUncommitted
            } else if c.kws(&["read", "committed"]) {
                IsolationLevel::ReadCommitted
            } else if c.kws(&["repeatable", "read"]) {
                IsolationLevel::RepeatableRead
            } else if c.kw("serializable") {
                IsolationLevel::Serializable
            } else {
                return Err(c.error());
            })
        } else if c.kws(&["read", "only"]) {
            TransactionMode::ReadOnly
        } else if c.kws(&["read", "write"]) {
            TransactionMode::ReadWrite
        } else if c.kw("deferrable") {
            TransactionMode::Deferrable
        } else if c.kws(&["not", "deferrable"]) {
            TransactionMode::NotDeferrable
        } else if out.is_empty() || c.at_end() {
            break;
        } else {
            return Err(c.error());
        };
        out.push(m);
        if c.eat(Kind::Comma) && c.at_end() {
            return Err(c.error());
        }
    }
    Ok(out)
}

/// A dotted variable name, lower-cased.
fn var_name(c: &mut Cursor<'_>) -> PResult<String> {
    let mut parts = Vec::new();
    loop {
        let t = c.peek().ok_or_else(|| c.error())?;
        match t.kind {
            Kind::Word | Kind::QuotedIdent => parts.push(t.value.clone()),
            _ => return Err(c.error()),
        }
        c.advance();
        if !c.eat(Kind::Dot) {
            break;
        }
    }
    Ok(parts.join("."))
}

/// One SET value as PostgreSQL flattens it to text.
fn set_value(c: &mut Cursor<'_>) -> PResult<String> {
    let t = c.peek().ok_or_else(|| c.error())?;
    let v = match t.kind {
        Kind::Str | Kind::Number | Kind::Word | Kind::QuotedIdent => t.value.clone(),
        Kind::Op if t.value == "-" || t.value == "+" => {
            c.advance();
            let n = c.expect(Kind::Number)?;
            let sign = if t.value == "-" { "-" } else { "" };
            return Ok(format!("{sign}{}", n.value));
        }
        _ => return Err(c.error()),
    };
    c.advance();
    Ok(v)
}

/// `TO | =` then `DEFAULT` or a value list.
fn set_values(c: &mut Cursor<'_>) -> PResult<SetValue> {
    if c.peek_kw("default") && c.peek_at(1).is_none() {
        c.advance();
        return Ok(SetValue::Default);
    }
    let mut vals = vec![set_value(c)?];
    while c.eat(Kind::Comma) {
        vals.push(set_value(c)?);
    }
    c.expect_end()?;
    Ok(SetValue::Values(vals))
}

fn single(c: &mut Cursor<'_>, allow_default: bool) -> PResult<SetValue> {
    if allow_default && c.kw("default") {
        c.expect_end()?;
        return Ok(SetValue::Default);
    }
    let v = set_value(c)?;
    c.expect_end()?;
    Ok(SetValue::Values(vec![v]))
}

pub(crate) fn set(ctx: &StmtCtx<'_>) -> PResult<Statement> {
    let mut c = ctx.cursor();
    c.advance();
    if c.kws(&["constraints"]) {
        let mut names = Vec::new();
        if !c.kw("all") {
            names.push(c.object_name()?);
            while c.eat(Kind::Comma) {
                names.push(c.object_name()?);
            }
        }
        let deferred = if c.kw("deferred") {
            true
        } else if c.kw("immediate") {
            false
        } else {
            return Err(c.error());
        };
        c.expect_end()?;
        return Ok(Statement::Set(Set::Constraints { names, deferred }));
    }
    let mut local = false;
    let is_assign = |c: &Cursor<'_>, n: usize| {
        c.peek_at(n)
            .is_some_and(|t| t.is_kw("to") || t.value == "=")
    };
    if (c.peek_kw("local") || c.peek_kw("session"))
        && !is_assign(&c, 1)
        && !c
            .peek_at(1)
            .is_some_and(|t| t.is_kw("authorization") || t.is_kw("characteristics"))
    {
        local = c.peek_kw("local");
        c.advance();
    }
    let var = |name: &str, value| {
        Statement::Set(Set::Variable {
            local,
            name: name.to_string(),
            value,
        })
    };
    if !is_assign(&c, 1) {
        if c.kws(&["transaction", "snapshot"]) {
            let id = c.string()?;
            c.expect_end()?;
            return Ok(Statement::Set(Set::TransactionSnapshot(id)));
        }
        if c.kw("transaction") {
            let modes = transaction_modes(&mut c)?;
            if modes.is_empty() {
                return Err(c.error());
            }
            c.expect_end()?;
            return Ok(Statement::Set(Set::Transaction {
                session_characteristics: false,
                modes,
            }));
        }
        if c.kws(&["session", "characteristics"]) {
            c.expect_kw("as")?;
            c.expect_kw("transaction")?;
            let modes = transaction_modes(&mut c)?;
            if modes.is_empty() {
                return Err(c.error());
            }
            c.expect_end()?;
            return Ok(Statement::Set(Set::Transaction {
                session_characteristics: true,
                modes,
            }));
        }
        if c.kws(&["session", "authorization"]) {
            return Ok(var("session_authorization", single(&mut c, true)?));
        }
        if c.kws(&["time", "zone"]) {
            if c.kw("local") || c.kw("default") {
                c.expect_end()?;
                return Ok(var("timezone", SetValue::Default));
            }
            if c.kw("interval") {
                let v = c.string()?;
                // Optional interval qualifier, e.g. HOUR TO MINUTE.
                while c.peek().is_some_and(|t| t.kind == Kind::Word) {
                    c.advance();
                }
                c.expect_end()?;
                return Ok(var("timezone", SetValue::Values(vec![v])));
            }
            return Ok(var("timezone", single(&mut c, false)?));
        }
        if c.kw("names") {
            if c.at_end() {
                return Ok(var("client_encoding", SetValue::Default));
            }
            return Ok(var("client_encoding", single(&mut c, true)?));
        }
        if c.kw("schema") {
            let v = c.string()?;
            c.expect_end()?;
            return Ok(var("search_path", SetValue::Values(vec![v])));
        }
        if c.kw("catalog") {
            let v = c.string()?;
            c.expect_end()?;
            return Ok(var("catalog", SetValue::Values(vec![v])));
        }
        if c.kw("role") {
            return Ok(var("role", single(&mut c, false)?));
        }
        if c.kws(&["xml", "option"]) {
            return Ok(var("xmloption", single(&mut c, false)?));
        }
    }
    let name = var_name(&mut c)?;
    if !(c.kw("to")
        || c.peek()
            .is_some_and(|t| t.kind == Kind::Op && t.value == "="))
    {
        return Err(c.error());
    }
    if !c.peek_kw("to") && c.peek().is_some_and(|t| t.value == "=") {
        c.advance();
    }
    let value = set_values(&mut c)?;
    Ok(var(&name, value))
}

/// The GUC named by RESET/SHOW's special forms, or a plain variable name.
fn guc_name(c: &mut Cursor<'_>) -> PResult<Option<String>> {
    if c.kw("all") {
        return Ok(None);
    }
    let name = if c.kws(&["time", "zone"]) {
        "timezone".to_string()
    } else if c.kws(&["transaction", "isolation", "level"]) {
        "transaction_isolation".to_string()
    } else if c.kws(&["session", "authorization"]) {
        "session_authorization".to_string()
    } else {
        var_name(c)?
    };
    Ok(Some(name))
}

pub(crate) fn reset(ctx: &StmtCtx<'_>) -> PResult<Statement> {
    let mut c = ctx.cursor();
    c.advance();
    let name = guc_name(&mut c)?;
    c.expect_end()?;
    Ok(Statement::Reset(match name {
        None => ResetTarget::All,
        Some(n) => ResetTarget::Variable(n),
    }))
}

pub(crate) fn show(ctx: &StmtCtx<'_>) -> PResult<Statement> {
    let mut c = ctx.cursor();
    c.advance();
    let name = guc_name(&mut c)?;
    c.expect_end()?;
    Ok(Statement::Show(match name {
        None => ShowTarget::All,
        Some(n) => ShowTarget::Variable(n),
    }))
}

fn opt_transaction(c: &mut Cursor<'_>) {
    let _ = c.kw("work") || c.kw("transaction");
}

fn opt_chain(c: &mut Cursor<'_>) -> PResult<bool> {
    if c.kw("and") {
        let no = c.kw("no");
        c.expect_kw("chain")?;
        return Ok(!no);
    }
    Ok(false)
}

pub(crate) fn transaction(ctx: &StmtCtx<'_>) -> PResult<Statement> {
    let mut c = ctx.cursor();
    let first = c.advance().map(|t| t.value.clone()).unwrap_or_default();
    let stmt = match first.as_str() {
        "begin" => {
            opt_transaction(&mut c);
            TransactionStmt::Begin {
                modes: transaction_modes(&mut c)?,
            }
        }
        "start" => {
            c.expect_kw("transaction")?;
            TransactionStmt::Begin {
                modes: transaction_modes(&mut c)?,
            }
        }
        "commit" if c.kw("prepared") => TransactionStmt::CommitPrepared(c.string()?),
        "commit" | "end" => {
            opt_transaction(&mut c);
            TransactionStmt::Commit {
                chain: opt_chain(&mut c)?,
            }
        }
        "rollback" if c.kw("prepared") => TransactionStmt::RollbackPrepared(c.string()?),
        "rollback" | "abort" => {
            opt_transaction(&mut c);
            if first == "rollback" && c.kw("to") {
                c.kw("savepoint");
                TransactionStmt::RollbackTo(c.ident()?)
            } else {
                TransactionStmt::Rollback {
                    chain: opt_chain(&mut c)?,
                }
            }
        }
        "savepoint" => TransactionStmt::Savepoint(c.ident()?),
        "release" => {
            c.kw("savepoint");
            TransactionStmt::Release(c.ident()?)
        }
        "prepare" => {
            c.expect_kw("transaction")?;
            TransactionStmt::PrepareTransaction(c.string()?)
        }
        _ => return Err(c.error_prev()),
    };
    c.expect_end()?;
    Ok(Statement::Transaction(stmt))
}

pub(crate) fn do_block(ctx: &StmtCtx<'_>) -> PResult<Statement> {
    let mut c = ctx.cursor();
    c.advance();
    let mut language = None;
    let mut code = None;
    while !c.at_end() {
        if c.kw("language") {
            let t = c.peek().ok_or_else(|| c.error())?;
            if !matches!(t.kind, Kind::Word | Kind::QuotedIdent | Kind::Str) || language.is_some() {
                return Err(c.error());
            }
            c.advance();
            language = Some(t.value.clone());
        } else if c.peek_kind(Kind::Str) && code.is_none() {
            code = Some(c.string()?);
        } else {
            return Err(c.error());
        }
    }
    match code {
        Some(code) => Ok(Statement::Do { language, code }),
        None => Err(c.error()),
    }
}

/// Statements tried only after sqlparser rejected them.
pub(crate) fn fallback(ctx: &StmtCtx<'_>) -> Option<Statement> {
    let toks = ctx.toks;
    // `UPDATE/DELETE ... WHERE CURRENT OF c`: the condition becomes the marker call
    // `pgxc_current_of('c')`, which the executor resolves to the cursor's current row.
    let n = toks.len();
    if n >= 5
        && (toks[0].is_kw("update") || toks[0].is_kw("delete"))
        && toks[n - 4].is_kw("where")
        && toks[n - 3].is_kw("current")
        && toks[n - 2].is_kw("of")
    {
        let text = format!(
            "{} WHERE pgxc_current_of('{}')",
            &ctx.sql[ctx.start..toks[n - 4].start],
            toks[n - 1].value.replace('\'', "''")
        );
        let dialect = sqlparser::dialect::PostgreSqlDialect {};
        let mut v = sqlparser::parser::Parser::new(&dialect)
            .try_with_sql(&text)
            .and_then(|mut p| p.parse_statements())
            .ok()?;
        return (v.len() == 1).then(|| Statement::Sql(v.remove(0)));
    }
    if !toks[0].is_kw("alter") {
        return None;
    }
    let mut c = ctx.cursor();
    c.advance();
    if c.kw("sequence") {
        let if_exists = c.kws(&["if", "exists"]);
        let sequence = c.object_name().ok()?;
        if !c.kws(&["owned", "by"]) {
            let options = toks[c.i..].iter().map(|t| t.value.clone()).collect();
            return Some(Statement::AlterSequence {
                sequence,
                if_exists,
                options,
            });
        }
        let owned_by = if c.kw("none") {
            None
        } else {
            Some(c.object_name().ok()?)
        };
        c.expect_end().ok()?;
        return Some(Statement::AlterSequenceOwnedBy {
            sequence,
            if_exists,
            owned_by,
        });
    }
    // ALTER <kind words> <object> OWNER TO <role>
    let n = toks.len();
    if n >= 5
        && toks[n - 3].is_kw("owner")
        && toks[n - 2].is_kw("to")
        && matches!(toks[n - 1].kind, Kind::Word | Kind::QuotedIdent)
    {
        let mut k = 1;
        let mut kind = Vec::new();
        while k < n - 4 && toks[k].kind == Kind::Word && toks[k + 1].kind == Kind::Word {
            kind.push(toks[k].value.clone());
            k += 1;
        }
        if kind.is_empty() {
            return None;
        }
        let mut oc = ctx.cursor();
        oc.i = n - 1;
        let owner = oc.ident().ok()?;
        return Some(Statement::AlterOwner {
            kind: kind.join(" "),
            object: ctx.sql[toks[k].start..toks[n - 4].end].to_string(),
            owner,
        });
    }
    None
}

/// A signed integer count (`5`, `-2`, `+3`) for FETCH/MOVE.
fn signed_count(c: &mut Cursor<'_>) -> PResult<Option<sqlparser::ast::ValueWithSpan>> {
    let neg = match c.peek() {
        Some(t) if t.kind == Kind::Op && (t.value == "-" || t.value == "+") => {
            c.peek_at(1).is_some_and(|n| n.kind == Kind::Number) && {
                c.advance();
                t.value == "-"
            }
        }
        _ => false,
    };
    match c.peek() {
        Some(t) if t.kind == Kind::Number => {
            c.advance();
            if t.value.parse::<i64>().is_err() {
                return Err(c.error_prev());
            }
            let text = if neg {
                format!("-{}", t.value)
            } else {
                t.value.clone()
            };
            Ok(Some(sqlparser::ast::Value::Number(text, false).into()))
        }
        _ if neg => Err(c.error()),
        _ => Ok(None),
    }
}

/// `FETCH [direction] [FROM | IN] cursor` (PostgreSQL's `fetch_args`); the direction defaults to NEXT.
/// Returns the direction and the cursor name.
fn fetch_args(
    c: &mut Cursor<'_>,
) -> PResult<(sqlparser::ast::FetchDirection, sqlparser::ast::Ident)> {
    use sqlparser::ast::FetchDirection as F;
    let is_name_next = |c: &Cursor<'_>| {
        c.peek()
            .is_some_and(|t| matches!(t.kind, Kind::Word | Kind::QuotedIdent))
            && c.peek_at(1).is_none()
    };
    let dir = if is_name_next(c) || c.kw("next") {
        F::Next
    } else if c.kw("prior") {
        F::Prior
    } else if c.kw("first") {
        F::First
    } else if c.kw("last") {
        F::Last
    } else if c.kw("absolute") {
        F::Absolute {
            limit: signed_count(c)?.ok_or_else(|| c.error())?,
        }
    } else if c.kw("relative") {
        F::Relative {
            limit: signed_count(c)?.ok_or_else(|| c.error())?,
        }
    } else if c.kw("all") {
        F::All
    } else if c.kw("forward") {
        if c.kw("all") {
            F::ForwardAll
        } else {
            F::Forward {
                limit: signed_count(c)?,
            }
        }
    } else if c.kw("backward") {
        if c.kw("all") {
            F::BackwardAll
        } else {
            F::Backward {
                limit: signed_count(c)?,
            }
        }
    } else {
        match signed_count(c)? {
            Some(limit) => F::Count { limit },
            None => F::Next,
        }
    };
    if !c.kw("from") {
        c.kw("in");
    }
    let name = c.ident()?;
    c.expect_end()?;
    Ok((dir, name))
}

/// `FETCH ...`.
pub(crate) fn fetch(ctx: &StmtCtx<'_>) -> PResult<Statement> {
    let mut c = ctx.cursor();
    c.expect_kw("fetch")?;
    let (direction, name) = fetch_args(&mut c)?;
    Ok(Statement::Sql(sqlparser::ast::Statement::Fetch {
        name,
        direction,
        position: sqlparser::ast::FetchPosition::From,
        into: None,
    }))
}

/// `MOVE ...`: a FETCH that returns no rows (command tag `MOVE n`).
pub(crate) fn move_cursor(ctx: &StmtCtx<'_>) -> PResult<Statement> {
    let mut c = ctx.cursor();
    c.expect_kw("move")?;
    let (direction, name) = fetch_args(&mut c)?;
    Ok(Statement::Move { name, direction })
}

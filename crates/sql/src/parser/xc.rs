//! The Postgres-XC cluster extensions (Postgres-XC 1.2 grammar shapes).

use pgxc_common::{PgError, SqlState};
use sqlparser::ast::Ident;

use super::cursor::{Cursor, PResult};
use super::lexer::Kind;
use super::{
    AlterDistribution, CleanConnection, CleanTarget, Distribution, DistributionStrategy,
    NodeOptions, NodeTarget, NodeType, Statement, StmtCtx,
};

/// After `DISTRIBUTE BY`: `HASH(c) | MODULO(c) | ROUNDROBIN | ROUND ROBIN | REPLICATION`.
fn strategy(ctx: &StmtCtx<'_>, c: &mut Cursor<'_>) -> PResult<DistributionStrategy> {
    let t = match c.peek() {
        Some(t) if t.kind == Kind::Word => t,
        _ => return Err(c.error()),
    };
    c.advance();
    let unrecognized = || {
        ctx.error_at(
            t,
            format!("unrecognized distribution option \"{}\"", t.value),
        )
    };
    if c.peek_kind(Kind::LParen) {
        c.advance();
        let col = c.ident()?;
        c.expect(Kind::RParen)?;
        return match t.value.as_str() {
            "hash" => Ok(DistributionStrategy::Hash(col)),
            "modulo" => Ok(DistributionStrategy::Modulo(col)),
            _ => Err(unrecognized()),
        };
    }
    match t.value.as_str() {
        "replication" => Ok(DistributionStrategy::Replication),
        "roundrobin" => Ok(DistributionStrategy::RoundRobin),
        "round" if c.kw("robin") => Ok(DistributionStrategy::RoundRobin),
        _ => Err(unrecognized()),
    }
}

/// `( n1, ... )` or a bare comma-separated list.
fn node_list(c: &mut Cursor<'_>) -> PResult<Vec<Ident>> {
    if c.peek_kind(Kind::LParen) {
        return c.ident_list();
    }
    let mut out = vec![c.ident()?];
    while c.eat(Kind::Comma) {
        out.push(c.ident()?);
    }
    Ok(out)
}

/// After `TO`: `NODE (..) | GROUP g`.
fn target(c: &mut Cursor<'_>) -> PResult<NodeTarget> {
    if c.kw("node") {
        Ok(NodeTarget::Nodes(node_list(c)?))
    } else if c.kw("group") {
        Ok(NodeTarget::Group(c.ident()?))
    } else {
        Err(c.error())
    }
}

fn is_to_target(c: &Cursor<'_>) -> bool {
    c.peek_kw("to")
        && c.peek_at(1)
            .is_some_and(|t| t.is_kw("node") || t.is_kw("group"))
}

/// `CREATE [GLOBAL | LOCAL] [TEMP | TEMPORARY | UNLOGGED] TABLE ... [DISTRIBUTE BY ...] [TO ...] ...`:
/// cut the XC clause out and parse the rest with sqlparser. `None` if there is no XC clause.
pub(crate) fn create_table(ctx: &StmtCtx<'_>) -> PResult<Option<Statement>> {
    let toks = ctx.toks;
    let mut k = 1;
    while toks.get(k).is_some_and(|t| {
        matches!(
            t.value.as_str(),
            "global" | "local" | "temp" | "temporary" | "unlogged"
        ) && t.kind == Kind::Word
    }) {
        k += 1;
    }
    if !toks.get(k).is_some_and(|t| t.is_kw("table")) {
        return Ok(None);
    }
    let mut depth = 0usize;
    let mut clause_start = None;
    for (n, t) in toks.iter().enumerate().skip(k + 1) {
        match t.kind {
            Kind::LParen => depth += 1,
            Kind::RParen => depth = depth.saturating_sub(1),
            Kind::Word if depth == 0 => {
                if t.value == "as" {
                    break;
                }
                let next = toks.get(n + 1);
                if (t.value == "distribute" && next.is_some_and(|x| x.is_kw("by")))
                    || (t.value == "to"
                        && next.is_some_and(|x| x.is_kw("node") || x.is_kw("group")))
                {
                    clause_start = Some(n);
                    break;
                }
            }
            _ => {}
        }
    }
    let Some(first) = clause_start else {
        return Ok(None);
    };
    let mut c = ctx.cursor();
    c.i = first;
    let mut distribution = Distribution::default();
    if c.kws(&["distribute", "by"]) {
        distribution.strategy = Some(strategy(ctx, &mut c)?);
    }
    if c.kw("to") {
        distribution.target = Some(target(&mut c)?);
    }
    let range = toks[first].start..toks[c.i - 1].end;
    let mut stmts = ctx.sqlparser_statements(Some(range))?;
    if stmts.len() != 1 {
        return Err(super::error::syntax_error_at(ctx.sql, &toks[0]));
    }
    let create = stmts.remove(0);
    if !matches!(create, sqlparser::ast::Statement::CreateTable(_)) {
        return Err(super::error::syntax_error_at(ctx.sql, &toks[first]));
    }
    Ok(Some(Statement::CreateTable {
        create,
        distribution,
    }))
}

/// `ALTER TABLE [IF EXISTS] [ONLY] t {DISTRIBUTE BY .. | TO .. | ADD NODE (..) | DELETE NODE (..)} [, ...]`;
/// `None` for any other ALTER TABLE.
pub(crate) fn alter_table(ctx: &StmtCtx<'_>) -> PResult<Option<Statement>> {
    let mut c = ctx.cursor();
    c.i = 2;
    let if_exists = c.kws(&["if", "exists"]);
    let only = c.kw("only");
    let Ok(table) = c.object_name() else {
        return Ok(None);
    };
    if c.peek()
        .is_some_and(|t| t.kind == Kind::Op && t.value == "*")
    {
        c.advance();
    }
    let is_xc_action = |c: &Cursor<'_>| {
        (c.peek_kw("distribute") && c.peek_at(1).is_some_and(|t| t.is_kw("by")))
            || is_to_target(c)
            || ((c.peek_kw("add") || c.peek_kw("delete"))
                && c.peek_at(1).is_some_and(|t| t.is_kw("node")))
    };
    if !is_xc_action(&c) {
        return Ok(None);
    }
    let mut actions = Vec::new();
    loop {
        let a = if c.kws(&["distribute", "by"]) {
            AlterDistribution::DistributeBy(strategy(ctx, &mut c)?)
        } else if c.kw("to") {
            AlterDistribution::To(target(&mut c)?)
        } else if c.kws(&["add", "node"]) {
            AlterDistribution::AddNode(c.ident_list()?)
        } else if c.kws(&["delete", "node"]) {
            AlterDistribution::DeleteNode(c.ident_list()?)
        } else {
            return Err(c.error());
        };
        actions.push(a);
        if !c.eat(Kind::Comma) {
            break;
        }
    }
    c.expect_end()?;
    Ok(Some(Statement::AlterTableDistribution {
        table,
        if_exists,
        only,
        actions,
    }))
}

fn bool_value(ctx: &StmtCtx<'_>, c: &mut Cursor<'_>) -> PResult<bool> {
    let t = c.peek().ok_or_else(|| c.error())?;
    let v = match t.kind {
        Kind::Word | Kind::Str | Kind::Number => t.value.to_ascii_lowercase(),
        _ => return Err(c.error()),
    };
    c.advance();
    match v.as_str() {
        "true" | "on" | "yes" | "1" | "t" | "y" => Ok(true),
        "false" | "off" | "no" | "0" | "f" | "n" => Ok(false),
        _ => Err(PgError::new(
            SqlState::InvalidParameterValue,
            format!("invalid boolean value \"{}\"", &ctx.sql[t.start..t.end]),
        )),
    }
}

/// `WITH ( TYPE = 'datanode', HOST = 'h', PORT = 5432, PRIMARY [= b], PREFERRED [= b] )`.
fn node_options(ctx: &StmtCtx<'_>, c: &mut Cursor<'_>) -> PResult<NodeOptions> {
    c.expect_kw("with")?;
    c.expect(Kind::LParen)?;
    let mut o = NodeOptions::default();
    if c.eat(Kind::RParen) {
        return Ok(o);
    }
    let eq = |c: &mut Cursor<'_>| -> PResult<()> {
        match c.peek() {
            Some(t) if t.kind == Kind::Op && t.value == "=" => {
                c.advance();
                Ok(())
            }
            _ => Err(c.error()),
        }
    };
    let has_eq = |c: &Cursor<'_>| {
        c.peek()
            .is_some_and(|t| t.kind == Kind::Op && t.value == "=")
    };
    loop {
        let name = match c.peek() {
            Some(t) if t.kind == Kind::Word => t,
            _ => return Err(c.error()),
        };
        c.advance();
        match name.value.as_str() {
            "type" => {
                eq(c)?;
                let t = c.peek().ok_or_else(|| c.error())?;
                if !matches!(t.kind, Kind::Str | Kind::Word) {
                    return Err(c.error());
                }
                c.advance();
                o.node_type = Some(match t.value.to_ascii_lowercase().as_str() {
                    "coordinator" => NodeType::Coordinator,
                    "datanode" => NodeType::Datanode,
                    _ => {
                        return Err(PgError::new(
                            SqlState::InvalidParameterValue,
                            "type value is incorrect, specify 'coordinator or 'datanode'",
                        ))
                    }
                });
            }
            "host" => {
                eq(c)?;
                let t = c.peek().ok_or_else(|| c.error())?;
                if !matches!(t.kind, Kind::Str | Kind::Word | Kind::QuotedIdent) {
                    return Err(c.error());
                }
                c.advance();
                o.host = Some(t.value.clone());
            }
            "port" => {
                eq(c)?;
                let t = c.peek().ok_or_else(|| c.error())?;
                if !matches!(t.kind, Kind::Str | Kind::Number) {
                    return Err(c.error());
                }
                c.advance();
                let port = t.value.parse::<u16>().ok().filter(|p| *p > 0);
                o.port = Some(port.ok_or_else(|| {
                    PgError::new(
                        SqlState::InvalidParameterValue,
                        "port value is out of range",
                    )
                })?);
            }
            "primary" => {
                o.primary = Some(if has_eq(c) {
                    eq(c)?;
                    bool_value(ctx, c)?
                } else {
                    true
                });
            }
            "preferred" => {
                o.preferred = Some(if has_eq(c) {
                    eq(c)?;
                    bool_value(ctx, c)?
                } else {
                    true
                });
            }
            _ => {
                return Err(ctx.error_at(name, format!("incorrect node option: \"{}\"", name.value)))
            }
        }
        if c.eat(Kind::Comma) {
            continue;
        }
        c.expect(Kind::RParen)?;
        return Ok(o);
    }
}

pub(crate) fn create_node(ctx: &StmtCtx<'_>) -> PResult<Statement> {
    let mut c = ctx.cursor();
    c.i = 2;
    if c.kw("group") {
        let name = c.ident()?;
        c.expect_kw("with")?;
        let members = node_list(&mut c)?;
        c.expect_end()?;
        return Ok(Statement::CreateNodeGroup { name, members });
    }
    let name = c.ident()?;
    let options = node_options(ctx, &mut c)?;
    c.expect_end()?;
    Ok(Statement::CreateNode { name, options })
}

pub(crate) fn alter_node(ctx: &StmtCtx<'_>) -> PResult<Statement> {
    let mut c = ctx.cursor();
    c.i = 2;
    let name = c.ident()?;
    let options = node_options(ctx, &mut c)?;
    c.expect_end()?;
    Ok(Statement::AlterNode { name, options })
}

pub(crate) fn drop_node(ctx: &StmtCtx<'_>) -> PResult<Statement> {
    let mut c = ctx.cursor();
    c.i = 2;
    let group = c.kw("group");
    let if_exists = c.kws(&["if", "exists"]);
    let name = c.ident()?;
    c.expect_end()?;
    Ok(if group {
        Statement::DropNodeGroup { name, if_exists }
    } else {
        Statement::DropNode { name, if_exists }
    })
}

pub(crate) fn execute_direct(ctx: &StmtCtx<'_>) -> PResult<Statement> {
    let mut c = ctx.cursor();
    c.i = 2;
    c.expect_kw("on")?;
    c.kw("node");
    let nodes = if c.peek_kind(Kind::LParen) {
        c.ident_list()?
    } else {
        vec![c.ident()?]
    };
    let query = c.string()?;
    c.expect_end()?;
    Ok(Statement::ExecuteDirect { nodes, query })
}

pub(crate) fn clean_connection(ctx: &StmtCtx<'_>) -> PResult<Statement> {
    let mut c = ctx.cursor();
    c.i = 2;
    c.expect_kw("to")?;
    let target = if c.kw("all") {
        CleanTarget::All {
            force: c.kw("force"),
        }
    } else if c.kw("node") {
        CleanTarget::Nodes(node_list(&mut c)?)
    } else if c.kw("coordinator") {
        CleanTarget::Coordinators(node_list(&mut c)?)
    } else {
        return Err(c.error());
    };
    let mut database = None;
    if c.kw("for") {
        c.kw("database");
        database = Some(c.ident()?);
    }
    let mut user = None;
    if c.kw("to") {
        c.expect_kw("user")?;
        user = Some(c.ident()?);
    }
    c.expect_end()?;
    Ok(Statement::CleanConnection(CleanConnection {
        target,
        database,
        user,
    }))
}

pub(crate) fn create_barrier(ctx: &StmtCtx<'_>) -> PResult<Statement> {
    let mut c = ctx.cursor();
    c.i = 2;
    let id = if c.at_end() { None } else { Some(c.string()?) };
    c.expect_end()?;
    Ok(Statement::CreateBarrier { id })
}

pub(crate) fn pause(ctx: &StmtCtx<'_>) -> PResult<Statement> {
    let mut c = ctx.cursor();
    let pause = c.kw("pause");
    c.i = 2;
    c.expect_end()?;
    Ok(if pause {
        Statement::PauseCluster
    } else {
        Statement::UnpauseCluster
    })
}

//! The SQL front end: sqlparser (PostgreSQL dialect) behind a small pre-parse layer.
//!
//! [`parse`] splits a query string into statements on semicolons (with a PostgreSQL-shaped lexer that
//! respects quotes, dollar quotes and nested comments), recognises the statements sqlparser cannot parse or
//! mishandles (VACUUM, ANALYZE, CHECKPOINT, DISCARD, LOCK, COPY, SET/RESET/SHOW, transaction control
//! including two-phase commit) and the Postgres-XC cluster extensions (DISTRIBUTE BY, node and node group
//! DDL, EXECUTE DIRECT, CLEAN CONNECTION, CREATE BARRIER), and hands everything else to sqlparser.
//!
//! Syntax errors are SQLSTATE 42601 with PostgreSQL's messages (`syntax error at or near "x"`,
//! `syntax error at end of input`, `unterminated quoted string at or near ...`) and
//! [`PgError::position`] set to the 1-based character position in the whole query string. Deep nesting is
//! an error (54001), never a stack overflow: sqlparser's recursion limit is kept.
//!
//! Identifiers in the returned structures are [`Ident`]s as written (unquoted ones keep their case, quoted
//! ones carry `quote_style`), exactly like sqlparser's AST; fold them with [`normalize_ident`].

mod cursor;
mod error;
mod lexer;
mod rewrite;

pub(crate) use rewrite::{ARRAY_SET, BETWEEN_SYMMETRIC, CTE_SEARCH, FRAME_EXCLUDE};
mod utility;
mod xc;

use std::ops::Range;

use pgxc_common::PgError;
use sqlparser::ast::{self, Ident, ObjectName};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::{Parser, ParserError};

use cursor::Cursor;
use error::{syntax_error_at, syntax_error_end, syntax_error_raw, too_complex};
use lexer::{Kind, Token};

/// One parsed statement.
#[derive(Clone, Debug, PartialEq)]
#[allow(clippy::large_enum_variant)]
pub enum Statement {
    /// A statement sqlparser parses as is.
    Sql(ast::Statement),

    // ---- Postgres-XC extensions ----
    /// `CREATE TABLE ... DISTRIBUTE BY ... [TO NODE (..) | TO GROUP g]` (also with only a `TO` clause): the
    /// table definition as sqlparser parsed it (an `ast::Statement::CreateTable`, CTAS included) with the
    /// XC clause cut out. A CREATE TABLE without an XC clause is a plain [`Statement::Sql`].
    CreateTable {
        create: ast::Statement,
        distribution: Distribution,
    },
    /// `ALTER TABLE [IF EXISTS] [ONLY] t DISTRIBUTE BY ... | TO NODE (..) | TO GROUP g | ADD NODE (..) |
    /// DELETE NODE (..)` (comma-separated actions).
    AlterTableDistribution {
        table: ObjectName,
        if_exists: bool,
        only: bool,
        actions: Vec<AlterDistribution>,
    },
    /// `CREATE NODE n WITH (TYPE = 'datanode', HOST = 'h', PORT = p, PRIMARY, PREFERRED)`.
    CreateNode { name: Ident, options: NodeOptions },
    /// `ALTER NODE n WITH (...)`.
    AlterNode { name: Ident, options: NodeOptions },
    /// `DROP NODE [IF EXISTS] n`.
    DropNode { name: Ident, if_exists: bool },
    /// `CREATE NODE GROUP g WITH (n1, n2, ...)`.
    CreateNodeGroup { name: Ident, members: Vec<Ident> },
    /// `DROP NODE GROUP [IF EXISTS] g`.
    DropNodeGroup { name: Ident, if_exists: bool },
    /// `EXECUTE DIRECT ON (n1 [, ...]) 'query'` (also XC's unparenthesised `ON n`).
    ExecuteDirect { nodes: Vec<Ident>, query: String },
    /// `CLEAN CONNECTION TO {ALL [FORCE] | NODE (..) | COORDINATOR (..)} [FOR [DATABASE] d] [TO USER u]`.
    CleanConnection(CleanConnection),
    /// `CREATE BARRIER ['id']`.
    CreateBarrier { id: Option<String> },
    /// `PAUSE CLUSTER` (Postgres-XL).
    PauseCluster,
    /// `UNPAUSE CLUSTER` (Postgres-XL).
    UnpauseCluster,

    // ---- PostgreSQL utility statements parsed here ----
    /// `VACUUM [FULL] [FREEZE] [VERBOSE] [ANALYZE] [t [(cols)], ...]` or `VACUUM (opts) [...]`.
    Vacuum(Vacuum),
    /// `ANALYZE [VERBOSE] [t [(cols)], ...]` or `ANALYZE (opts) [...]` (also `ANALYSE`).
    Analyze(Vacuum),
    /// `CHECKPOINT`.
    Checkpoint,
    /// `DISCARD ALL | PLANS | SEQUENCES | TEMP`.
    Discard(DiscardTarget),
    /// `LOCK [TABLE] [ONLY] t [*] [, ...] [IN mode MODE] [NOWAIT]`.
    Lock(Lock),
    /// Every form of `COPY`.
    Copy(Copy),
    /// Every form of `SET`.
    Set(Set),
    /// `RESET name | ALL` (and `RESET TIME ZONE` etc., named by their GUC).
    Reset(ResetTarget),
    /// `SHOW name | ALL` (and `SHOW TIME ZONE` etc., named by their GUC).
    Show(ShowTarget),
    /// Transaction control, savepoints and two-phase commit.
    Transaction(TransactionStmt),
    /// `DO [LANGUAGE l] 'code'` (either order).
    Do {
        language: Option<String>,
        code: String,
    },
    /// `ALTER <object kind> <object> OWNER TO role` for the kinds sqlparser does not parse (pg_dump emits
    /// one per object, e.g. `ALTER TYPE public.mood OWNER TO postgres`). `kind` is the lower-cased words
    /// after ALTER (`type`, `function`, `sequence`...), `object` the object's text as written.
    AlterOwner {
        kind: String,
        object: String,
        owner: Ident,
    },
    /// `MOVE [direction] [FROM | IN] cursor`: repositions a cursor like FETCH, returning no rows.
    Move {
        name: Ident,
        direction: ast::FetchDirection,
    },
    /// `ALTER SEQUENCE [IF EXISTS] s OWNED BY t.c | NONE` (pg_dump, for serial columns); `None` = NONE.
    AlterSequenceOwnedBy {
        sequence: ObjectName,
        if_exists: bool,
        owned_by: Option<ObjectName>,
    },
    /// `ALTER SEQUENCE [IF EXISTS] s <options>` (RESTART [WITH n], INCREMENT [BY] n, [NO] MINVALUE,
    /// [NO] MAXVALUE, START [WITH] n, [NO] CYCLE, CACHE n, OWNED BY ..): the option tokens' values
    /// (words lower-cased), interpreted by the executor.
    AlterSequence {
        sequence: ObjectName,
        if_exists: bool,
        options: Vec<String>,
    },
}

/// A `DISTRIBUTE BY` / `TO NODE` clause.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Distribution {
    /// `DISTRIBUTE BY ...`, if given.
    pub strategy: Option<DistributionStrategy>,
    /// `TO NODE (..)` / `TO GROUP g`, if given.
    pub target: Option<NodeTarget>,
}

/// How rows are placed on datanodes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DistributionStrategy {
    Hash(Ident),
    Modulo(Ident),
    RoundRobin,
    Replication,
}

/// Where a table lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeTarget {
    Nodes(Vec<Ident>),
    Group(Ident),
}

/// One action of `ALTER TABLE ... ` redistribution.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AlterDistribution {
    DistributeBy(DistributionStrategy),
    To(NodeTarget),
    AddNode(Vec<Ident>),
    DeleteNode(Vec<Ident>),
}

/// `TYPE = 'coordinator' | 'datanode'`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeType {
    Coordinator,
    Datanode,
}

/// The options of CREATE/ALTER NODE (`None` = not given).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct NodeOptions {
    pub node_type: Option<NodeType>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub primary: Option<bool>,
    pub preferred: Option<bool>,
}

/// `CLEAN CONNECTION`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CleanConnection {
    pub target: CleanTarget,
    pub database: Option<Ident>,
    pub user: Option<Ident>,
}

/// Which pooled connections to drop.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CleanTarget {
    All { force: bool },
    Nodes(Vec<Ident>),
    Coordinators(Vec<Ident>),
}

/// VACUUM / ANALYZE: options (legacy keywords are turned into options: `full`, `freeze`, `verbose`,
/// `analyze`) and targets.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Vacuum {
    pub options: Vec<UtilityOption>,
    pub tables: Vec<TableAndColumns>,
}

impl Vacuum {
    /// The option `name` (lower case), if given.
    pub fn option(&self, name: &str) -> Option<&UtilityOption> {
        self.options.iter().find(|o| o.name == name)
    }
}

/// `t [(a, b)]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableAndColumns {
    pub name: ObjectName,
    pub columns: Vec<Ident>,
}

/// `name [value]` in a parenthesised option list (VACUUM, ANALYZE, COPY). `name` is lower case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UtilityOption {
    pub name: String,
    pub value: Option<OptionValue>,
}

/// An option value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OptionValue {
    /// A string constant.
    Str(String),
    /// A number (with its sign).
    Number(String),
    /// A keyword or unquoted identifier, lower-cased (`on`, `true`, `csv`...).
    Word(String),
    /// `*`.
    Star,
    /// `(a, b)`.
    List(Vec<Ident>),
}

/// `DISCARD` target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiscardTarget {
    All,
    Plans,
    Sequences,
    Temp,
}

/// `LOCK`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lock {
    pub tables: Vec<ObjectName>,
    pub only: bool,
    pub mode: LockMode,
    pub nowait: bool,
}

/// Table lock modes (default ACCESS EXCLUSIVE).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockMode {
    AccessShare,
    RowShare,
    RowExclusive,
    ShareUpdateExclusive,
    Share,
    ShareRowExclusive,
    Exclusive,
    AccessExclusive,
}

/// `COPY`.
#[derive(Clone, Debug, PartialEq)]
pub struct Copy {
    pub source: CopySource,
    /// `true` for `COPY ... FROM` (load), `false` for `COPY ... TO` (unload).
    pub from: bool,
    pub target: CopyTarget,
    /// Options, new-style or translated from the legacy syntax (`BINARY` → `format binary`, `CSV` →
    /// `format csv`, `HEADER` → `header`, `DELIMITER 'x'` → `delimiter 'x'`, `FORCE QUOTE` → `force_quote`...).
    pub options: Vec<UtilityOption>,
    /// `WHERE` (COPY FROM only).
    pub where_clause: Option<ast::Expr>,
}

impl Copy {
    /// The option `name` (lower case), if given.
    pub fn option(&self, name: &str) -> Option<&UtilityOption> {
        self.options.iter().find(|o| o.name == name)
    }
}

/// What a COPY reads or writes.
#[derive(Clone, Debug, PartialEq)]
pub enum CopySource {
    Table {
        name: ObjectName,
        columns: Vec<Ident>,
    },
    Query(Box<ast::Query>),
}

/// Where COPY data goes or comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CopyTarget {
    Stdin,
    Stdout,
    File(String),
    Program(String),
}

/// `SET`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Set {
    /// `SET [SESSION | LOCAL] name {TO | =} value [, ...] | DEFAULT`, plus the special forms mapped to their
    /// GUC: `TIME ZONE` → `timezone`, `NAMES` → `client_encoding`, `SCHEMA` → `search_path`, `ROLE` →
    /// `role`, `SESSION AUTHORIZATION` → `session_authorization`, `XML OPTION` → `xmloption`.
    /// `name` is lower case (dotted for custom settings).
    Variable {
        local: bool,
        name: String,
        value: SetValue,
    },
    /// `SET [LOCAL] TRANSACTION modes` (`session_characteristics: false`) or
    /// `SET SESSION CHARACTERISTICS AS TRANSACTION modes` (`true`).
    Transaction {
        session_characteristics: bool,
        modes: Vec<TransactionMode>,
    },
    /// `SET TRANSACTION SNAPSHOT 'id'`.
    TransactionSnapshot(String),
    /// `SET CONSTRAINTS {ALL | name, ...} {DEFERRED | IMMEDIATE}` (`names` empty = ALL).
    Constraints {
        names: Vec<ObjectName>,
        deferred: bool,
    },
}

/// The value of `SET`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SetValue {
    /// `DEFAULT` (also `TIME ZONE LOCAL`, `SESSION AUTHORIZATION DEFAULT`).
    Default,
    /// The list of values as PostgreSQL flattens them to text: strings as is, numbers as written,
    /// unquoted words lower-cased, quoted identifiers as is.
    Values(Vec<String>),
}

/// `RESET`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResetTarget {
    All,
    Variable(String),
}

/// `SHOW`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ShowTarget {
    All,
    Variable(String),
}

/// Transaction control.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransactionStmt {
    /// `BEGIN [WORK | TRANSACTION] [modes]`, `START TRANSACTION [modes]`.
    Begin {
        modes: Vec<TransactionMode>,
    },
    /// `COMMIT | END [WORK | TRANSACTION] [AND [NO] CHAIN]`.
    Commit {
        chain: bool,
    },
    /// `ROLLBACK | ABORT [WORK | TRANSACTION] [AND [NO] CHAIN]`.
    Rollback {
        chain: bool,
    },
    Savepoint(Ident),
    /// `RELEASE [SAVEPOINT] name`.
    Release(Ident),
    /// `ROLLBACK [WORK | TRANSACTION] TO [SAVEPOINT] name`.
    RollbackTo(Ident),
    /// `PREPARE TRANSACTION 'gid'`.
    PrepareTransaction(String),
    /// `COMMIT PREPARED 'gid'`.
    CommitPrepared(String),
    /// `ROLLBACK PREPARED 'gid'`.
    RollbackPrepared(String),
}

/// A transaction mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransactionMode {
    IsolationLevel(IsolationLevel),
    ReadOnly,
    ReadWrite,
    Deferrable,
    NotDeferrable,
}

/// An isolation level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IsolationLevel {
    ReadUncommitted,
    ReadCommitted,
    RepeatableRead,
    Serializable,
}

/// A statement with where it came from in the query string.
#[derive(Clone, Debug, PartialEq)]
pub struct SpannedStatement {
    pub statement: Statement,
    /// Byte range of the statement's text in the query string: from its first token to its last, without
    /// leading comments or the terminating semicolon.
    pub span: Range<usize>,
    /// That text (what fast query shipping sends on).
    pub text: String,
}

/// PostgreSQL's identifier folding: unquoted identifiers are lower-cased (ASCII), quoted ones kept.
pub fn normalize_ident(ident: &Ident) -> String {
    if ident.quote_style.is_some() {
        ident.value.clone()
    } else {
        ident.value.to_ascii_lowercase()
    }
}

/// Parse a query string (one or more statements separated by semicolons; empty statements are skipped).
pub fn parse(sql: &str) -> Result<Vec<Statement>, PgError> {
    Ok(parse_spanned(sql)?
        .into_iter()
        .map(|s| s.statement)
        .collect())
}

/// [`parse`], keeping each statement's text span.
pub fn parse_spanned(sql: &str) -> Result<Vec<SpannedStatement>, PgError> {
    let tokens = lexer::tokenize(sql)?;
    let mut out = Vec::new();
    let mut begin = 0;
    for (k, t) in tokens.iter().enumerate() {
        if t.kind == Kind::Semicolon {
            if k > begin {
                parse_one(sql, &tokens[begin..k], Some(t), &mut out)?;
            }
            begin = k + 1;
        }
    }
    if begin < tokens.len() {
        parse_one(sql, &tokens[begin..], None, &mut out)?;
    }
    Ok(out)
}

/// Parse one statement whose tokens are `toks` (non-empty).
fn parse_one(
    sql: &str,
    toks: &[Token],
    terminator: Option<&Token>,
    out: &mut Vec<SpannedStatement>,
) -> Result<(), PgError> {
    let start = toks[0].start;
    let end = toks[toks.len() - 1].end;
    let ctx = StmtCtx {
        sql,
        toks,
        terminator,
        start,
        end,
    };
    let stmts = match recognise(&ctx)? {
        Some(s) => vec![s],
        None => match ctx.sqlparser_statements(None) {
            Ok(v) => v.into_iter().map(Statement::Sql).collect(),
            // Forms sqlparser lacks, tried only when it fails.
            Err(e) => match utility::fallback(&ctx).or_else(|| rewrite::fallback(&ctx)) {
                Some(s) => vec![s],
                None => return Err(e),
            },
        },
    };
    for statement in stmts {
        out.push(SpannedStatement {
            statement,
            span: start..end,
            text: sql[start..end].to_string(),
        });
    }
    Ok(())
}

/// One statement being parsed.
pub(crate) struct StmtCtx<'a> {
    pub sql: &'a str,
    pub toks: &'a [Token],
    pub terminator: Option<&'a Token>,
    /// Byte range of the statement in `sql`.
    pub start: usize,
    pub end: usize,
}

impl<'a> StmtCtx<'a> {
    pub fn cursor(&self) -> Cursor<'a> {
        Cursor::new(self.sql, self.toks, self.terminator)
    }

    /// The statement text, with the byte ranges in `blank` replaced by spaces (newlines kept, one space
    /// per character, so sqlparser's line/column locations still match the original text).
    fn text_blanked(&self, blank: Option<Range<usize>>) -> String {
        let text = &self.sql[self.start..self.end];
        match blank {
            None => text.to_string(),
            Some(r) => {
                let mut s = String::with_capacity(text.len());
                for (i, c) in text.char_indices() {
                    let abs = self.start + i;
                    if abs >= r.start && abs < r.end && c != '\n' {
                        s.push(' ');
                    } else {
                        s.push(c);
                    }
                }
                s
            }
        }
    }

    /// Run sqlparser on the statement (with an optional range blanked out).
    pub fn sqlparser_statements(
        &self,
        blank: Option<Range<usize>>,
    ) -> Result<Vec<ast::Statement>, PgError> {
        let text = self.text_blanked(blank);
        let dialect = PostgreSqlDialect {};
        let result = Parser::new(&dialect)
            .try_with_sql(&text)
            .and_then(|mut p| p.parse_statements());
        match result {
            Ok(v) if !v.is_empty() => Ok(v),
            Ok(_) => Err(syntax_error_at(self.sql, &self.toks[0])),
            Err(e) => Err(self.map_error(self.start, self.end, &e)),
        }
    }

    /// Run a sqlparser sub-parser on the byte range `range` of the query string.
    pub fn sqlparser_sub<T>(
        &self,
        range: Range<usize>,
        f: impl FnOnce(&mut Parser<'_>) -> Result<T, ParserError>,
    ) -> Result<T, PgError> {
        let text = &self.sql[range.clone()];
        let dialect = PostgreSqlDialect {};
        let result = Parser::new(&dialect).try_with_sql(text).and_then(|mut p| {
            let v = f(&mut p)?;
            // Everything must be consumed.
            let next = p.peek_token();
            if next.token != sqlparser::tokenizer::Token::EOF {
                return p.expected("end of input", next);
            }
            Ok(v)
        });
        result.map_err(|e| self.map_error(range.start, range.end, &e))
    }

    /// Map a sqlparser error on the text `sql[base..limit]` to a PostgreSQL syntax error.
    fn map_error(&self, base: usize, limit: usize, e: &ParserError) -> PgError {
        let msg = match e {
            ParserError::RecursionLimitExceeded => return too_complex(),
            ParserError::TokenizerError(m) | ParserError::ParserError(m) => m,
        };
        if msg.contains("found: EOF") {
            return self.end_error(limit);
        }
        if let Some(off) =
            parse_location(msg).and_then(|(l, c)| locate(&self.sql[base..limit], l, c))
        {
            let abs = base + off;
            // The token at (or containing) that offset.
            if let Some(t) = self
                .toks
                .iter()
                .find(|t| t.start <= abs && abs < t.end.max(t.start + 1))
                .or_else(|| self.toks.iter().find(|t| t.start >= abs))
            {
                if t.end <= limit {
                    return syntax_error_at(self.sql, t);
                }
            }
            return self.end_error(limit);
        }
        // No location: blame the first token.
        syntax_error_at(self.sql, &self.toks[0])
    }

    /// "End of input" of a (sub)statement ending at `limit`: the next token if there is one in this statement,
    /// else the terminating semicolon, else the end of the string.
    fn end_error(&self, limit: usize) -> PgError {
        if let Some(t) = self.toks.iter().find(|t| t.start >= limit) {
            return syntax_error_at(self.sql, t);
        }
        match self.terminator {
            Some(t) => syntax_error_at(self.sql, t),
            None => syntax_error_end(self.sql),
        }
    }

    /// An error with a message at a token.
    pub fn error_at(&self, t: &Token, message: String) -> PgError {
        syntax_error_raw(self.sql, t.start, message)
    }
}

/// `... at Line: L, Column: C` at the end of a sqlparser message.
fn parse_location(msg: &str) -> Option<(u64, u64)> {
    let i = msg.rfind(" at Line: ")?;
    let rest = &msg[i + " at Line: ".len()..];
    let (l, c) = rest.split_once(", Column: ")?;
    Some((l.trim().parse().ok()?, c.trim().parse().ok()?))
}

/// The byte offset in `text` of sqlparser's 1-based (line, column) (columns count characters).
fn locate(text: &str, line: u64, column: u64) -> Option<usize> {
    let (mut l, mut c) = (1u64, 1u64);
    for (i, ch) in text.char_indices() {
        if l == line && c == column {
            return Some(i);
        }
        if ch == '\n' {
            l += 1;
            c = 1;
        } else {
            c += 1;
        }
    }
    (l == line && c == column).then_some(text.len())
}

/// Recognise the statements parsed here; `None` hands the statement to sqlparser.
fn recognise(ctx: &StmtCtx<'_>) -> Result<Option<Statement>, PgError> {
    let first = &ctx.toks[0];
    if first.kind != Kind::Word {
        return Ok(None);
    }
    let kw = |n: usize, k: &str| ctx.toks.get(n).is_some_and(|t| t.is_kw(k));
    match first.value.as_str() {
        "vacuum" => utility::vacuum(ctx).map(Some),
        "analyze" | "analyse" => utility::analyze(ctx).map(Some),
        "checkpoint" => utility::checkpoint(ctx).map(Some),
        "discard" => utility::discard(ctx).map(Some),
        "lock" => utility::lock(ctx).map(Some),
        "copy" => utility::copy(ctx).map(Some),
        "set" => utility::set(ctx).map(Some),
        "reset" => utility::reset(ctx).map(Some),
        "show" => utility::show(ctx).map(Some),
        "do" => utility::do_block(ctx).map(Some),
        "table" => table_query(ctx).map(Some),
        "fetch" => utility::fetch(ctx).map(Some),
        "move" => utility::move_cursor(ctx).map(Some),
        "begin" | "start" | "commit" | "end" | "rollback" | "abort" | "savepoint" | "release" => {
            utility::transaction(ctx).map(Some)
        }
        "prepare"
            if kw(1, "transaction") && ctx.toks.get(2).is_some_and(|t| t.kind == Kind::Str) =>
        {
            utility::transaction(ctx).map(Some)
        }
        "execute" if kw(1, "direct") && kw(2, "on") => xc::execute_direct(ctx).map(Some),
        "clean" if kw(1, "connection") => xc::clean_connection(ctx).map(Some),
        "pause" | "unpause" if kw(1, "cluster") => xc::pause(ctx).map(Some),
        "create" if kw(1, "node") => xc::create_node(ctx).map(Some),
        "create" if kw(1, "barrier") => xc::create_barrier(ctx).map(Some),
        "alter" if kw(1, "node") => xc::alter_node(ctx).map(Some),
        "drop" if kw(1, "node") => xc::drop_node(ctx).map(Some),
        "create" => xc::create_table(ctx),
        "alter" if kw(1, "table") => xc::alter_table(ctx),
        _ => Ok(None),
    }
}

/// `TABLE name [ORDER BY ...] [LIMIT ...]`: PostgreSQL's shorthand for `SELECT * FROM name ...`, parsed as
/// that query (sqlparser lacks the form).
fn table_query(ctx: &StmtCtx<'_>) -> Result<Statement, PgError> {
    let rest = &ctx.sql[ctx.toks[0].end..ctx.end];
    let text = format!("SELECT * FROM{rest}");
    let dialect = PostgreSqlDialect {};
    let parsed = Parser::new(&dialect)
        .try_with_sql(&text)
        .and_then(|mut p| p.parse_statements());
    match parsed {
        Ok(mut v) if v.len() == 1 && matches!(v[0], ast::Statement::Query(_)) => {
            Ok(Statement::Sql(v.remove(0)))
        }
        _ => Err(syntax_error_at(ctx.sql, &ctx.toks[0])),
    }
}

//! The PostgreSQL wire protocol in front of a coordinator: `pgxc_wire`'s server with
//! [`CoordSession`]s, each driven from its session thread on the process's runtime.
//!
//! Describe of a prepared statement (parameter-type inference and result columns) runs on a
//! session of the coordinator's catalog engine, which knows every table's definition and holds no
//! user rows: the `LIMIT 0` probes cost no datanode round trip and give exactly the column types a
//! datanode would. A statement the committed catalog cannot describe (a table created in the open
//! transaction, a temporary table) is described through the coordinator session instead.
//!
//! Every call runs inside the session's [`CallContext`]: a client's CancelRequest cancels it
//! (forwarded to the datanodes the statement waits on, and to the catalog session's engine), and
//! the NOTICEs of datanodes and of the coordinator itself are gathered there, one copy per
//! statement, for the NoticeResponses. A shipped SELECT's result streams
//! ([`CoordSession::execute_streaming`]).

use std::sync::Arc;

use pgxc_common::error::Notice;
use pgxc_common::{PgError, SqlState};
use pgxc_datanode::client::CallContext;
use pgxc_sql::engine::CopyOut;
use pgxc_sql::parser;
use pgxc_sql::types::DataType;
use pgxc_sql::types::TimeZone;
use pgxc_sql::QueryResult;
use pgxc_wire::auth::Auth;
use pgxc_wire::extended::{self, Description};
use pgxc_wire::{Canceller, Executed, Fetched, WireSession};
use tokio::net::TcpListener;
use tokio::runtime::Handle;

use crate::node::Coordinator;
use crate::session::CoordSession;

/// A [`CoordSession`] with the synchronous face `pgxc_wire` drives: every call blocks the
/// session thread on the process runtime (`Handle::block_on`), so pooled datanode connections
/// and the GTM client keep being driven by that runtime.
pub struct WireCoordSession {
    handle: Handle,
    inner: CoordSession,
    coord: Arc<Coordinator>,
    /// A catalog-engine session for Describe probes (made on first use).
    catalog: Option<pgxc_sql::Session>,
    /// The running statement's cancel switch and notices.
    ctx: Arc<CallContext>,
    /// The cancel flag of the coordinator session's catalog engine session.
    local_cancel: Arc<std::sync::atomic::AtomicBool>,
}

impl WireCoordSession {
    /// A new session on `coord`. Errors: XX000 if its catalog session cannot start.
    pub fn new(coord: &Arc<Coordinator>, handle: Handle) -> Result<WireCoordSession, PgError> {
        let inner = CoordSession::new(coord)?;
        let local_cancel = handle.block_on(inner.local_cancel_flag())?;
        Ok(WireCoordSession {
            handle,
            inner,
            coord: Arc::clone(coord),
            catalog: None,
            ctx: CallContext::new(),
            local_cancel,
        })
    }

    /// Start a query string: forget an earlier cancel and notices left by probes.
    fn begin(&mut self) {
        self.ctx.reset();
        let _ = self.ctx.take_notices();
    }
}

impl WireSession for WireCoordSession {
    fn execute(&mut self, sql: &str) -> Result<Vec<QueryResult>, PgError> {
        self.begin();
        let ctx = Arc::clone(&self.ctx);
        self.handle.block_on(ctx.scope(self.inner.execute(sql)))
    }
    fn execute_streaming(&mut self, sql: &str) -> Result<Executed, PgError> {
        self.begin();
        let ctx = Arc::clone(&self.ctx);
        let (results, stream) = self
            .handle
            .block_on(ctx.scope(self.inner.execute_streaming(sql)))?;
        Ok(Executed { results, stream })
    }
    fn fetch(&mut self, id: u64, max: usize) -> Result<Fetched, PgError> {
        let ctx = Arc::clone(&self.ctx);
        match self
            .handle
            .block_on(ctx.scope(self.inner.fetch_stream(id, max)))?
        {
            Ok(rows) => Ok(Fetched::Rows(rows)),
            Err(tag) => Ok(Fetched::Done(tag)),
        }
    }
    fn close_stream(&mut self, id: u64) -> Result<(), PgError> {
        let ctx = Arc::clone(&self.ctx);
        self.handle.block_on(ctx.scope(self.inner.close_stream(id)))
    }
    fn take_notices(&mut self) -> Vec<Notice> {
        self.ctx.take_notices()
    }
    fn canceller(&self) -> Option<Canceller> {
        let (ctx, local) = (Arc::clone(&self.ctx), Arc::clone(&self.local_cancel));
        Some(Arc::new(move || {
            local.store(true, std::sync::atomic::Ordering::SeqCst);
            ctx.cancel();
        }))
    }
    fn transaction_status(&self) -> u8 {
        if self.inner.in_failed_transaction() {
            b'E'
        } else if self.inner.in_transaction() {
            b'T'
        } else {
            b'I'
        }
    }
    fn in_failed_transaction(&self) -> bool {
        self.inner.in_failed_transaction()
    }
    fn fail_transaction_block(&mut self) {
        self.inner.mark_failed();
    }
    fn time_zone(&self) -> TimeZone {
        TimeZone::utc()
    }
    fn copy_in(&mut self, stmt: &parser::Copy, data: &[u8]) -> Result<QueryResult, PgError> {
        self.handle.block_on(self.inner.copy_in(stmt, data))
    }
    fn copy_out(&mut self, stmt: &parser::Copy) -> Result<CopyOut, PgError> {
        let f = CopyFormat::of(stmt)?;
        let sql = match &stmt.source {
            parser::CopySource::Table { name, columns } if columns.is_empty() => {
                format!("SELECT * FROM {name}")
            }
            parser::CopySource::Table { name, columns } => {
                let cols: Vec<String> = columns.iter().map(ToString::to_string).collect();
                format!("SELECT {} FROM {name}", cols.join(", "))
            }
            parser::CopySource::Query(q) => q.to_string(),
        };
        let r = self
            .execute(&sql)?
            .pop()
            .unwrap_or_else(|| QueryResult::command(""));
        Ok(f.encode(&r, &self.time_zone()))
    }
    fn describe(&mut self, sql: &str, declared: &[u32]) -> Result<Description, PgError> {
        let coord = Arc::clone(&self.coord);
        let catalog = self.catalog.get_or_insert_with(|| coord.engine.session());
        match extended::describe(catalog, sql, declared) {
            Ok(d) => Ok(d),
            Err(_) => extended::describe(self, sql, declared),
        }
    }
    fn param_types(&mut self, sql: &str, declared: &[u32]) -> Result<Vec<DataType>, PgError> {
        let coord = Arc::clone(&self.coord);
        let catalog = self.catalog.get_or_insert_with(|| coord.engine.session());
        match extended::param_types(catalog, sql, declared) {
            Ok(t) => Ok(t),
            Err(_) => extended::param_types(self, sql, declared),
        }
    }
}

/// Serve clients of `coord` on `listener` until it fails, trusting every client. Must run inside
/// the process's multi-threaded runtime.
pub async fn serve(listener: TcpListener, coord: Arc<Coordinator>) -> std::io::Result<()> {
    serve_auth(listener, coord, Auth::Trust).await
}

/// [`serve`] with the given client authentication (trust or SCRAM-SHA-256).
pub async fn serve_auth(
    listener: TcpListener,
    coord: Arc<Coordinator>,
    auth: Auth,
) -> std::io::Result<()> {
    let handle = Handle::current();
    pgxc_wire::serve_with_auth(
        listener,
        move || {
            WireCoordSession::new(&coord, handle.clone())
                .map_err(|e| std::io::Error::other(e.message))
        },
        auth,
    )
    .await
}

/// The options of `COPY ... TO STDOUT` a coordinator honours (PostgreSQL's defaults otherwise):
/// `FORMAT text|csv`, `HEADER`, `DELIMITER`, `NULL`. Rows are fetched with the SELECT the COPY
/// stands for, through the coordinator (so from every datanode that holds the table), and
/// printed as PostgreSQL's COPY text or CSV lines.
struct CopyFormat {
    csv: bool,
    header: bool,
    delimiter: char,
    null: String,
}

impl CopyFormat {
    /// Errors: 0A000 for an option or format this path does not implement (binary, QUOTE,
    /// FORCE_QUOTE, ...), 22023 for a delimiter that is not one character.
    fn of(stmt: &parser::Copy) -> Result<CopyFormat, PgError> {
        let text = |v: &Option<parser::OptionValue>| match v {
            Some(parser::OptionValue::Str(s))
            | Some(parser::OptionValue::Word(s))
            | Some(parser::OptionValue::Number(s)) => Some(s.clone()),
            _ => None,
        };
        let mut f = CopyFormat {
            csv: false,
            header: false,
            delimiter: '\t',
            null: "\\N".into(),
        };
        let mut delimiter = None;
        let mut null = None;
        for o in &stmt.options {
            match o.name.as_str() {
                "format" => match text(&o.value).map(|s| s.to_ascii_lowercase()).as_deref() {
                    Some("text") => f.csv = false,
                    Some("csv") => f.csv = true,
                    other => {
                        return Err(PgError::new(
                            SqlState::FeatureNotSupported,
                            format!(
                                "COPY format \"{}\" is not supported on a coordinator",
                                other.unwrap_or("")
                            ),
                        ))
                    }
                },
                "header" => {
                    f.header = !matches!(
                        text(&o.value).map(|s| s.to_ascii_lowercase()).as_deref(),
                        Some("false" | "off" | "0")
                    )
                }
                "delimiter" => delimiter = text(&o.value),
                "null" => null = text(&o.value),
                other => {
                    return Err(PgError::new(
                        SqlState::FeatureNotSupported,
                        format!("COPY option \"{other}\" is not supported on a coordinator"),
                    ))
                }
            }
        }
        if f.csv {
            f.delimiter = ',';
            f.null = String::new();
        }
        if let Some(d) = delimiter {
            let mut it = d.chars();
            f.delimiter = match (it.next(), it.next()) {
                (Some(c), None) => c,
                _ => {
                    return Err(PgError::new(
                        SqlState::InvalidParameterValue,
                        "COPY delimiter must be a single one-byte character",
                    ))
                }
            };
        }
        if let Some(n) = null {
            f.null = n;
        }
        Ok(f)
    }

    /// One output field (PostgreSQL's CopyAttributeOutText / CopyAttributeOutCSV).
    fn field(&self, v: Option<&str>) -> String {
        let Some(s) = v else {
            return self.null.clone();
        };
        if self.csv {
            let needs = s == self.null
                || s.contains(self.delimiter)
                || s.contains(['"', '\n', '\r'])
                || s == "\\.";
            if !needs {
                return s.to_string();
            }
            return format!("\"{}\"", s.replace('"', "\"\""));
        }
        let mut out = String::with_capacity(s.len());
        for c in s.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{8}' => out.push_str("\\b"),
                '\u{c}' => out.push_str("\\f"),
                '\u{b}' => out.push_str("\\v"),
                c if c == self.delimiter => {
                    out.push('\\');
                    out.push(c);
                }
                c => out.push(c),
            }
        }
        out
    }

    fn encode(&self, r: &QueryResult, tz: &TimeZone) -> CopyOut {
        let d = self.delimiter.to_string();
        let mut lines = Vec::with_capacity(r.rows.len() + 1);
        if self.header {
            let names: Vec<String> = r.columns.iter().map(|(n, _)| self.field(Some(n))).collect();
            lines.push(format!("{}\n", names.join(&d)).into_bytes());
        }
        for row in &r.rows {
            let fields: Vec<String> = row
                .iter()
                .zip(&r.columns)
                .map(|(v, (_, ty))| self.field(v.to_text_opt(ty, tz).as_deref()))
                .collect();
            lines.push(format!("{}\n", fields.join(&d)).into_bytes());
        }
        CopyOut {
            lines,
            rows: r.rows.len() as u64,
            columns: r.columns.len(),
            csv: self.csv,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pgxc_sql::types::Value;

    #[test]
    fn copy_out_lines_escape_like_postgres() {
        let stmt = |sql: &str| match parser::parse(sql).expect("parses").pop() {
            Some(parser::Statement::Copy(c)) => c,
            other => panic!("not a COPY: {other:?}"),
        };
        let r = QueryResult {
            columns: vec![("a".into(), DataType::Int4), ("b".into(), DataType::Text)],
            rows: vec![
                vec![Value::Int4(1), Value::Text("x\ty\\z".into())],
                vec![Value::Int4(2), Value::Null],
            ],
            tag: "SELECT 2".into(),
        };
        let tz = TimeZone::utc();
        let text = CopyFormat::of(&stmt("COPY t TO STDOUT"))
            .unwrap()
            .encode(&r, &tz);
        assert_eq!(
            text.lines,
            vec![b"1\tx\\ty\\\\z\n".to_vec(), b"2\t\\N\n".to_vec()]
        );
        let csv = CopyFormat::of(&stmt("COPY t TO STDOUT WITH (FORMAT csv, HEADER)"))
            .unwrap()
            .encode(&r, &tz);
        assert_eq!(
            csv.lines,
            vec![b"a,b\n".to_vec(), b"1,x\ty\\z\n".to_vec(), b"2,\n".to_vec()]
        );
        assert_eq!(
            CopyFormat::of(&stmt("COPY t TO STDOUT WITH (FORMAT binary)"))
                .err()
                .map(|e| e.code),
            Some(SqlState::FeatureNotSupported)
        );
    }
}

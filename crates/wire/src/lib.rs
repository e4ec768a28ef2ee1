//! pgxc-wire: PostgreSQL's frontend/backend protocol v3 in front of a [`pgxc_sql::Engine`], so psql
//! and drivers can talk to a standalone datanode (`pgxc datanode --standalone`).
//!
//! What is served (details in `docs/wire.md`): the startup packet (SSLRequest and GSSENCRequest
//! answered `N`, CancelRequest honoured without a reply, [`auth`]: trust or SCRAM-SHA-256,
//! PostgreSQL 15's ParameterStatus set, BackendKeyData); the simple query protocol (RowDescription
//! with the columns' type OIDs, DataRow in text format, CommandComplete, EmptyQueryResponse,
//! ErrorResponse with severity, SQLSTATE, message and position, ReadyForQuery with the session's
//! transaction status `I`/`T`/`E`); `COPY ... FROM STDIN` and `COPY ... TO STDOUT` in text and CSV,
//! from a simple query or through Execute; Terminate. The extended protocol (Parse, Bind, Describe,
//! Execute with a row limit and PortalSuspended, Close, Sync, Flush) infers unspecified parameter
//! types as PostgreSQL does ([`infer`]), describes statements without running them, and binds text
//! and binary parameters as typed literals substituted into the statement ([`extended`]); results
//! go out in text or binary per column. A malformed or oversized message ends only its own
//! connection, with a FATAL 08P01.
//!
//! The messages are encoded here rather than with the `pgwire` crate: the server needs exact
//! control over the copy sub-protocol, the ReadyForQuery status and the error fields, and the few
//! messages involved are simpler to own than to adapt to pgwire's (fast-moving) handler traits.
//!
//! ## The session thread (an edge adapter)
//!
//! [`pgxc_sql::Session::execute`] is synchronous: it drives storage futures on the engine's own
//! current-thread runtime and must not be called from a tokio worker. So every connection's
//! `Session` lives on a dedicated OS thread ([`std::thread`]) and the async protocol task sends it
//! jobs over a channel, each answered on a oneshot. This adapter is meant to be replaced by an
//! async execute path; the engine's core stays deterministic, but this server is not simulated
//! under madsim yet.

pub mod auth;
pub mod extended;
pub mod infer;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::Arc;

use pgxc_common::error::Notice;
use pgxc_common::{PgError, SqlState};
use pgxc_sql::engine::CopyOut;
use pgxc_sql::parser::{self, CopyTarget, Statement};
use pgxc_sql::types::TimeZone;
use pgxc_sql::types::{binary, DataType};
use pgxc_sql::{Engine, QueryResult, Session};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::{TcpListener, TcpStream};
#[cfg(not(madsim))]
use tokio::sync::oneshot;

/// The `server_version` reported to clients (psql and pg_dump pick their SQL by it).
pub const SERVER_VERSION: &str = "15.0 (pgxc)";

/// Largest accepted message (PostgreSQL's limit for most messages is 1 GB).
const MAX_MESSAGE: usize = 1 << 30;

/// What the protocol needs from a session, synchronously on its session thread: the standalone
/// engine's [`Session`], or a coordinator's session (`pgxc-coordinator`). Every method mirrors
/// the [`Session`] method of the same name.
pub trait WireSession: 'static {
    /// Run a simple-query string (statements in order, stop at the first error).
    fn execute(&mut self, sql: &str) -> Result<Vec<QueryResult>, PgError>;
    /// ReadyForQuery's status byte: `I` idle, `T` in a block, `E` in a failed block.
    fn transaction_status(&self) -> u8;
    /// Whether the open block failed.
    fn in_failed_transaction(&self) -> bool;
    /// Mark the open block failed (an error outside `execute`, e.g. a CopyFail).
    fn fail_transaction_block(&mut self);
    /// The session's time zone, for text output of timestamptz.
    fn time_zone(&self) -> TimeZone;
    /// `COPY ... FROM STDIN` with the whole data stream.
    fn copy_in(&mut self, stmt: &parser::Copy, data: &[u8]) -> Result<QueryResult, PgError>;
    /// `COPY ... TO STDOUT`.
    fn copy_out(&mut self, stmt: &parser::Copy) -> Result<CopyOut, PgError>;
    /// The flag a CancelRequest for this session sets, if the session can be cancelled.
    fn cancel_flag(&self) -> Option<Arc<AtomicBool>> {
        None
    }
    /// What a CancelRequest (or the `statement_timeout` timer) does to this session, from any
    /// thread. The default sets [`WireSession::cancel_flag`]; a coordinator also forwards the
    /// cancel to the datanodes running the statement.
    fn canceller(&self) -> Option<Canceller> {
        let flag = self.cancel_flag()?;
        Some(Arc::new(move || flag.store(true, Ordering::SeqCst)))
    }
    /// [`WireSession::execute`], letting the last result stream: when the answer's `stream` is
    /// `Some(id)`, the last result holds the rows available so far (its tag is not final) and the
    /// rest come from [`WireSession::fetch`]`(id, ..)`. The default never streams.
    fn execute_streaming(&mut self, sql: &str) -> Result<Executed, PgError> {
        Ok(Executed {
            results: self.execute(sql)?,
            stream: None,
        })
    }
    /// The next rows of stream `id`: at most `max` (at least 1 while any are left), or the
    /// result's final command tag once every row went out (the stream is then closed). An error
    /// closes the stream. The default knows no streams (34000).
    fn fetch(&mut self, id: u64, max: usize) -> Result<Fetched, PgError> {
        let _ = max;
        Err(PgError::new(
            SqlState::InvalidCursorName,
            format!("result stream {id} is not open"),
        ))
    }
    /// Drop stream `id` before its end (its portal was closed). Errors are reported like a
    /// statement's (the end of an implicit transaction can fail).
    fn close_stream(&mut self, id: u64) -> Result<(), PgError> {
        let _ = id;
        Ok(())
    }
    /// The NOTICEs and WARNINGs of the last `execute`/`execute_streaming`/`fetch`/`close_stream`
    /// (sent as NoticeResponse), leaving none.
    fn take_notices(&mut self) -> Vec<Notice> {
        Vec::new()
    }
    /// The session's `statement_timeout`, if set (a timer then sets the cancel flag).
    fn statement_timeout(&self) -> Option<std::time::Duration> {
        None
    }
    /// Describe a prepared statement (Describe 'S'): parameter types (declared OIDs win, else
    /// inferred) and result columns, without running it. The default probes through `execute`
    /// ([`extended::describe`]).
    fn describe(&mut self, sql: &str, declared: &[u32]) -> Result<extended::Description, PgError> {
        extended::describe(self, sql, declared)
    }
    /// Only the parameter types of [`WireSession::describe`] (for Bind of binary parameters whose
    /// type the client left unspecified).
    fn param_types(&mut self, sql: &str, declared: &[u32]) -> Result<Vec<DataType>, PgError> {
        extended::param_types(self, sql, declared)
    }
}

/// What cancels a session's running statement ([`WireSession::canceller`]).
pub type Canceller = Arc<dyn Fn() + Send + Sync>;

/// [`WireSession::execute_streaming`]'s answer.
#[derive(Debug)]
pub struct Executed {
    /// One result per statement; with a `stream`, the last one holds only the rows so far.
    pub results: Vec<QueryResult>,
    /// The open stream the last result's other rows come from.
    pub stream: Option<u64>,
}

/// [`WireSession::fetch`]'s answer.
#[derive(Debug)]
pub enum Fetched {
    /// More rows of the stream's result.
    Rows(Vec<Vec<pgxc_sql::types::Value>>),
    /// No rows left: the result's command tag (`SELECT n`).
    Done(String),
}

/// Backend pid → (cancel secret, what cancels the session).
type CancelKeys = std::sync::Mutex<HashMap<i32, (i32, Canceller)>>;

/// Cancel keys of the connections being served. A CancelRequest naming a pid and its secret sets
/// the flag; nothing is answered (PostgreSQL).
fn cancel_keys() -> &'static CancelKeys {
    static KEYS: std::sync::OnceLock<CancelKeys> = std::sync::OnceLock::new();
    KEYS.get_or_init(Default::default)
}

/// Removes a connection's cancel key when the connection ends.
struct CancelKey(i32);

impl Drop for CancelKey {
    fn drop(&mut self) {
        cancel_keys()
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.0);
    }
}

impl WireSession for Session {
    fn execute(&mut self, sql: &str) -> Result<Vec<QueryResult>, PgError> {
        Session::execute(self, sql)
    }
    fn transaction_status(&self) -> u8 {
        Session::transaction_status(self)
    }
    fn in_failed_transaction(&self) -> bool {
        Session::in_failed_transaction(self)
    }
    fn fail_transaction_block(&mut self) {
        Session::fail_transaction_block(self)
    }
    fn time_zone(&self) -> TimeZone {
        Session::time_zone(self)
    }
    fn copy_in(&mut self, stmt: &parser::Copy, data: &[u8]) -> Result<QueryResult, PgError> {
        Session::copy_in(self, stmt, data)
    }
    fn copy_out(&mut self, stmt: &parser::Copy) -> Result<CopyOut, PgError> {
        Session::copy_out(self, stmt)
    }
    fn cancel_flag(&self) -> Option<Arc<AtomicBool>> {
        Some(Session::cancel_flag(self))
    }
    fn take_notices(&mut self) -> Vec<Notice> {
        Session::take_notices(self)
    }
    fn statement_timeout(&self) -> Option<std::time::Duration> {
        Session::statement_timeout(self)
    }
}

/// Serve `engine` on `listener` until the listener fails. Each connection gets its own task and
/// session thread. Clients are trusted.
pub async fn serve(listener: TcpListener, engine: Arc<Engine>) -> std::io::Result<()> {
    serve_auth(listener, engine, auth::Auth::Trust).await
}

/// [`serve`] with the given client authentication.
pub async fn serve_auth(
    listener: TcpListener,
    engine: Arc<Engine>,
    auth: auth::Auth,
) -> std::io::Result<()> {
    serve_with_auth(listener, move || Ok(engine.session()), auth).await
}

/// Serve sessions made by `factory` (called on each connection's session thread) on
/// `listener` until the listener fails, with `trust` authentication.
pub async fn serve_with<S, F>(listener: TcpListener, factory: F) -> std::io::Result<()>
where
    S: WireSession,
    F: Fn() -> std::io::Result<S> + Send + Sync + 'static,
{
    serve_with_auth(listener, factory, auth::Auth::Trust).await
}

/// [`serve_with`] with the given client authentication ([`auth::Auth`]: trust or SCRAM-SHA-256).
pub async fn serve_with_auth<S, F>(
    listener: TcpListener,
    factory: F,
    auth: auth::Auth,
) -> std::io::Result<()>
where
    S: WireSession,
    F: Fn() -> std::io::Result<S> + Send + Sync + 'static,
{
    static NEXT_PID: AtomicI32 = AtomicI32::new(1);
    let factory = Arc::new(factory);
    let auth = Arc::new(auth);
    loop {
        let (stream, peer) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let factory = Arc::clone(&factory);
        let auth = Arc::clone(&auth);
        let pid = NEXT_PID.fetch_add(1, Ordering::Relaxed);
        let conn = async move {
            if let Err(e) = handle(stream, factory, pid, auth).await {
                tracing::debug!(%peer, "connection ended: {e}");
            }
        };
        #[cfg(not(madsim))]
        tokio::spawn(conn);
        // Under madsim a connection's session lives in its task (no session thread) and madsim's
        // stream halves are not `Sync`: the task stays on the simulation's one thread.
        #[cfg(madsim)]
        tokio::task::spawn_local(conn);
    }
}

// ---------------------------------------------------------------------------------------------------------
// The session thread.

#[cfg(not(madsim))]
type Job<S> = Box<dyn FnOnce(&mut S) + Send>;

/// A handle on one connection's session thread: a [`Session`] living on a dedicated OS thread,
/// fed closures over a channel (the edge adapter between async network tasks and the synchronous
/// engine). Also used by the datanode's coordinator-protocol server.
#[cfg(not(madsim))]
pub struct SessionThread<S = Session> {
    tx: std::sync::mpsc::Sender<Job<S>>,
}

#[cfg(not(madsim))]
impl SessionThread<Session> {
    /// Start the thread with a new session of `engine`. Errors: the OS refused a thread.
    pub fn spawn(engine: Arc<Engine>) -> std::io::Result<SessionThread<Session>> {
        SessionThread::spawn_with(move || Ok(engine.session()))
    }
}

#[cfg(not(madsim))]
impl<S: 'static> SessionThread<S> {
    /// Start the thread with the session `make` builds on it. Errors: the OS refused a thread,
    /// or `make` failed.
    pub fn spawn_with(
        make: impl FnOnce() -> std::io::Result<S> + Send + 'static,
    ) -> std::io::Result<SessionThread<S>> {
        let (tx, rx) = std::sync::mpsc::channel::<Job<S>>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<std::io::Result<()>>();
        std::thread::Builder::new()
            .name("pgxc-session".into())
            .spawn(move || {
                let mut session = match make() {
                    Ok(s) => {
                        let _ = ready_tx.send(Ok(()));
                        s
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                while let Ok(job) = rx.recv() {
                    job(&mut session);
                }
            })?;
        ready_rx
            .recv()
            .map_err(|_| std::io::Error::other("session thread died while starting"))??;
        Ok(SessionThread { tx })
    }

    /// Run `f` on the session thread and wait for its answer. Errors: the thread is gone
    /// (it panicked).
    pub async fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut S) -> R + Send + 'static,
    ) -> std::io::Result<R> {
        let (tx, rx) = oneshot::channel();
        let job: Job<S> = Box::new(move |s| {
            let _ = tx.send(f(s));
        });
        self.tx
            .send(job)
            .map_err(|_| std::io::Error::other("session thread gone"))?;
        rx.await
            .map_err(|_| std::io::Error::other("session thread panicked"))
    }
}

/// Under madsim (no threads): the session lives in the handle and each call runs inline on the
/// calling task. A statement that would wait for a lock answers 55P03 in [`SessionThread::call`]
/// (the engine is in `WaitMode::Restart`); [`SessionThread::execute_async`] waits instead.
#[cfg(madsim)]
pub struct SessionThread<S = Session> {
    session: tokio::sync::Mutex<S>,
}

#[cfg(madsim)]
impl SessionThread<Session> {
    /// A new session of `engine`. Never fails under madsim.
    pub fn spawn(engine: Arc<Engine>) -> std::io::Result<SessionThread<Session>> {
        SessionThread::spawn_with(move || Ok(engine.session()))
    }

    /// Under madsim only: `prepare` the session (e.g. `Session::direct`, a `BEGIN`), then run
    /// `sql` through `Session::execute_async`, so a statement that meets a lock waits on the
    /// calling task for its holder (as the production session thread blocks) instead of
    /// answering 55P03. Errors: `prepare`'s or the statements' (inner); never the outer one.
    pub async fn execute_async(
        &self,
        prepare: impl FnOnce(&mut Session) -> Result<(), PgError>,
        sql: &str,
    ) -> std::io::Result<Result<Vec<QueryResult>, PgError>> {
        let mut s = self.session.lock().await;
        if let Err(e) = prepare(&mut s) {
            return Ok(Err(e));
        }
        Ok(s.execute_async(sql).await)
    }
}

#[cfg(madsim)]
impl<S: 'static> SessionThread<S> {
    /// The session `make` builds. Errors: `make`'s.
    pub fn spawn_with(
        make: impl FnOnce() -> std::io::Result<S> + Send + 'static,
    ) -> std::io::Result<SessionThread<S>> {
        Ok(SessionThread {
            session: tokio::sync::Mutex::new(make()?),
        })
    }

    /// Run `f` on the session now, on the calling task. Never fails under madsim.
    pub async fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut S) -> R + Send + 'static,
    ) -> std::io::Result<R> {
        let mut s = self.session.lock().await;
        Ok(f(&mut s))
    }
}

// ---------------------------------------------------------------------------------------------------------
// Message encoding.

/// A backend message being built: type byte, length placeholder, body.
struct Msg(Vec<u8>);

impl Msg {
    fn new(ty: u8) -> Msg {
        Msg(vec![ty, 0, 0, 0, 0])
    }
    fn i16(mut self, v: i16) -> Msg {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn i32(mut self, v: i32) -> Msg {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn u8(mut self, v: u8) -> Msg {
        self.0.push(v);
        self
    }
    fn cstr(mut self, s: &str) -> Msg {
        self.0.extend_from_slice(s.as_bytes());
        self.0.push(0);
        self
    }
    fn bytes(mut self, b: &[u8]) -> Msg {
        self.0.extend_from_slice(b);
        self
    }
    fn finish(mut self, out: &mut Vec<u8>) {
        let len = (self.0.len() - 1) as i32;
        self.0[1..5].copy_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&self.0);
    }
}

fn error_response(out: &mut Vec<u8>, severity: &str, e: &PgError) {
    let mut m = Msg::new(b'E')
        .u8(b'S')
        .cstr(severity)
        .u8(b'V')
        .cstr(severity)
        .u8(b'C')
        .cstr(e.code.code())
        .u8(b'M')
        .cstr(&e.message);
    if let Some(p) = e.position {
        m = m.u8(b'P').cstr(&p.to_string());
    }
    m.u8(0).finish(out);
}

fn ready(out: &mut Vec<u8>, status: u8) {
    Msg::new(b'Z').u8(status).finish(out);
}

fn command_complete(out: &mut Vec<u8>, tag: &str) {
    Msg::new(b'C').cstr(tag).finish(out);
}

fn row_description(out: &mut Vec<u8>, columns: &[(String, DataType)], formats: &[i16]) {
    let mut m = Msg::new(b'T').i16(columns.len() as i16);
    for (i, (name, ty)) in columns.iter().enumerate() {
        m = m
            .cstr(name)
            .i32(0)
            .i16(0)
            .i32(ty.oid() as i32)
            .i16(ty.typlen())
            .i32(ty.typmod())
            .i16(format_of(formats, i));
    }
    m.finish(out);
}

/// The format code of column `i` under a Bind's result-format list.
fn format_of(formats: &[i16], i: usize) -> i16 {
    match formats.len() {
        0 => 0,
        1 => formats[0],
        _ => formats.get(i).copied().unwrap_or(0),
    }
}

/// DataRow messages for `rows` (text or binary per `formats`; timestamptz printed in `tz`).
fn data_rows(
    out: &mut Vec<u8>,
    columns: &[(String, DataType)],
    rows: &[Vec<pgxc_sql::types::Value>],
    formats: &[i16],
    tz: &TimeZone,
) {
    for row in rows {
        let mut m = Msg::new(b'D').i16(row.len() as i16);
        for (i, (v, (_, ty))) in row.iter().zip(columns).enumerate() {
            if v.is_null() {
                m = m.i32(-1);
                continue;
            }
            let b = if format_of(formats, i) == 1 {
                binary::to_binary(v, ty)
            } else {
                v.to_text(ty, tz).into_bytes()
            };
            m = m.i32(b.len() as i32).bytes(&b);
        }
        m.finish(out);
    }
}

/// RowDescription (if the result has columns), the rows and CommandComplete of one result.
fn encode_result<S: WireSession>(out: &mut Vec<u8>, r: &QueryResult, session: &S) {
    if !r.columns.is_empty() {
        row_description(out, &r.columns, &[]);
        data_rows(out, &r.columns, &r.rows, &[], &session.time_zone());
    }
    command_complete(out, &r.tag);
}

/// A NoticeResponse (severity, SQLSTATE, message), as PostgreSQL sends for NOTICE and WARNING.
fn notice_response(out: &mut Vec<u8>, n: &Notice) {
    Msg::new(b'N')
        .u8(b'S')
        .cstr(n.severity.as_str())
        .u8(b'V')
        .cstr(n.severity.as_str())
        .u8(b'C')
        .cstr(n.code.code())
        .u8(b'M')
        .cstr(&n.message)
        .u8(0)
        .finish(out);
}

/// NoticeResponses for everything `s` reported since the last call.
fn notices<S: WireSession>(out: &mut Vec<u8>, s: &mut S) {
    for n in s.take_notices() {
        notice_response(out, &n);
    }
}

// ---------------------------------------------------------------------------------------------------------
// The connection.

#[cfg(not(madsim))]
type Reader = BufReader<tokio::net::tcp::OwnedReadHalf>;
#[cfg(not(madsim))]
type Writer = BufWriter<tokio::net::tcp::OwnedWriteHalf>;
// madsim's TcpStream has no owned halves: split it with tokio's generic `split` there.
#[cfg(madsim)]
type Reader = BufReader<tokio::io::ReadHalf<TcpStream>>;
#[cfg(madsim)]
type Writer = BufWriter<tokio::io::WriteHalf<TcpStream>>;

fn protocol_error(msg: impl Into<String>) -> PgError {
    PgError::new(SqlState::ProtocolViolation, msg)
}

async fn read_i32(r: &mut Reader) -> std::io::Result<i32> {
    r.read_i32().await
}

/// One frontend message: its type byte and body.
async fn read_message(r: &mut Reader) -> std::io::Result<Option<(u8, Vec<u8>)>> {
    let ty = match r.read_u8().await {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    };
    let len = read_i32(r).await?;
    if len < 4 || len as usize > MAX_MESSAGE {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("invalid message length {len}"),
        ));
    }
    let mut body = vec![0; len as usize - 4];
    r.read_exact(&mut body).await?;
    Ok(Some((ty, body)))
}

/// A cursor over a message body.
struct Body<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Body<'a> {
    fn new(b: &'a [u8]) -> Body<'a> {
        Body { b, i: 0 }
    }
    fn cstr(&mut self) -> Result<String, PgError> {
        let rest = &self.b[self.i.min(self.b.len())..];
        let n = rest
            .iter()
            .position(|&c| c == 0)
            .ok_or_else(|| protocol_error("unterminated string in message"))?;
        let s = std::str::from_utf8(&rest[..n])
            .map_err(|_| {
                PgError::new(
                    SqlState::CharacterNotInRepertoire,
                    "invalid byte sequence for encoding \"UTF8\"",
                )
            })?
            .to_string();
        self.i += n + 1;
        Ok(s)
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], PgError> {
        if self.i + n > self.b.len() {
            return Err(protocol_error("message too short"));
        }
        let s = &self.b[self.i..self.i + n];
        self.i += n;
        Ok(s)
    }
    fn i16(&mut self) -> Result<i16, PgError> {
        let s = self.take(2)?;
        Ok(i16::from_be_bytes([s[0], s[1]]))
    }
    fn i32(&mut self) -> Result<i32, PgError> {
        let s = self.take(4)?;
        Ok(i32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    }
    fn u8(&mut self) -> Result<u8, PgError> {
        Ok(self.take(1)?[0])
    }
}

/// A prepared statement of the extended protocol.
#[derive(Clone)]
struct Prepared {
    sql: String,
    param_types: Vec<u32>,
    /// The resolved parameter types, once described or bound with binary parameters.
    types: Option<Vec<DataType>>,
}

/// A bound portal: the statement text with its parameters substituted, and its result (run on the
/// first Describe or Execute).
struct Portal {
    sql: String,
    formats: Vec<i16>,
    result: Option<Vec<QueryResult>>,
    /// Rows of the last result already sent (Execute with a row limit).
    sent: usize,
    /// Whether every row and the CommandComplete went out.
    done: bool,
    /// The open stream the rest of the last result's rows come from
    /// ([`WireSession::execute_streaming`]).
    stream: Option<u64>,
}

/// How [`Conn::pump`] left a stream.
enum Pumped {
    /// Every row and the CommandComplete went out; the stream is closed.
    Ended,
    /// The row limit was reached; the stream stays open.
    Suspended,
    /// An ErrorResponse went out; the stream is closed.
    Failed,
}

async fn handle<S, F>(
    stream: TcpStream,
    factory: Arc<F>,
    pid: i32,
    auth: Arc<auth::Auth>,
) -> std::io::Result<()>
where
    S: WireSession,
    F: Fn() -> std::io::Result<S> + Send + Sync + 'static,
{
    #[cfg(not(madsim))]
    let (r, w) = stream.into_split();
    #[cfg(madsim)]
    let (r, w) = tokio::io::split(stream);
    let mut r = BufReader::new(r);
    let mut w = BufWriter::new(w);
    // Startup: SSLRequest / GSSENCRequest / CancelRequest / StartupMessage.
    let params = loop {
        let len = read_i32(&mut r).await?;
        if !(8..=10_000).contains(&len) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "invalid startup packet length",
            ));
        }
        let mut body = vec![0; len as usize - 4];
        r.read_exact(&mut body).await?;
        let code = i32::from_be_bytes([body[0], body[1], body[2], body[3]]);
        match code {
            80877103 | 80877104 => {
                w.write_all(b"N").await?;
                w.flush().await?;
            }
            80877102 => {
                // CancelRequest: pid and secret; never answered.
                if body.len() >= 12 {
                    let pid = i32::from_be_bytes([body[4], body[5], body[6], body[7]]);
                    let key = i32::from_be_bytes([body[8], body[9], body[10], body[11]]);
                    let target = {
                        let keys = cancel_keys().lock().unwrap_or_else(|p| p.into_inner());
                        keys.get(&pid)
                            .filter(|(secret, _)| *secret == key)
                            .map(|(_, c)| Arc::clone(c))
                    };
                    if let Some(cancel) = target {
                        cancel();
                    }
                }
                return Ok(());
            }
            196608 => {
                let mut b = Body::new(&body[4..]);
                let mut params = HashMap::new();
                loop {
                    let k = b.cstr().map_err(|e| std::io::Error::other(e.message))?;
                    if k.is_empty() {
                        break;
                    }
                    let v = b.cstr().map_err(|e| std::io::Error::other(e.message))?;
                    params.insert(k, v);
                }
                break params;
            }
            _ => {
                let mut out = Vec::new();
                error_response(
                    &mut out,
                    "FATAL",
                    &PgError::new(
                        SqlState::FeatureNotSupported,
                        format!(
                            "unsupported frontend protocol {}.{}: server supports 3.0",
                            code >> 16,
                            code & 0xffff
                        ),
                    ),
                );
                w.write_all(&out).await?;
                w.flush().await?;
                return Ok(());
            }
        }
    };
    let user = params
        .get("user")
        .cloned()
        .unwrap_or_else(|| "postgres".into());
    let app = params.get("application_name").cloned().unwrap_or_default();
    if let Err(e) = auth::authenticate(&auth, &user, &mut r, &mut w).await? {
        auth::fatal(&mut w, &e).await;
        return Ok(());
    }
    let session = SessionThread::spawn_with(move || factory())?;
    if !app.is_empty() {
        let sql = format!("SET application_name = '{}'", app.replace('\'', "''"));
        let _ = session.call(move |s| s.execute(&sql).map(|_| ())).await?;
    }
    let mut out = Vec::new();
    Msg::new(b'R').i32(0).finish(&mut out);
    for (k, v) in [
        ("application_name", app.as_str()),
        ("client_encoding", "UTF8"),
        ("DateStyle", "ISO, MDY"),
        ("default_transaction_read_only", "off"),
        ("in_hot_standby", "off"),
        ("integer_datetimes", "on"),
        ("IntervalStyle", "postgres"),
        ("is_superuser", "on"),
        ("server_encoding", "UTF8"),
        ("server_version", SERVER_VERSION),
        ("session_authorization", user.as_str()),
        ("standard_conforming_strings", "on"),
        ("TimeZone", "UTC"),
    ] {
        Msg::new(b'S').cstr(k).cstr(v).finish(&mut out);
    }
    // The cancel secret: unpredictable, so only this connection's client can cancel it.
    let secret: i32 = rand::random();
    let cancel = session.call(|s| s.canceller()).await?;
    let _key = match &cancel {
        Some(c) => {
            cancel_keys()
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(pid, (secret, Arc::clone(c)));
            Some(CancelKey(pid))
        }
        None => None,
    };
    Msg::new(b'K').i32(pid).i32(secret).finish(&mut out);
    ready(&mut out, b'I');
    w.write_all(&out).await?;
    w.flush().await?;
    let mut conn = Conn {
        r,
        w,
        session,
        cancel,
        statements: HashMap::new(),
        portals: HashMap::new(),
        skip_to_sync: false,
    };
    match conn.run().await {
        Ok(()) => Ok(()),
        Err(e) => {
            // A malformed message: tell the client (best effort) and end this connection only.
            let mut out = Vec::new();
            error_response(&mut out, "FATAL", &protocol_error(e.to_string()));
            let _ = conn.w.write_all(&out).await;
            let _ = conn.w.flush().await;
            Err(e)
        }
    }
}

struct Conn<S> {
    r: Reader,
    w: Writer,
    session: SessionThread<S>,
    /// What cancels the session's statement (a CancelRequest or the statement_timeout timer).
    cancel: Option<Canceller>,
    statements: HashMap<String, Prepared>,
    portals: HashMap<String, Portal>,
    /// After an error in the extended protocol, messages are skipped until Sync.
    skip_to_sync: bool,
}

fn invalid(e: PgError) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, e.message)
}

/// What a simple Query turned out to be.
enum Simple {
    /// Encoded results (and possibly an ErrorResponse), ready to send before ReadyForQuery.
    Done(Vec<u8>),
    /// `COPY ... FROM STDIN`: the statement and its column count.
    CopyIn(Box<parser::Copy>, usize, bool),
    /// The last result streams: the messages so far (its RowDescription and first rows), the
    /// stream and the result's columns.
    Stream(Vec<u8>, u64, Vec<(String, DataType)>),
}

impl<S: WireSession> Conn<S> {
    async fn status(&self) -> std::io::Result<u8> {
        self.session.call(|s| s.transaction_status()).await
    }

    async fn send(&mut self, out: &[u8]) -> std::io::Result<()> {
        self.w.write_all(out).await?;
        self.w.flush().await
    }

    async fn run(&mut self) -> std::io::Result<()> {
        while let Some((ty, body)) = read_message(&mut self.r).await? {
            if self.skip_to_sync && !matches!(ty, b'S' | b'X') {
                continue;
            }
            match ty {
                b'Q' => {
                    let sql = Body::new(&body).cstr().map_err(invalid)?;
                    // statement_timeout: a timer sets the session's cancel flag.
                    let timer = match &self.cancel {
                        Some(flag) => match self.session.call(|s| s.statement_timeout()).await? {
                            Some(t) => {
                                let cancel = Arc::clone(flag);
                                Some(tokio::spawn(async move {
                                    tokio::time::sleep(t).await;
                                    cancel();
                                }))
                            }
                            None => None,
                        },
                        None => None,
                    };
                    let r = self.simple_query(sql).await;
                    if let Some(t) = timer {
                        t.abort();
                    }
                    r?;
                }
                b'X' => return Ok(()),
                b'P' | b'B' | b'D' | b'E' | b'C' => {
                    let mut out = Vec::new();
                    if let Err(e) = self.extended(ty, &body, &mut out).await? {
                        error_response(&mut out, "ERROR", &e);
                        self.skip_to_sync = true;
                    }
                    self.send(&out).await?;
                }
                b'S' => {
                    self.skip_to_sync = false;
                    let mut out = Vec::new();
                    // The unnamed portal ends at Sync; outside a transaction block so do the
                    // others still streaming (PostgreSQL drops a transaction's portals at its end).
                    self.close_portal("", &mut out).await?;
                    if self.status().await? == b'I' {
                        let open: Vec<String> = self
                            .portals
                            .iter()
                            .filter(|(_, p)| p.stream.is_some())
                            .map(|(k, _)| k.clone())
                            .collect();
                        for name in open {
                            self.close_portal(&name, &mut out).await?;
                        }
                    }
                    let st = self.status().await?;
                    ready(&mut out, st);
                    self.send(&out).await?;
                }
                b'H' => self.w.flush().await?,
                // CopyData / CopyDone / CopyFail outside a COPY are ignored, as PostgreSQL does.
                b'd' | b'c' | b'f' => {}
                other => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("invalid frontend message type {}", other as char),
                    ))
                }
            }
        }
        Ok(())
    }

    async fn simple_query(&mut self, sql: String) -> std::io::Result<()> {
        // A simple Query drops the unnamed portal (PostgreSQL).
        let mut pre = Vec::new();
        self.close_portal("", &mut pre).await?;
        if !pre.is_empty() {
            self.w.write_all(&pre).await?;
        }
        let outcome = self
            .session
            .call(move |s| {
                let mut out = Vec::new();
                if sql.trim().trim_matches(';').trim().is_empty() {
                    Msg::new(b'I').finish(&mut out);
                    return Simple::Done(out);
                }
                // COPY to/from the client is intercepted; everything else goes to `execute`.
                if let Ok(stmts) = parser::parse(&sql) {
                    let copy = stmts.iter().any(|st| {
                        matches!(st, Statement::Copy(c)
                            if matches!(c.target, CopyTarget::Stdin | CopyTarget::Stdout))
                    });
                    if copy {
                        if stmts.len() != 1 {
                            error_response(
                                &mut out,
                                "ERROR",
                                &PgError::new(
                                    SqlState::FeatureNotSupported,
                                    "COPY FROM STDIN / TO STDOUT must be sent as a query of its own",
                                ),
                            );
                            return Simple::Done(out);
                        }
                        let Some(Statement::Copy(c)) = stmts.into_iter().next() else {
                            unreachable!("checked above")
                        };
                        if s.in_failed_transaction() {
                            error_response(&mut out, "ERROR", &PgError::new(
                                SqlState::InFailedSqlTransaction,
                                "current transaction is aborted, commands ignored until end of transaction block",
                            ));
                            return Simple::Done(out);
                        }
                        if c.from {
                            let csv = c.option("format").is_some_and(|o| {
                                matches!(&o.value, Some(parser::OptionValue::Word(w)) | Some(parser::OptionValue::Str(w)) if w.eq_ignore_ascii_case("csv"))
                            });
                            let ncols = match &c.source {
                                parser::CopySource::Table { columns, .. } if !columns.is_empty() => columns.len(),
                                parser::CopySource::Table { name, .. } => {
                                    match s.execute(&format!("SELECT * FROM {name} LIMIT 0")) {
                                        Ok(r) => r.first().map_or(0, |q| q.columns.len()),
                                        Err(e) => {
                                            error_response(&mut out, "ERROR", &e);
                                            return Simple::Done(out);
                                        }
                                    }
                                }
                                parser::CopySource::Query(_) => 0,
                            };
                            return Simple::CopyIn(Box::new(c), ncols, csv);
                        }
                        match s.copy_out(&c) {
                            Ok(co) => {
                                let mut m = Msg::new(b'H').u8(0).i16(co.columns as i16);
                                for _ in 0..co.columns {
                                    m = m.i16(0);
                                }
                                m.finish(&mut out);
                                for line in &co.lines {
                                    Msg::new(b'd').bytes(line).finish(&mut out);
                                }
                                Msg::new(b'c').finish(&mut out);
                                command_complete(&mut out, &format!("COPY {}", co.rows));
                            }
                            Err(e) => error_response(&mut out, "ERROR", &e),
                        }
                        return Simple::Done(out);
                    }
                }
                let r = s.execute_streaming(&sql);
                notices(&mut out, s);
                match r {
                    Ok(Executed { results, stream: None }) => {
                        for r in &results {
                            encode_result(&mut out, r, s);
                        }
                    }
                    Ok(Executed { mut results, stream: Some(id) }) => {
                        let last = results.pop().unwrap_or_else(|| QueryResult::command(""));
                        for r in &results {
                            encode_result(&mut out, r, s);
                        }
                        row_description(&mut out, &last.columns, &[]);
                        data_rows(&mut out, &last.columns, &last.rows, &[], &s.time_zone());
                        return Simple::Stream(out, id, last.columns);
                    }
                    Err(e) => error_response(&mut out, "ERROR", &e),
                }
                Simple::Done(out)
            })
            .await?;
        let mut out = match outcome {
            Simple::Done(out) => out,
            Simple::Stream(mut out, id, columns) => {
                self.pump(id, Arc::new(columns), Arc::new(Vec::new()), None, &mut out)
                    .await?;
                out
            }
            Simple::CopyIn(stmt, ncols, _csv) => self.copy_in(*stmt, ncols).await?,
        };
        let st = self.status().await?;
        ready(&mut out, st);
        self.send(&out).await
    }

    /// Drop portal `name` (if it exists), closing its open stream; the close's notices and error
    /// go to `out`.
    async fn close_portal(&mut self, name: &str, out: &mut Vec<u8>) -> std::io::Result<()> {
        let Some(p) = self.portals.remove(name) else {
            return Ok(());
        };
        if let Some(id) = p.stream {
            let bytes = self
                .session
                .call(move |s| {
                    let mut o = Vec::new();
                    let r = s.close_stream(id);
                    notices(&mut o, s);
                    if let Err(e) = r {
                        error_response(&mut o, "ERROR", &e);
                    }
                    o
                })
                .await?;
            out.extend_from_slice(&bytes);
        }
        Ok(())
    }

    /// Send the rows of stream `id` as DataRow messages (text or binary per `formats`) as they
    /// arrive, until the stream ends (then its CommandComplete, or an ErrorResponse) or `limit`
    /// rows went out. `out` (messages not sent yet) is written first; every batch is written to
    /// the socket before the next is fetched, so at most one batch is held here.
    async fn pump(
        &mut self,
        id: u64,
        columns: Arc<Vec<(String, DataType)>>,
        formats: Arc<Vec<i16>>,
        limit: Option<usize>,
        out: &mut Vec<u8>,
    ) -> std::io::Result<Pumped> {
        let mut left = limit;
        loop {
            self.w.write_all(out).await?;
            out.clear();
            if left == Some(0) {
                return Ok(Pumped::Suspended);
            }
            let max = left.unwrap_or(usize::MAX);
            let (cols, fmts) = (Arc::clone(&columns), Arc::clone(&formats));
            let (bytes, got) = self
                .session
                .call(move |s| {
                    let mut o = Vec::new();
                    let r = s.fetch(id, max);
                    notices(&mut o, s);
                    let got = match r {
                        Ok(Fetched::Rows(rows)) => {
                            data_rows(&mut o, &cols, &rows, &fmts, &s.time_zone());
                            Ok(rows.len())
                        }
                        Ok(Fetched::Done(tag)) => {
                            command_complete(&mut o, &tag);
                            Err(Pumped::Ended)
                        }
                        Err(e) => {
                            error_response(&mut o, "ERROR", &e);
                            Err(Pumped::Failed)
                        }
                    };
                    (o, got)
                })
                .await?;
            out.extend_from_slice(&bytes);
            match got {
                Ok(n) => {
                    if let Some(l) = &mut left {
                        *l = l.saturating_sub(n.max(1));
                    }
                }
                Err(end) => return Ok(end),
            }
        }
    }

    /// The copy-in sub-protocol: CopyInResponse, then CopyData until CopyDone or CopyFail.
    async fn copy_in(&mut self, stmt: parser::Copy, ncols: usize) -> std::io::Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut m = Msg::new(b'G').u8(0).i16(ncols as i16);
        for _ in 0..ncols {
            m = m.i16(0);
        }
        m.finish(&mut out);
        self.send(&out).await?;
        let mut data = Vec::new();
        let failed = loop {
            let Some((ty, body)) = read_message(&mut self.r).await? else {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "connection closed during COPY",
                ));
            };
            match ty {
                b'd' => data.extend_from_slice(&body),
                b'c' => break None,
                b'f' => {
                    let msg = Body::new(&body).cstr().unwrap_or_default();
                    break Some(msg);
                }
                b'H' | b'S' => {}
                other => {
                    break Some(format!(
                        "unexpected message type 0x{other:02x} during COPY from stdin"
                    ))
                }
            }
        };
        let mut out = Vec::new();
        let result = self
            .session
            .call(move |s| match failed {
                Some(msg) => {
                    let e = PgError::new(
                        SqlState::QueryCanceled,
                        format!("COPY from stdin failed: {msg}"),
                    );
                    s.fail_transaction_block();
                    Err(e)
                }
                None => s.copy_in(&stmt, &data),
            })
            .await?;
        match result {
            Ok(r) => command_complete(&mut out, &r.tag),
            Err(e) => error_response(&mut out, "ERROR", &e),
        }
        Ok(out)
    }

    /// One extended-protocol message. The outer error ends the connection; the inner one is an
    /// ErrorResponse (then messages are skipped until Sync).
    async fn extended(
        &mut self,
        ty: u8,
        body: &[u8],
        out: &mut Vec<u8>,
    ) -> std::io::Result<Result<(), PgError>> {
        let mut b = Body::new(body);
        match ty {
            b'P' => {
                let r = (|| {
                    let name = b.cstr()?;
                    let sql = b.cstr()?;
                    let n = b.i16()?;
                    let mut param_types = Vec::new();
                    for _ in 0..n.max(0) {
                        param_types.push(b.i32()? as u32);
                    }
                    Ok::<_, PgError>((
                        name,
                        Prepared {
                            sql,
                            param_types,
                            types: None,
                        },
                    ))
                })();
                match r {
                    Ok((name, p)) => {
                        if !name.is_empty() && self.statements.contains_key(&name) {
                            return Ok(Err(PgError::new(
                                SqlState::DuplicatePreparedStatement,
                                format!("prepared statement \"{name}\" already exists"),
                            )));
                        }
                        if let Err(e) = extended::check_single_statement(&p.sql) {
                            return Ok(Err(e));
                        }
                        self.statements.insert(name, p);
                        Msg::new(b'1').finish(out);
                        Ok(Ok(()))
                    }
                    Err(e) => Ok(Err(e)),
                }
            }
            b'B' => {
                let r = (|| {
                    let portal = b.cstr()?;
                    let stmt = b.cstr()?;
                    let nf = b.i16()?;
                    let mut pformats = Vec::new();
                    for _ in 0..nf.max(0) {
                        pformats.push(b.i16()?);
                    }
                    let np = b.i16()?.max(0) as usize;
                    let mut params = Vec::new();
                    for _ in 0..np {
                        let len = b.i32()?;
                        params.push(if len < 0 {
                            None
                        } else {
                            Some(b.take(len as usize)?.to_vec())
                        });
                    }
                    let nr = b.i16()?;
                    let mut formats = Vec::new();
                    for _ in 0..nr.max(0) {
                        formats.push(b.i16()?);
                    }
                    Ok::<_, PgError>((portal, stmt, pformats, params, formats))
                })();
                let (portal, stmt, pformats, params, formats) = match r {
                    Ok(v) => v,
                    Err(e) => return Ok(Err(e)),
                };
                let Some(p) = self.statements.get(&stmt).cloned() else {
                    return Ok(Err(PgError::new(
                        SqlState::InvalidSqlStatementName,
                        format!("prepared statement \"{stmt}\" does not exist"),
                    )));
                };
                let binary_untyped = params.iter().enumerate().any(|(i, v)| {
                    v.is_some()
                        && format_of(&pformats, i) == 1
                        && extended::declared_type(p.param_types.get(i).copied().unwrap_or(0))
                            .is_none()
                });
                let types = match (&p.types, binary_untyped) {
                    (Some(t), _) => Some(t.clone()),
                    (None, true) => {
                        let (sql, declared) = (p.sql.clone(), p.param_types.clone());
                        match self
                            .session
                            .call(move |s| s.param_types(&sql, &declared))
                            .await?
                        {
                            Ok(t) => {
                                if let Some(st) = self.statements.get_mut(&stmt) {
                                    st.types = Some(t.clone());
                                }
                                Some(t)
                            }
                            Err(e) => return Ok(Err(e)),
                        }
                    }
                    (None, false) => None,
                };
                // The session's zone prints binary timestamptz parameters (not needed otherwise).
                let tz = if pformats.contains(&1) {
                    self.session.call(|s| s.time_zone()).await?
                } else {
                    TimeZone::utc()
                };
                let mut texts = Vec::new();
                for (i, v) in params.iter().enumerate() {
                    let declared = p.param_types.get(i).copied().unwrap_or(0);
                    let ty = extended::declared_type(declared)
                        .or_else(|| types.as_ref().and_then(|t| t.get(i).cloned()));
                    match extended::param_literal(
                        v.as_deref(),
                        format_of(&pformats, i),
                        ty.as_ref(),
                        extended::declared_type(declared).is_some(),
                        &tz,
                    ) {
                        Ok(l) => texts.push(l),
                        Err(e) => return Ok(Err(e)),
                    }
                }
                let sql = substitute(&p.sql, &texts);
                self.portals.insert(
                    portal,
                    Portal {
                        sql,
                        formats,
                        result: None,
                        sent: 0,
                        done: false,
                        stream: None,
                    },
                );
                Msg::new(b'2').finish(out);
                Ok(Ok(()))
            }
            b'D' => {
                let (kind, name) = match (b.u8(), b.cstr()) {
                    (Ok(k), Ok(n)) => (k, n),
                    (Err(e), _) | (_, Err(e)) => return Ok(Err(e)),
                };
                if kind == b'S' {
                    let Some(p) = self.statements.get(&name).cloned() else {
                        return Ok(Err(PgError::new(
                            SqlState::InvalidSqlStatementName,
                            format!("prepared statement \"{name}\" does not exist"),
                        )));
                    };
                    let (sql, declared) = (p.sql.clone(), p.param_types.clone());
                    let d = match self
                        .session
                        .call(move |s| s.describe(&sql, &declared))
                        .await?
                    {
                        Ok(d) => d,
                        Err(e) => return Ok(Err(e)),
                    };
                    let mut m = Msg::new(b't').i16(d.params.len() as i16);
                    for t in &d.params {
                        m = m.i32(t.oid() as i32);
                    }
                    m.finish(out);
                    match &d.columns {
                        Some(cols) => row_description(out, cols, &[]),
                        None => Msg::new(b'n').finish(out),
                    }
                    if let Some(st) = self.statements.get_mut(&name) {
                        st.types = Some(d.params);
                    }
                    return Ok(Ok(()));
                }
                if let Err(e) = self.run_portal(&name, out).await? {
                    return Ok(Err(e));
                }
                let p = &self.portals[&name];
                match p.result.as_ref().and_then(|r| r.last()) {
                    Some(q) if !q.columns.is_empty() => {
                        row_description(out, &q.columns, &p.formats)
                    }
                    _ => Msg::new(b'n').finish(out),
                }
                Ok(Ok(()))
            }
            b'E' => {
                let name = match b.cstr() {
                    Ok(n) => n,
                    Err(e) => return Ok(Err(e)),
                };
                // Maximum rows to return (0: all); more rows left → PortalSuspended.
                let max_rows = b.i32().unwrap_or(0);
                if self.copy_portal(&name, out).await? {
                    return Ok(Ok(()));
                }
                if let Err(e) = self.run_portal(&name, out).await? {
                    return Ok(Err(e));
                }
                if self
                    .portals
                    .get(&name)
                    .is_some_and(|p| p.stream.is_some() && !p.done)
                {
                    return self.execute_stream(&name, max_rows, out).await;
                }
                let p = self.portals.get_mut(&name).expect("run_portal checked it");
                if p.done {
                    // Already run to completion by an earlier Execute: no more rows (PostgreSQL
                    // answers `SELECT 0`; a command portal repeats its tag).
                    match p.result.as_ref().and_then(|r| r.last()) {
                        Some(r) if !r.columns.is_empty() => command_complete(out, "SELECT 0"),
                        Some(r) => command_complete(out, &r.tag),
                        None => Msg::new(b'I').finish(out),
                    }
                    return Ok(Ok(()));
                }
                let results = p.result.take().unwrap_or_default();
                let formats = p.formats.clone();
                let sent = p.sent;
                if results.is_empty() {
                    Msg::new(b'I').finish(out);
                    p.result = Some(results);
                    p.done = true;
                    return Ok(Ok(()));
                }
                let limit = (max_rows > 0 && results.len() == 1).then_some(max_rows as usize);
                let (bytes, results, sent, done) = self
                    .session
                    .call(move |s| {
                        let mut o = Vec::new();
                        let (mut now_sent, mut done) = (sent, true);
                        let last = results.len() - 1;
                        for (k, r) in results.iter().enumerate() {
                            let skip = if k == last { sent.min(r.rows.len()) } else { 0 };
                            let rows = &r.rows[skip..];
                            match limit {
                                Some(l) if rows.len() > l => {
                                    let tz = s.time_zone();
                                    data_rows(&mut o, &r.columns, &rows[..l], &formats, &tz);
                                    Msg::new(b's').finish(&mut o);
                                    now_sent = skip + l;
                                    done = false;
                                }
                                _ => {
                                    let tz = s.time_zone();
                                    data_rows(&mut o, &r.columns, rows, &formats, &tz);
                                    command_complete(&mut o, &r.tag);
                                }
                            }
                        }
                        (o, results, now_sent, done)
                    })
                    .await?;
                out.extend_from_slice(&bytes);
                let p = self.portals.get_mut(&name).expect("present");
                p.result = Some(results);
                p.sent = sent;
                p.done = done;
                Ok(Ok(()))
            }
            b'C' => {
                let (kind, name) = match (b.u8(), b.cstr()) {
                    (Ok(k), Ok(n)) => (k, n),
                    (Err(e), _) | (_, Err(e)) => return Ok(Err(e)),
                };
                if kind == b'S' {
                    self.statements.remove(&name);
                } else {
                    self.close_portal(&name, out).await?;
                }
                Msg::new(b'3').finish(out);
                Ok(Ok(()))
            }
            _ => unreachable!("dispatched above"),
        }
    }

    /// Execute of a portal holding `COPY ... FROM STDIN` / `TO STDOUT` (tokio-postgres's
    /// `copy_in`/`copy_out` use the extended protocol): runs the copy sub-protocol and answers
    /// `true`; `false` when the portal is something else. Sync/Flush received during COPY IN are
    /// ignored (PostgreSQL), so the client's Sync after CopyDone ends the exchange.
    async fn copy_portal(&mut self, name: &str, out: &mut Vec<u8>) -> std::io::Result<bool> {
        let Some(p) = self.portals.get(name) else {
            return Ok(false);
        };
        if p.result.is_some() || !extended::looks_like_copy(&p.sql) {
            return Ok(false);
        }
        let sql = p.sql.clone();
        let prepared = self
            .session
            .call(move |s| extended::prepare_copy(s, &sql))
            .await?;
        let failed = match prepared {
            None => return Ok(false),
            Some(Err(e)) => {
                error_response(out, "ERROR", &e);
                true
            }
            Some(Ok(extended::ClientCopy::Out(bytes))) => {
                out.extend_from_slice(&bytes);
                false
            }
            Some(Ok(extended::ClientCopy::In(stmt, ncols))) => {
                let bytes = self.copy_in(*stmt, ncols).await?;
                let failed = bytes.first() == Some(&b'E');
                out.extend_from_slice(&bytes);
                failed
            }
        };
        if failed {
            self.skip_to_sync = true;
        }
        if let Some(p) = self.portals.get_mut(name) {
            p.result = Some(Vec::new());
            p.done = true;
        }
        Ok(true)
    }

    /// Execute of a portal whose result streams: the rows held first, then the stream's, at most
    /// `max_rows` (> 0) of them (then PortalSuspended), else to the end (CommandComplete).
    async fn execute_stream(
        &mut self,
        name: &str,
        max_rows: i32,
        out: &mut Vec<u8>,
    ) -> std::io::Result<Result<(), PgError>> {
        let Some(p) = self.portals.get_mut(name) else {
            return Ok(Ok(()));
        };
        let Some(id) = p.stream else {
            return Ok(Ok(()));
        };
        let mut limit = (max_rows > 0).then_some(max_rows as usize);
        let formats = Arc::new(p.formats.clone());
        let mut result = p
            .result
            .take()
            .and_then(|mut r| r.pop())
            .unwrap_or_else(|| QueryResult::command(""));
        let held = std::mem::take(&mut result.rows);
        let skip = p.sent.min(held.len());
        let mut held = held.into_iter().skip(skip).collect::<Vec<_>>();
        let now = match limit {
            Some(l) if l < held.len() => {
                let rest = held.split_off(l);
                std::mem::replace(&mut held, rest)
            }
            _ => std::mem::take(&mut held),
        };
        if let Some(l) = &mut limit {
            *l -= now.len();
        }
        let columns = Arc::new(result.columns.clone());
        if !now.is_empty() {
            let tz = self.session.call(|s| s.time_zone()).await?;
            data_rows(out, &columns, &now, &formats, &tz);
        }
        let outcome = if !held.is_empty() {
            // The limit was reached within the rows held here.
            Msg::new(b's').finish(out);
            Pumped::Suspended
        } else {
            let r = self.pump(id, columns, formats, limit, out).await?;
            if let Pumped::Suspended = r {
                Msg::new(b's').finish(out);
            }
            r
        };
        let p = self.portals.get_mut(name).expect("present");
        result.rows = held;
        p.result = Some(vec![result]);
        p.sent = 0;
        match outcome {
            Pumped::Suspended => {}
            Pumped::Ended => {
                p.stream = None;
                p.done = true;
            }
            Pumped::Failed => {
                p.stream = None;
                p.done = true;
                // The ErrorResponse went out: skip to Sync like any extended-protocol error.
                self.skip_to_sync = true;
            }
        }
        Ok(Ok(()))
    }

    /// Run portal `name` unless it already ran; its notices go to `out`.
    async fn run_portal(
        &mut self,
        name: &str,
        out: &mut Vec<u8>,
    ) -> std::io::Result<Result<(), PgError>> {
        let Some(p) = self.portals.get(name) else {
            return Ok(Err(PgError::new(
                SqlState::InvalidCursorName,
                format!("portal \"{name}\" does not exist"),
            )));
        };
        if p.result.is_some() {
            return Ok(Ok(()));
        }
        let sql = p.sql.clone();
        let (r, bytes) = self
            .session
            .call(move |s| {
                if sql.trim().trim_matches(';').trim().is_empty() {
                    return (
                        Ok(Executed {
                            results: Vec::new(),
                            stream: None,
                        }),
                        Vec::new(),
                    );
                }
                let r = s.execute_streaming(&sql);
                let mut o = Vec::new();
                notices(&mut o, s);
                (r, o)
            })
            .await?;
        out.extend_from_slice(&bytes);
        match r {
            Ok(ex) => {
                if let Some(p) = self.portals.get_mut(name) {
                    p.result = Some(ex.results);
                    p.stream = ex.stream;
                }
                Ok(Ok(()))
            }
            Err(e) => Ok(Err(e)),
        }
    }
}

/// Call `f` on every `$n` outside string literals, quoted identifiers and comments; where `f`
/// returns a replacement, it replaces the `$n`. Returns the rewritten text.
fn scan_params(sql: &str, mut f: impl FnMut(usize) -> Option<String>) -> String {
    let b = sql.as_bytes();
    let mut out = String::with_capacity(sql.len());
    let mut i = 0;
    let mut last = 0;
    while i < b.len() {
        match b[i] {
            q @ (b'\'' | b'"') => {
                i += 1;
                while i < b.len() && b[i] != q {
                    i += 1;
                }
                i += 1;
            }
            b'-' if b.get(i + 1) == Some(&b'-') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'$' if b.get(i + 1).is_some_and(u8::is_ascii_digit)
                && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_')) =>
            {
                let start = i;
                i += 1;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
                let n: usize = sql[start + 1..i].parse().unwrap_or(0);
                if let Some(rep) = f(n) {
                    out.push_str(&sql[last..start]);
                    out.push_str(&rep);
                    last = i;
                }
            }
            _ => i += 1,
        }
    }
    out.push_str(&sql[last.min(sql.len())..]);
    out
}

/// Substitute the parameters' literals (see [`extended::param_literal`]) for `$n`.
fn substitute(sql: &str, literals: &[String]) -> String {
    scan_params(sql, |n| literals.get(n.checked_sub(1)?).cloned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_substitute_outside_quotes() {
        let s = substitute(
            "select $1, '$1', $2 -- $1\n, a$1",
            &["('it''s'::integer)".into(), "NULL".into()],
        );
        assert_eq!(s, "select ('it''s'::integer), '$1', NULL -- $1\n, a$1");
        assert_eq!(extended::count_params("select $1 + $3"), 3);
    }
}

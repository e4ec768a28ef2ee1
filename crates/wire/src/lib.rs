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

use pgxc_common::{PgError, SqlState};
use pgxc_sql::engine::CopyOut;
use pgxc_sql::parser::{self, CopyTarget, Statement};
use pgxc_sql::types::TimeZone;
use pgxc_sql::types::{binary, DataType};
use pgxc_sql::{Engine, QueryResult, Session};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::{TcpListener, TcpStream};
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

/// Backend pid → (cancel secret, the session's cancel flag).
type CancelKeys = std::sync::Mutex<HashMap<i32, (i32, Arc<AtomicBool>)>>;

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
        tokio::spawn(async move {
            if let Err(e) = handle(stream, factory, pid, auth).await {
                tracing::debug!(%peer, "connection ended: {e}");
            }
        });
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
/// calling task. A statement that would wait for a lock answers 55P03 (the engine is in
/// `WaitMode::Restart`; callers that can wait use `Session::execute_async` directly).
#[cfg(madsim)]
pub struct SessionThread<S = Session> {
    session: std::sync::Mutex<S>,
}

#[cfg(madsim)]
impl SessionThread<Session> {
    /// A new session of `engine`. Never fails under madsim.
    pub fn spawn(engine: Arc<Engine>) -> std::io::Result<SessionThread<Session>> {
        SessionThread::spawn_with(move || Ok(engine.session()))
    }
}

#[cfg(madsim)]
impl<S: 'static> SessionThread<S> {
    /// The session `make` builds. Errors: `make`'s.
    pub fn spawn_with(
        make: impl FnOnce() -> std::io::Result<S> + Send + 'static,
    ) -> std::io::Result<SessionThread<S>> {
        Ok(SessionThread {
            session: std::sync::Mutex::new(make()?),
        })
    }

    /// Run `f` on the session now, on the calling task. Never fails under madsim.
    pub async fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut S) -> R + Send + 'static,
    ) -> std::io::Result<R> {
        let mut s = self.session.lock().unwrap_or_else(|p| p.into_inner());
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

fn data_rows<S: WireSession>(
    out: &mut Vec<u8>,
    columns: &[(String, DataType)],
    rows: &[Vec<pgxc_sql::types::Value>],
    formats: &[i16],
    session: &S,
) {
    let tz = session.time_zone();
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
                v.to_text(ty, &tz).into_bytes()
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
        data_rows(out, &r.columns, &r.rows, &[], session);
    }
    command_complete(out, &r.tag);
}

// ---------------------------------------------------------------------------------------------------------
// The connection.

type Reader = BufReader<tokio::net::tcp::OwnedReadHalf>;
type Writer = BufWriter<tokio::net::tcp::OwnedWriteHalf>;

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
    let (r, w) = stream.into_split();
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
                    let keys = cancel_keys().lock().unwrap_or_else(|p| p.into_inner());
                    if let Some((secret, flag)) = keys.get(&pid) {
                        if *secret == key {
                            flag.store(true, Ordering::Relaxed);
                        }
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
    let cancel = session.call(|s| s.cancel_flag()).await?;
    let _key = match &cancel {
        Some(flag) => {
            cancel_keys()
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(pid, (secret, Arc::clone(flag)));
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
    /// The session's cancel flag (set by a CancelRequest or the statement_timeout timer).
    cancel: Option<Arc<AtomicBool>>,
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
                                let flag = Arc::clone(flag);
                                Some(tokio::spawn(async move {
                                    tokio::time::sleep(t).await;
                                    flag.store(true, Ordering::Relaxed);
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
                    self.portals.retain(|k, _| !k.is_empty());
                    let st = self.status().await?;
                    let mut out = Vec::new();
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
                match s.execute(&sql) {
                    Ok(results) => {
                        for r in &results {
                            encode_result(&mut out, r, s);
                        }
                    }
                    Err(e) => error_response(&mut out, "ERROR", &e),
                }
                Simple::Done(out)
            })
            .await?;
        let mut out = match outcome {
            Simple::Done(out) => out,
            Simple::CopyIn(stmt, ncols, _csv) => self.copy_in(*stmt, ncols).await?,
        };
        let st = self.status().await?;
        ready(&mut out, st);
        self.send(&out).await
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
                if let Err(e) = self.run_portal(&name).await? {
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
                if let Err(e) = self.run_portal(&name).await? {
                    return Ok(Err(e));
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
                                    data_rows(&mut o, &r.columns, &rows[..l], &formats, s);
                                    Msg::new(b's').finish(&mut o);
                                    now_sent = skip + l;
                                    done = false;
                                }
                                _ => {
                                    data_rows(&mut o, &r.columns, rows, &formats, s);
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
                    self.portals.remove(&name);
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

    /// Run portal `name` unless it already ran.
    async fn run_portal(&mut self, name: &str) -> std::io::Result<Result<(), PgError>> {
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
        let r = self
            .session
            .call(move |s| {
                if sql.trim().trim_matches(';').trim().is_empty() {
                    Ok(Vec::new())
                } else {
                    s.execute(&sql)
                }
            })
            .await?;
        match r {
            Ok(rs) => {
                if let Some(p) = self.portals.get_mut(name) {
                    p.result = Some(rs);
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

//! Result streaming for shipped SELECTs (a child module of `session`, so it reaches the session's
//! global transaction directly).
//!
//! A SELECT shipped whole (`SelectRoute::Ship`: fast query shipping to one node, or a plain scan
//! concatenated over several) is sent to each node as `DnRequest::Query` with the session's
//! `pgxc.remote_fetch_size`: every node answers its first batch of at most that many rows (one
//! round trip per node; a small result is complete after it). When a node has more and the wire
//! front end asked for streaming (`CoordSession::execute_streaming`, the query string's last
//! statement), the statement's result is left open as a stream: the front end pulls its rows with
//! `CoordSession::fetch_stream` and writes DataRow messages as batches arrive, each node's next
//! batch fetched (`DnRequest::Fetch`) only when its previous one was handed out. So the
//! coordinator holds at most one batch per datanode whatever the result's size (the
//! [`peak_buffered_rows`] high-water mark measures it). An implicit transaction stays open until
//! the stream ends or is closed, then commits as after any statement. Without streaming (internal
//! callers, `COPY TO`), the batches are gathered into one result.
//!
//! An ORDER BY merged from the datanodes' sorted streams (`remote_sort`'s k-way merge, XC's
//! merge of sorted remote streams) uses the same machinery: every node runs its sorted query
//! under one stream number, and instead of concatenating, the stream keeps a binary heap over the
//! head row of each node's buffer, ordered by the statement's keys with the engine's own Sort
//! comparison ([`pgxc_sql::cmp_nulls`]; ties go to the earlier node). Each pull pops the
//! smallest head, refills a node's buffer (`DnRequest::Fetch`) only when it ran dry, skips OFFSET
//! rows, stops at LIMIT (closing what the nodes still hold), strips the hidden key columns and
//! hands out at most `pgxc.remote_fetch_size` rows. So the coordinator holds at most one batch per
//! datanode also without LIMIT.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};

use pgxc_cluster::proto::{DnRequest, DnResponse};
use pgxc_common::{Gxid, PgError, SqlState};
use pgxc_sql::parser::{self, Statement};
use pgxc_sql::types::{DataType, Value};
use pgxc_sql::QueryResult;

use super::remote_sort::{MergeKey, MergeSpec};
use super::{internal, CoordSession};

/// The setting that bounds a coordinator's buffered rows: `SET pgxc.remote_fetch_size = n`
/// (rows per batch a datanode sends, 1 ..= 1 000 000 000; `SHOW` and `RESET` work).
pub const FETCH_SIZE_SETTING: &str = "pgxc.remote_fetch_size";

/// The default `pgxc.remote_fetch_size`: rows per datanode batch.
pub const DEFAULT_FETCH_SIZE: u32 = 10_000;

/// Rows held in stream buffers now, over every session of the process.
static HELD: AtomicUsize = AtomicUsize::new(0);
/// The largest [`HELD`] seen since the last [`reset_peak_buffered_rows`].
static PEAK: AtomicUsize = AtomicUsize::new(0);

/// The high-water mark of rows the process's coordinator sessions held at once in shipped-SELECT
/// batches (received from datanodes, not yet handed to the client), since the last reset. For
/// tests: it stays ≤ `pgxc.remote_fetch_size` × datanodes for one streaming session.
pub fn peak_buffered_rows() -> usize {
    PEAK.load(Ordering::SeqCst)
}

/// Restart [`peak_buffered_rows`] from the rows held now.
pub fn reset_peak_buffered_rows() {
    PEAK.store(HELD.load(Ordering::SeqCst), Ordering::SeqCst);
}

fn hold(n: usize) {
    let now = HELD.fetch_add(n, Ordering::SeqCst) + n;
    PEAK.fetch_max(now, Ordering::SeqCst);
}

fn release(n: usize) {
    let _ = HELD.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |h| {
        Some(h.saturating_sub(n))
    });
}

/// One node's part of a shipped SELECT.
struct NodePart {
    node: String,
    /// Rows received and not handed out yet.
    buffer: VecDeque<Vec<Value>>,
    /// The datanode keeps more rows under the stream number.
    more: bool,
    /// The node's final tag (`SELECT n`) once it sent its last batch.
    tag: String,
}

/// An open stream: a shipped SELECT's result being handed to the client batch by batch.
struct RemoteStream {
    /// The global transaction it runs in (ended transactions end their streams).
    gxid: Gxid,
    /// The datanodes' stream number.
    number: u32,
    /// Nodes with rows left, in result order.
    parts: VecDeque<NodePart>,
    /// Rows handed out so far.
    sent: u64,
    /// Whether the result concatenates several nodes (the tag counts rows) or is one node's.
    several: bool,
    /// A k-way merge of the parts (sorted streams) instead of their concatenation.
    merge: Option<Merging>,
}

/// The state of a k-way merge over a stream's parts.
struct Merging {
    /// The ORDER BY keys (columns of the nodes' rows).
    keys: Vec<MergeKey>,
    /// Trailing key columns stripped from every row.
    hidden: usize,
    /// OFFSET rows still to skip.
    skip: u64,
    /// LIMIT rows still to hand out (`None`: no LIMIT).
    left: Option<u64>,
    /// A binary min-heap of part indexes whose buffers hold a head row.
    heap: Vec<usize>,
    /// Parts whose buffer ran dry while the node has more (fetched before the next pop).
    refill: Vec<usize>,
}

/// `a`'s head row against `b`'s in merge order (`Less`: `a` goes first): the keys with the
/// engine's Sort comparison, ties to the earlier node (a stable merge).
fn head_cmp(
    parts: &VecDeque<NodePart>,
    keys: &[MergeKey],
    a: usize,
    b: usize,
) -> std::cmp::Ordering {
    let (Some(x), Some(y)) = (parts[a].buffer.front(), parts[b].buffer.front()) else {
        return a.cmp(&b);
    };
    for k in keys {
        let o = pgxc_sql::cmp_nulls(
            x.get(k.col).unwrap_or(&Value::Null),
            y.get(k.col).unwrap_or(&Value::Null),
            k.desc,
            k.nulls_first,
        );
        if o != std::cmp::Ordering::Equal {
            return o;
        }
    }
    a.cmp(&b)
}

/// Add part `i` to the heap (sift up).
fn heap_push(heap: &mut Vec<usize>, parts: &VecDeque<NodePart>, keys: &[MergeKey], i: usize) {
    heap.push(i);
    let mut c = heap.len() - 1;
    while c > 0 {
        let up = (c - 1) / 2;
        if head_cmp(parts, keys, heap[c], heap[up]) == std::cmp::Ordering::Less {
            heap.swap(c, up);
            c = up;
        } else {
            break;
        }
    }
}

/// Take the part with the smallest head row off the heap (sift down).
fn heap_pop(heap: &mut Vec<usize>, parts: &VecDeque<NodePart>, keys: &[MergeKey]) -> Option<usize> {
    if heap.is_empty() {
        return None;
    }
    let top = heap.swap_remove(0);
    let mut c = 0;
    loop {
        let (l, r) = (2 * c + 1, 2 * c + 2);
        let mut m = c;
        if l < heap.len() && head_cmp(parts, keys, heap[l], heap[m]) == std::cmp::Ordering::Less {
            m = l;
        }
        if r < heap.len() && head_cmp(parts, keys, heap[r], heap[m]) == std::cmp::Ordering::Less {
            m = r;
        }
        if m == c {
            break;
        }
        heap.swap(c, m);
        c = m;
    }
    Some(top)
}

impl RemoteStream {
    fn held(&self) -> usize {
        self.parts.iter().map(|p| p.buffer.len()).sum()
    }
}

impl Drop for RemoteStream {
    fn drop(&mut self) {
        release(self.held());
    }
}

/// A session's streaming state.
pub(super) struct Streams {
    /// `pgxc.remote_fetch_size` as this session set it.
    fetch_size: u32,
    /// The running query string may leave its last statement's result streaming.
    allow: bool,
    /// The running statement is the query string's last.
    pub(super) last_statement: bool,
    /// Open streams by id.
    open: Vec<(u64, RemoteStream)>,
    next: u64,
    /// The stream the last statement left open (taken by `execute_streaming`).
    pending: Option<u64>,
}

impl Default for Streams {
    fn default() -> Streams {
        Streams {
            fetch_size: DEFAULT_FETCH_SIZE,
            allow: false,
            last_statement: true,
            open: Vec::new(),
            next: 1,
            pending: None,
        }
    }
}

/// The answer of a `Query`/`Fetch`.
struct Batch {
    columns: Vec<(String, DataType)>,
    rows: Vec<Vec<Value>>,
    more: bool,
    tag: String,
}

/// What the `SET`/`RESET`/`SHOW` of [`FETCH_SIZE_SETTING`] does.
fn fetch_size_value(v: &parser::SetValue) -> Result<u32, PgError> {
    let bad = |s: &str| {
        PgError::new(
            SqlState::InvalidParameterValue,
            format!("invalid value for parameter \"{FETCH_SIZE_SETTING}\": \"{s}\""),
        )
    };
    match v {
        parser::SetValue::Default => Ok(DEFAULT_FETCH_SIZE),
        parser::SetValue::Values(vals) if vals.len() == 1 => {
            let s = vals[0].trim();
            let n: i64 = s.parse().map_err(|_| bad(s))?;
            if !(1..=1_000_000_000).contains(&n) {
                return Err(PgError::new(
                    SqlState::InvalidParameterValue,
                    format!(
                        "{n} is outside the valid range for parameter \"{FETCH_SIZE_SETTING}\" (1 .. 1000000000)"
                    ),
                ));
            }
            Ok(n as u32)
        }
        parser::SetValue::Values(vals) => Err(bad(&vals.join(", "))),
    }
}

impl CoordSession {
    /// `SET`/`RESET`/`SHOW pgxc.remote_fetch_size` (answered here: the setting is the
    /// coordinator's own); `None` for any other statement. `RESET ALL` resets it and still runs
    /// on the catalog session (`None`). Errors: 22023 for a value that is not an integer in
    /// 1 ..= 1 000 000 000.
    pub(super) fn fetch_size_setting(
        &mut self,
        st: &Statement,
    ) -> Result<Option<QueryResult>, PgError> {
        match st {
            Statement::Set(parser::Set::Variable { name, value, .. })
                if name.eq_ignore_ascii_case(FETCH_SIZE_SETTING) =>
            {
                self.streams.fetch_size = fetch_size_value(value)?;
                Ok(Some(QueryResult::command("SET")))
            }
            Statement::Reset(parser::ResetTarget::Variable(name))
                if name.eq_ignore_ascii_case(FETCH_SIZE_SETTING) =>
            {
                self.streams.fetch_size = DEFAULT_FETCH_SIZE;
                Ok(Some(QueryResult::command("RESET")))
            }
            Statement::Reset(parser::ResetTarget::All) => {
                self.streams.fetch_size = DEFAULT_FETCH_SIZE;
                Ok(None)
            }
            Statement::Show(parser::ShowTarget::Variable(name))
                if name.eq_ignore_ascii_case(FETCH_SIZE_SETTING) =>
            {
                Ok(Some(QueryResult {
                    columns: vec![(FETCH_SIZE_SETTING.to_string(), DataType::Text)],
                    rows: vec![vec![Value::Text(self.streams.fetch_size.to_string())]],
                    tag: "SHOW".into(),
                }))
            }
            _ => Ok(None),
        }
    }

    /// [`CoordSession::execute`], letting the query string's last statement leave its result
    /// streaming when it is a shipped SELECT with more rows than one batch per node: then the
    /// last result has the columns and no rows, and the stream's id is returned with the results
    /// (rows come from [`CoordSession::fetch_stream`]).
    pub async fn execute_streaming(
        &mut self,
        sql: &str,
    ) -> Result<(Vec<QueryResult>, Option<u64>), PgError> {
        self.streams.allow = true;
        self.streams.pending = None;
        let r = self.execute(sql).await;
        self.streams.allow = false;
        let pending = self.streams.pending.take();
        match r {
            Ok(results) => Ok((results, pending)),
            Err(e) => {
                if let Some(id) = pending {
                    let _ = Box::pin(self.close_stream(id)).await;
                }
                Err(e)
            }
        }
    }

    /// Rows held by the session's open streams (for tests and `pgxc_pool_check`-style checks).
    pub fn buffered_rows(&self) -> usize {
        self.streams.open.iter().map(|(_, s)| s.held()).sum()
    }

    /// The next rows of stream `id`: at most `max` (≥ 1 while rows are left), or `Ok(Err(tag))`
    /// once every row went out (the stream is then closed and an implicit transaction commits).
    /// Errors: 34000 for a stream not open (its transaction ended), the datanodes' errors (the
    /// stream closes and the statement fails as any other: the block fails, an implicit
    /// transaction rolls back), 57014 when cancelled.
    pub async fn fetch_stream(
        &mut self,
        id: u64,
        max: usize,
    ) -> Result<Result<Vec<Vec<Value>>, String>, PgError> {
        self.next_rows(id, max, true).await
    }

    /// [`CoordSession::fetch_stream`]; `own` (the client pulls the stream): an error fails the
    /// statement and the end commits an implicit transaction. Without `own` (the statement
    /// gathers its own result) both are left to the statement's caller.
    async fn next_rows(
        &mut self,
        id: u64,
        max: usize,
        own: bool,
    ) -> Result<Result<Vec<Vec<Value>>, String>, PgError> {
        let Some(pos) = self.streams.open.iter().position(|(i, _)| *i == id) else {
            return Err(PgError::new(
                SqlState::InvalidCursorName,
                format!("result stream {id} is not open"),
            ));
        };
        if self.txn.as_ref().map(|t| t.gxid) != Some(self.streams.open[pos].1.gxid) {
            // The transaction it ran in ended (COMMIT, ROLLBACK, an error).
            self.streams.open.remove(pos);
            return Err(PgError::new(
                SqlState::InvalidCursorName,
                "the portal's transaction has ended",
            ));
        }
        let max = max.max(1);
        if self.streams.open[pos].1.merge.is_some() {
            return self.next_merged(pos, max, own).await;
        }
        loop {
            let stream = &mut self.streams.open[pos].1;
            let Some(part) = stream.parts.front_mut() else {
                break;
            };
            if !part.buffer.is_empty() {
                let n = max.min(part.buffer.len());
                let rows: Vec<Vec<Value>> = part.buffer.drain(..n).collect();
                release(n);
                stream.sent += n as u64;
                return Ok(Ok(rows));
            }
            if !part.more {
                let done = stream.parts.pop_front();
                if !stream.several && stream.parts.is_empty() {
                    if let Some(p) = done {
                        let tag = p.tag;
                        return Ok(Err(self.finish_stream(pos, Some(tag), own).await?));
                    }
                }
                continue;
            }
            let (node, number) = (part.node.clone(), stream.number);
            let b = self.fetch_part(pos, &node, number, own).await?;
            let stream = &mut self.streams.open[pos].1;
            if let Some(part) = stream.parts.front_mut() {
                part.buffer.extend(b.rows);
                part.more = b.more;
                part.tag = b.tag;
            }
        }
        Ok(Err(self.finish_stream(pos, None, own).await?))
    }

    /// The next batch (at most `pgxc.remote_fetch_size` rows) of stream `number` on `node`, the
    /// part of the open stream at `pos`, counted as held. On an error the stream is forgotten and,
    /// when the stream owns its transaction (`own`), the transaction fails.
    async fn fetch_part(
        &mut self,
        pos: usize,
        node: &str,
        number: u32,
        own: bool,
    ) -> Result<Batch, PgError> {
        let batch = self.streams.fetch_size;
        match self
            .stream_call(
                node,
                DnRequest::Fetch {
                    stream: number,
                    batch,
                },
            )
            .await
        {
            Ok(b) => {
                hold(b.rows.len());
                Ok(b)
            }
            Err(e) => {
                self.streams.open.remove(pos);
                if own {
                    self.fail().await;
                }
                Err(e)
            }
        }
    }

    /// The next rows of the merged stream at `pos` (see the module docs): at most `max` and at
    /// most `pgxc.remote_fetch_size`, or `Ok(Err(tag))` once the merge is done (every node ran
    /// dry, or LIMIT rows went out: then the nodes' unread rows are dropped). `own` as for
    /// [`CoordSession::next_rows`].
    async fn next_merged(
        &mut self,
        pos: usize,
        max: usize,
        own: bool,
    ) -> Result<Result<Vec<Vec<Value>>, String>, PgError> {
        let cap = max.min(self.streams.fetch_size as usize).max(1);
        let mut out: Vec<Vec<Value>> = Vec::new();
        loop {
            if out.len() >= cap {
                break;
            }
            // Every node with rows left must show its head before the next pop.
            let stream = &mut self.streams.open[pos].1;
            let Some(m) = stream.merge.as_mut() else {
                return Err(internal("stream is not a merge"));
            };
            if m.left == Some(0) {
                break;
            }
            if let Some(i) = m.refill.pop() {
                let (node, number) = (stream.parts[i].node.clone(), stream.number);
                let b = self.fetch_part(pos, &node, number, own).await?;
                let stream = &mut self.streams.open[pos].1;
                let RemoteStream { parts, merge, .. } = stream;
                let Some(m) = merge.as_mut() else {
                    return Err(internal("stream is not a merge"));
                };
                let part = &mut parts[i];
                part.buffer.extend(b.rows);
                part.more = b.more;
                part.tag = b.tag;
                if !part.buffer.is_empty() {
                    heap_push(&mut m.heap, parts, &m.keys, i);
                } else if part.more {
                    m.refill.push(i);
                }
                continue;
            }
            let RemoteStream {
                parts, merge, sent, ..
            } = stream;
            let Some(m) = merge.as_mut() else {
                return Err(internal("stream is not a merge"));
            };
            let Some(i) = heap_pop(&mut m.heap, parts, &m.keys) else {
                break;
            };
            let Some(mut row) = parts[i].buffer.pop_front() else {
                continue;
            };
            release(1);
            if !parts[i].buffer.is_empty() {
                heap_push(&mut m.heap, parts, &m.keys, i);
            } else if parts[i].more {
                m.refill.push(i);
            }
            if m.skip > 0 {
                m.skip -= 1;
                continue;
            }
            if let Some(l) = m.left.as_mut() {
                *l -= 1;
            }
            row.truncate(row.len().saturating_sub(m.hidden));
            out.push(row);
            *sent += 1;
        }
        if !out.is_empty() {
            return Ok(Ok(out));
        }
        // Done: in a transaction block the nodes drop what LIMIT left unread now.
        if self.block.is_some() {
            let s = &self.streams.open[pos].1;
            let number = s.number;
            let open: Vec<String> = s
                .parts
                .iter()
                .filter(|p| p.more)
                .map(|p| p.node.clone())
                .collect();
            for node in open {
                if let Some((conn, _)) = self.txn.as_mut().and_then(|t| t.conns.get_mut(&node)) {
                    if let Err(e) = conn.call(DnRequest::CloseStream { stream: number }).await {
                        self.streams.open.remove(pos);
                        if own {
                            self.fail().await;
                        }
                        return Err(e);
                    }
                }
            }
        }
        Ok(Err(self.finish_stream(pos, None, own).await?))
    }

    /// Close the stream at `pos` after its last row: its tag (`tag`, else `SELECT <rows>`), and
    /// with `commit`, the implicit transaction's commit once no stream holds it.
    async fn finish_stream(
        &mut self,
        pos: usize,
        tag: Option<String>,
        commit: bool,
    ) -> Result<String, PgError> {
        let (_, s) = self.streams.open.remove(pos);
        let tag = tag.unwrap_or_else(|| format!("SELECT {}", s.sent));
        drop(s);
        if commit {
            self.end_implicit().await?;
        }
        Ok(tag)
    }

    /// Whether an open stream of the running global transaction keeps it from committing
    /// (streams of transactions that ended are dropped here).
    pub(super) fn stream_holds_transaction(&mut self) -> bool {
        let gxid = self.txn.as_ref().map(|t| t.gxid);
        self.streams.open.retain(|(_, s)| Some(s.gxid) == gxid);
        !self.streams.open.is_empty()
    }

    /// Commit the implicit transaction a finished or closed stream kept open.
    async fn end_implicit(&mut self) -> Result<(), PgError> {
        if self.block.is_none() && self.txn.is_some() && !self.stream_holds_transaction() {
            self.commit_txn().await?;
        }
        Ok(())
    }

    /// Drop stream `id` before its end (its portal closed): the datanodes drop their rows, and an
    /// implicit transaction commits once no stream holds it (PostgreSQL commits at Sync).
    pub async fn close_stream(&mut self, id: u64) -> Result<(), PgError> {
        let Some(pos) = self.streams.open.iter().position(|(i, _)| *i == id) else {
            return Ok(());
        };
        let (_, s) = self.streams.open.remove(pos);
        let live = self.txn.as_ref().map(|t| t.gxid) == Some(s.gxid);
        if live && self.block.is_some() {
            // The transaction goes on: free the datanodes' rows now.
            for p in s.parts.iter().filter(|p| p.more) {
                let number = s.number;
                if let Some((conn, _)) = self.txn.as_mut().and_then(|t| t.conns.get_mut(&p.node)) {
                    conn.call(DnRequest::CloseStream { stream: number }).await?;
                }
            }
        }
        drop(s);
        if live {
            self.end_implicit().await?;
        }
        Ok(())
    }

    /// A shipped SELECT (`SelectRoute::Ship`): `text` on every node of `nodes`, rows concatenated
    /// in node order (one node: its own tag; several: `SELECT <total>`). Streams (see the module
    /// docs) when allowed and some node has more than one batch.
    pub(super) async fn ship(
        &mut self,
        text: &str,
        nodes: Vec<String>,
    ) -> Result<QueryResult, PgError> {
        self.open_stream(text, nodes, None).await
    }

    /// A merged ORDER BY (`remote_sort`): `text` (the nodes' sorted query, `spec.visible`
    /// columns then `spec.hidden` key columns) on every node of `nodes`, the rows merged in key
    /// order with OFFSET/LIMIT applied and the hidden columns stripped; the tag is `SELECT
    /// <rows>`. Streams (see the module docs) when allowed and some node has more than one batch.
    /// Errors: the datanodes' errors; XX000 when a node's columns are not the planned ones.
    pub(super) async fn merge_ship(
        &mut self,
        text: &str,
        nodes: Vec<String>,
        spec: &MergeSpec,
    ) -> Result<QueryResult, PgError> {
        let m = Merging {
            keys: spec.keys.clone(),
            hidden: spec.hidden,
            skip: spec.offset,
            left: spec.limit,
            heap: Vec::new(),
            refill: Vec::new(),
        };
        let mut r = self
            .open_stream(text, nodes, Some((m, spec.visible)))
            .await?;
        r.columns.truncate(spec.visible);
        Ok(r)
    }

    /// [`CoordSession::ship`] (`merge`: `None`) or [`CoordSession::merge_ship`] (the merge and
    /// the visible column count).
    async fn open_stream(
        &mut self,
        text: &str,
        nodes: Vec<String>,
        merge: Option<(Merging, usize)>,
    ) -> Result<QueryResult, PgError> {
        let number = (self.streams.next & u64::from(u32::MAX)) as u32;
        let id = self.streams.next;
        self.streams.next += 1;
        let batch = self.streams.fetch_size;
        let several = nodes.len() > 1;
        let mut columns: Option<Vec<(String, DataType)>> = None;
        let mut parts = VecDeque::new();
        let mut guard = Held(0);
        for node in nodes {
            let req = DnRequest::Query {
                snapshot: self.txn()?.snapshot.clone(),
                sql: text.to_string(),
                stream: number,
                batch,
            };
            let b = self.stream_call(&node, req).await?;
            hold(b.rows.len());
            guard.0 += b.rows.len();
            if columns.is_none() {
                columns = Some(b.columns);
            }
            parts.push_back(NodePart {
                node,
                buffer: b.rows.into(),
                more: b.more,
                tag: b.tag,
            });
        }
        let columns = columns.ok_or_else(|| internal("no result from datanode"))?;
        let gxid = self.txn()?.gxid;
        let merge = match merge {
            None => None,
            Some((mut m, visible)) => {
                if columns.len() != visible + m.hidden {
                    return Err(internal(format!(
                        "merged ORDER BY: a datanode answered {} columns, {} planned",
                        columns.len(),
                        visible + m.hidden
                    )));
                }
                for i in 0..parts.len() {
                    if !parts[i].buffer.is_empty() {
                        heap_push(&mut m.heap, &parts, &m.keys, i);
                    } else if parts[i].more {
                        m.refill.push(i);
                    }
                }
                Some(m)
            }
        };
        let stream = RemoteStream {
            gxid,
            number,
            parts,
            sent: 0,
            several,
            merge,
        };
        guard.0 = 0; // the stream owns the held rows now
        if self.streams.allow && self.streams.last_statement && stream.parts.iter().any(|p| p.more)
        {
            self.streams.open.push((id, stream));
            self.streams.pending = Some(id);
            return Ok(QueryResult {
                columns,
                rows: Vec::new(),
                tag: String::new(),
            });
        }
        // Gather the whole result.
        self.streams.open.push((id, stream));
        let mut rows = Vec::new();
        let tag = loop {
            match Box::pin(self.next_rows(id, usize::MAX, false)).await? {
                Ok(batch) => rows.extend(batch),
                Err(tag) => break tag,
            }
        };
        Ok(QueryResult { columns, rows, tag })
    }

    /// Send a `Query`/`Fetch` to `node` inside the global transaction (opening it there first,
    /// as `node_exec` does) and take its batch; records whether the node wrote and whom it
    /// followed.
    async fn stream_call(&mut self, node: &str, req: DnRequest) -> Result<Batch, PgError> {
        self.ensure_conn(node).await?;
        let txn = self.txn()?;
        let txn_followed = &mut txn.followed;
        let Some((conn, wrote)) = txn.conns.get_mut(node) else {
            return Err(internal("connection vanished"));
        };
        match conn.call(req).await? {
            DnResponse::Batch {
                columns,
                rows,
                more,
                tag,
                wrote: w,
                followed,
                ..
            } => {
                *wrote |= w;
                for g in followed {
                    if !txn_followed.contains(&g) {
                        txn_followed.push(g);
                    }
                }
                Ok(Batch {
                    columns,
                    rows,
                    more,
                    tag,
                })
            }
            other => Err(internal(format!("unexpected datanode answer {other:?}"))),
        }
    }

    /// Make sure `node` takes part in the global transaction (checked-out connection, `Begin`,
    /// the open savepoints replayed), as `node_exec` does before its statement.
    pub(super) async fn ensure_conn(&mut self, node: &str) -> Result<(), PgError> {
        let coord = std::sync::Arc::clone(&self.coord);
        let txn = self.txn()?;
        if txn.conns.contains_key(node) {
            return Ok(());
        }
        let begin = DnRequest::Begin {
            gxid: txn.gxid,
            isolation: txn.iso,
            read_only: txn.read_only,
        };
        let mut conn = coord.checkout(node).await?;
        if let Err(e) = conn.call(begin.clone()).await {
            if !conn.is_broken() {
                return Err(e);
            }
            // A pooled connection to a node that restarted: drop the pool, connect afresh.
            coord.forget_node(node);
            conn = coord.connect(node).await?;
            conn.call(begin).await?;
        }
        if !txn.savepoints.is_empty() {
            let replay: Vec<String> = txn
                .savepoints
                .iter()
                .map(|s| format!("SAVEPOINT \"{}\"", s.replace('"', "\"\"")))
                .collect();
            conn.call(DnRequest::Execute {
                snapshot: txn.snapshot.clone(),
                sql: replay.join("; "),
            })
            .await?;
        }
        txn.conns.insert(node.to_string(), (conn, false));
        Ok(())
    }
}

/// Rows counted as held by a `ship` that has not handed them to a stream yet (released if it
/// fails half way).
struct Held(usize);

impl Drop for Held {
    fn drop(&mut self) {
        release(self.0);
    }
}

/// PostgreSQL's WARNING for a transaction statement out of place, reported to the running
/// statement's client: 25001 `there is already a transaction in progress` (BEGIN in a block),
/// 25P01 `there is no transaction in progress` (COMMIT/ROLLBACK outside one).
pub(super) fn warn(code: SqlState) {
    let message = match code {
        SqlState::ActiveSqlTransaction => "there is already a transaction in progress",
        _ => "there is no transaction in progress",
    };
    pgxc_datanode::client::notice(pgxc_common::error::Notice::warning(code, message));
}

impl CoordSession {
    /// The cancel flag of this session's catalog engine session (a CancelRequest sets it too, so
    /// a statement evaluated on the coordinator stops). Errors: XX000 if the thread is gone.
    pub async fn local_cancel_flag(
        &self,
    ) -> Result<std::sync::Arc<std::sync::atomic::AtomicBool>, PgError> {
        self.local
            .call(|s| s.cancel_flag())
            .await
            .map_err(super::io_err)
    }
}

/// Run `sql` on the catalog session `s` and add its NOTICEs to `ctx` (the running statement's
/// context) as the coordinator's own, so a DDL's notice reaches the client also when no datanode
/// ran it (e.g. `CREATE TABLE IF NOT EXISTS` of an existing table stops at the catalog).
#[cfg(not(madsim))]
pub(super) fn execute_noting(
    s: &mut pgxc_sql::Session,
    sql: &str,
    ctx: Option<&pgxc_datanode::client::CallContext>,
) -> Result<Vec<QueryResult>, PgError> {
    let r = s.execute(sql);
    if let Some(c) = ctx {
        for n in s.take_notices() {
            c.push_notice("", n);
        }
    }
    r
}

//! An Elle-style checker for list-append histories (issue 7's list-append workload).
//!
//! Each key holds a list; a transaction is a sequence of micro-operations, `append(k, v)` (a value
//! unique in the whole history) and `read(k)` (the whole list). Because values are unique and lists
//! only grow, every read names the versions it saw, and the longest list of a key (the final read
//! after healing) gives the key's **version order**. From it the checker infers the dependency
//! graph of Adya's formalism, as Elle (Kingsbury & Alvaro, VLDB 2020) does:
//!
//! - `ww` (write-write): the writer of element `i` precedes the writer of element `i + 1`;
//! - `wr` (write-read): the writer of a read's last element precedes the reader;
//! - `rw` (read-write, anti-dependency): a reader precedes the writer of the first element its read
//!   did not see;
//! - `session`: a client's fully committed transaction precedes that client's next transaction
//!   (a coordinator session sees its own acknowledged commits, as in PostgreSQL).
//!
//! The graph holds committed transactions, transactions whose commit outcome is unknown but whose
//! appends were observed (so they committed), and read-only transactions with an unknown outcome
//! (their reads came from one snapshot either way). It then reports what snapshot isolation
//! (PostgreSQL's REPEATABLE READ) forbids ([`Kind`]): G0, G1a, G1b, G1c, G-single, lost update,
//! reads inconsistent inside one transaction, duplicate elements, incompatible orders, values no one
//! appended, and acknowledged appends missing from the final lists (durability). Cycles with two or
//! more anti-dependencies (G2, write skew) are allowed under snapshot isolation and not reported.
//!
//! Pure code: it runs (and its tests below run) in normal builds too.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Write as _;

/// A key of the list-append workload.
pub type Key = i64;
/// An appended value (unique in one history).
pub type Value = i64;

/// One micro-operation, as the client saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// `append(key, value)`, acknowledged by the datanode.
    Append {
        /// The key.
        key: Key,
        /// The value (unique in the history).
        value: Value,
    },
    /// `read(key)`: the whole list, oldest element first (an empty list for an empty key).
    Read {
        /// The key.
        key: Key,
        /// What the read returned.
        values: Vec<Value>,
    },
}

/// How a transaction ended, as the client saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// `COMMIT` acknowledged, and the transaction ended at the GTM: the client's next transaction
    /// must see it.
    Committed,
    /// `COMMIT` acknowledged, but the second phase did not reach every writer or the GTM did not
    /// confirm the end (the resolver finishes it later): committed, but the client's next
    /// transaction may still find it running (no session edge out of it).
    CommittedLate,
    /// Failed before the commit decision, or the commit was refused: nothing it wrote may be seen.
    Aborted,
    /// The commit outcome is unknown (SQLSTATE 08007): it may or may not have committed.
    Unknown,
}

/// One transaction of the history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Txn {
    /// The client (coordinator session) that ran it; a client's transactions appear in the
    /// history in the order it ran them.
    pub client: usize,
    /// A label for reports (e.g. its GXID).
    pub label: String,
    /// Its micro-operations in execution order (only those that succeeded).
    pub ops: Vec<Op>,
    /// How it ended.
    pub outcome: Outcome,
    /// When its snapshot was taken (any monotonic clock, e.g. simulated nanoseconds; the answer's
    /// arrival), if recorded.
    pub snapshot_at: Option<u64>,
    /// When its commit began (the first commit request sent), if recorded.
    pub commit_at: Option<u64>,
}

/// The anomaly classes the checker reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// One list (a read or a final list) holds an element twice, or a value was appended twice.
    DuplicateElements,
    /// A read is not a prefix of the key's version order (two reads disagree on the order).
    IncompatibleOrder,
    /// A read returned a value no transaction appended.
    GarbageRead,
    /// G1a, aborted read: a value whose append aborted was read or is in a final list.
    G1a,
    /// G1b, intermediate read: a read saw a transaction's append to a key but not its later
    /// append to the same key.
    G1b,
    /// Inside one transaction a read is not the previous read of the key (or the empty snapshot
    /// state) plus the transaction's own appends since: non-repeatable read or lost own write.
    Internal,
    /// G0: a cycle of write-write edges.
    G0,
    /// G1c: a cycle of write-write and write-read (and session) edges with at least one write-read
    /// or session edge.
    G1c,
    /// G-single: a cycle with exactly one read-write (anti-dependency) edge; forbidden by
    /// snapshot isolation (read skew, and lost update as a cycle).
    GSingle,
    /// Lost update: two committed transactions read the same version of a key and both appended to
    /// it (SI's first-committer-wins forbids it).
    LostUpdate,
    /// Durability: an acknowledged append is missing from the final list of its key.
    LostAppend,
    /// A transaction read or overwrote the append of one whose commit began only after the
    /// reader's snapshot was taken (a `wr`/`ww` edge against real time, G1c-realtime): with a
    /// GTM, such a transaction is running in that snapshot and must stay invisible (and an update
    /// of its row must fail with 40001), so the snapshot missed a running transaction.
    FutureRead,
}

impl Kind {
    /// The name used in reports (Elle's where it has one).
    pub fn name(self) -> &'static str {
        match self {
            Kind::DuplicateElements => "duplicate-elements",
            Kind::IncompatibleOrder => "incompatible-order",
            Kind::GarbageRead => "garbage-read",
            Kind::G1a => "G1a",
            Kind::G1b => "G1b",
            Kind::Internal => "internal",
            Kind::G0 => "G0",
            Kind::G1c => "G1c",
            Kind::GSingle => "G-single",
            Kind::LostUpdate => "lost-update",
            Kind::LostAppend => "lost-append (durability)",
            Kind::FutureRead => "G1c-realtime (future read)",
        }
    }
}

/// One reported anomaly: its class and a human-readable explanation (for cycles: every
/// transaction of the cycle with its operations, and the edges between them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Anomaly {
    /// The class.
    pub kind: Kind,
    /// What was found.
    pub detail: String,
}

/// The checker's verdict.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Checked {
    /// Every anomaly found (at most [`MAX_PER_KIND`] of each class), in [`Kind`] order.
    pub anomalies: Vec<Anomaly>,
    /// Transactions in the dependency graph.
    pub graph_txns: usize,
    /// Edges in the graph: ww, wr, rw, session.
    pub edges: [usize; 4],
}

impl Checked {
    /// Whether nothing was found.
    pub fn ok(&self) -> bool {
        self.anomalies.is_empty()
    }

    /// The anomaly classes found, each once.
    pub fn kinds(&self) -> BTreeSet<Kind> {
        self.anomalies.iter().map(|a| a.kind).collect()
    }

    /// A multi-line report of every anomaly.
    pub fn report(&self) -> String {
        let mut s = String::new();
        for a in &self.anomalies {
            let _ = writeln!(s, "{}: {}", a.kind.name(), a.detail);
        }
        s
    }
}

/// How many anomalies of one class are reported at most.
pub const MAX_PER_KIND: usize = 3;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Edge {
    Ww,
    Wr,
    Rw,
    Session,
}

impl Edge {
    fn name(self) -> &'static str {
        match self {
            Edge::Ww => "ww",
            Edge::Wr => "wr",
            Edge::Rw => "rw",
            Edge::Session => "session",
        }
    }
}

/// Check `history` against `final_lists` (every key's whole list read after healing; a key
/// missing from the map was not read at the end, and its order is taken from the longest read).
pub fn check(history: &[Txn], final_lists: &BTreeMap<Key, Vec<Value>>) -> Checked {
    let mut out = Found::default();

    // Who appended each value, and where in that transaction's appends to its key.
    let mut writer: BTreeMap<Value, (usize, Key)> = BTreeMap::new();
    for (t, txn) in history.iter().enumerate() {
        for op in &txn.ops {
            if let Op::Append { key, value } = op {
                if writer.insert(*value, (t, *key)).is_some() {
                    out.add(
                        Kind::DuplicateElements,
                        format!("value {value} appended twice (key {key})"),
                    );
                }
            }
        }
    }
    let observed: BTreeSet<Value> = final_lists
        .values()
        .flatten()
        .chain(history.iter().flat_map(|t| {
            t.ops.iter().flat_map(|op| match op {
                Op::Read { values, .. } => values.as_slice(),
                Op::Append { .. } => &[],
            })
        }))
        .copied()
        .collect();
    let included: Vec<bool> = history
        .iter()
        .map(|t| match t.outcome {
            Outcome::Committed | Outcome::CommittedLate => true,
            Outcome::Aborted => false,
            Outcome::Unknown => t.ops.iter().all(|op| match op {
                Op::Append { value, .. } => observed.contains(value),
                Op::Read { .. } => true,
            }),
        })
        .collect();
    let acked = |t: usize| {
        matches!(
            history[t].outcome,
            Outcome::Committed | Outcome::CommittedLate
        )
    };

    // Version order per key: the final list, else the longest read.
    let mut order: BTreeMap<Key, Vec<Value>> = final_lists.clone();
    for (t, txn) in history.iter().enumerate() {
        if !included[t] {
            continue;
        }
        for op in &txn.ops {
            if let Op::Read { key, values } = op {
                if !final_lists.contains_key(key) {
                    let cur = order.entry(*key).or_default();
                    if values.len() > cur.len() {
                        *cur = values.clone();
                    }
                }
            }
        }
    }
    for (key, list) in &order {
        if let Some(d) = first_duplicate(list) {
            out.add(
                Kind::DuplicateElements,
                format!("final list of key {key} holds {d} twice: {list:?}"),
            );
        }
        for v in list {
            match writer.get(v) {
                None => out.add(
                    Kind::GarbageRead,
                    format!("final list of key {key} holds {v}, which no transaction appended"),
                ),
                Some((t, _)) if history[*t].outcome == Outcome::Aborted => out.add(
                    Kind::G1a,
                    format!(
                        "final list of key {key} holds {v}, appended by aborted {}",
                        describe(history, *t)
                    ),
                ),
                Some(_) => {}
            }
        }
    }
    // Durability: every acknowledged append is in its key's final list.
    for (t, txn) in history.iter().enumerate() {
        if !acked(t) {
            continue;
        }
        for op in &txn.ops {
            if let Op::Append { key, value } = op {
                if let Some(list) = final_lists.get(key) {
                    if !list.contains(value) {
                        out.add(
                            Kind::LostAppend,
                            format!(
                                "{value} (acknowledged, by {}) is not in the final list of key {key}: {list:?}",
                                describe(history, t)
                            ),
                        );
                    }
                }
            }
        }
    }

    // Reads: duplicates, prefixes, garbage, aborted and intermediate reads, and each
    // transaction's own consistency.
    for (t, txn) in history.iter().enumerate() {
        if !included[t] {
            continue;
        }
        // key → (what the transaction's snapshot shows now, whether it is known).
        let mut state: BTreeMap<Key, Vec<Value>> = BTreeMap::new();
        let mut own: BTreeMap<Key, Vec<Value>> = BTreeMap::new();
        for op in &txn.ops {
            match op {
                Op::Append { key, value } => {
                    own.entry(*key).or_default().push(*value);
                    if let Some(s) = state.get_mut(key) {
                        s.push(*value);
                    }
                }
                Op::Read { key, values } => {
                    if let Some(d) = first_duplicate(values) {
                        out.add(
                            Kind::DuplicateElements,
                            format!(
                                "read of key {key} holds {d} twice: {values:?} in {}",
                                describe(history, t)
                            ),
                        );
                    }
                    let expect = state.get(key);
                    let internal_bad = match expect {
                        Some(e) => e != values,
                        None => {
                            let mine = own.get(key).map(Vec::as_slice).unwrap_or(&[]);
                            !values.ends_with(mine)
                        }
                    };
                    if internal_bad {
                        out.add(
                            Kind::Internal,
                            format!(
                                "read of key {key} returned {values:?}, but the transaction's snapshot plus its own appends {:?} give {}: {}",
                                own.get(key).cloned().unwrap_or_default(),
                                match expect {
                                    Some(e) => format!("{e:?}"),
                                    None => "a list ending with them".into(),
                                },
                                describe(history, t)
                            ),
                        );
                    }
                    state.insert(*key, values.clone());
                    if let Some(list) = order.get(key) {
                        if !list.starts_with(values) {
                            out.add(
                                Kind::IncompatibleOrder,
                                format!(
                                    "read of key {key} returned {values:?}, not a prefix of the version order {list:?}: {}",
                                    describe(history, t)
                                ),
                            );
                        }
                    }
                    for v in values {
                        match writer.get(v) {
                            None => out.add(
                                Kind::GarbageRead,
                                format!("read of key {key} returned {v}, which no transaction appended: {}", describe(history, t)),
                            ),
                            Some((w, _)) if history[*w].outcome == Outcome::Aborted => out.add(
                                Kind::G1a,
                                format!(
                                    "{} read {v} of key {key}, appended by aborted {}",
                                    describe(history, t),
                                    describe(history, *w)
                                ),
                            ),
                            Some(_) => {}
                        }
                    }
                    if let Some(last) = values.last() {
                        if let Some((w, _)) = writer.get(last) {
                            if *w != t {
                                let later = history[*w].ops.iter().any(
                                    |op| matches!(op, Op::Append { key: k2, .. } if k2 == key),
                                ) && last_append(&history[*w], *key) != Some(*last);
                                if later {
                                    out.add(
                                        Kind::G1b,
                                        format!(
                                            "{} read key {key} = {values:?}: {last} is not the last append to key {key} of {}",
                                            describe(history, t),
                                            describe(history, *w)
                                        ),
                                    );
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    // The dependency graph.
    let n = history.len();
    let mut adj: Vec<BTreeMap<usize, (Edge, Key)>> = vec![BTreeMap::new(); n];
    let mut counts = [0usize; 4];
    let add_edge =
        |adj: &mut Vec<BTreeMap<usize, (Edge, Key)>>, a: usize, b: usize, e: Edge, k: Key| {
            if a == b || !included[a] || !included[b] {
                return;
            }
            // Keep the strongest kind per pair: ww/wr/session before rw (a pair with both is not an
            // anti-dependency cycle member by itself).
            let slot = adj[a].entry(b).or_insert((e, k));
            if e < slot.0 {
                *slot = (e, k);
            }
        };
    for (key, list) in &order {
        let writers: Vec<Option<usize>> = list.iter().map(|v| writer.get(v).map(|w| w.0)).collect();
        for pair in writers.windows(2) {
            if let [Some(a), Some(b)] = pair {
                add_edge(&mut adj, *a, *b, Edge::Ww, *key);
            }
        }
        for (t, txn) in history.iter().enumerate() {
            if !included[t] {
                continue;
            }
            for op in &txn.ops {
                let Op::Read { key: k, values } = op else {
                    continue;
                };
                if k != key || !list.starts_with(values) {
                    continue;
                }
                // wr: the last element another transaction wrote.
                if let Some(w) = values
                    .iter()
                    .rev()
                    .filter_map(|v| writer.get(v).map(|w| w.0))
                    .find(|w| *w != t)
                {
                    add_edge(&mut adj, w, t, Edge::Wr, *key);
                }
                // rw: the first element after the read, if another transaction wrote it.
                if let Some(Some(w)) = writers.get(values.len()) {
                    add_edge(&mut adj, t, *w, Edge::Rw, *key);
                }
            }
        }
    }
    // Session order: a client's fully committed transaction precedes its later ones.
    let mut last_committed: BTreeMap<usize, usize> = BTreeMap::new();
    for (t, txn) in history.iter().enumerate() {
        if !included[t] {
            continue;
        }
        if let Some(&p) = last_committed.get(&txn.client) {
            add_edge(&mut adj, p, t, Edge::Session, -1);
        }
        if txn.outcome == Outcome::Committed {
            last_committed.insert(txn.client, t);
        }
    }
    for m in &adj {
        for (e, _) in m.values() {
            counts[*e as usize] += 1;
        }
    }

    // Real time: no wr/ww edge from a transaction whose commit began after the other's snapshot.
    for (a, m) in adj.iter().enumerate() {
        for (&b, &(e, k)) in m {
            if !matches!(e, Edge::Ww | Edge::Wr) {
                continue;
            }
            if let (Some(commit), Some(snap)) = (history[a].commit_at, history[b].snapshot_at) {
                if snap < commit {
                    out.add(
                        Kind::FutureRead,
                        format!(
                            "{} -{} key {k}-> {}, but the second took its snapshot before the first began to commit",
                            describe(history, a),
                            e.name(),
                            describe(history, b)
                        ),
                    );
                }
            }
        }
    }

    // Lost update: two committed transactions appended to a key after reading the same version.
    let mut read_then_wrote: BTreeMap<(Key, usize), Vec<usize>> = BTreeMap::new();
    for (t, txn) in history.iter().enumerate() {
        if !included[t] {
            continue;
        }
        let mut first_read: BTreeMap<Key, usize> = BTreeMap::new();
        let mut appended: BTreeSet<Key> = BTreeSet::new();
        for op in &txn.ops {
            match op {
                Op::Read { key, values } if !appended.contains(key) => {
                    first_read.entry(*key).or_insert(values.len());
                }
                Op::Read { .. } => {}
                Op::Append { key, .. } => {
                    appended.insert(*key);
                }
            }
        }
        for (key, len) in first_read {
            if appended.contains(&key) {
                read_then_wrote.entry((key, len)).or_default().push(t);
            }
        }
    }
    for ((key, len), ts) in &read_then_wrote {
        if ts.len() > 1 {
            let who: Vec<String> = ts.iter().map(|t| describe(history, *t)).collect();
            out.add(
                Kind::LostUpdate,
                format!(
                    "{} transactions read key {key} at the same version (length {len}) and appended to it: {}",
                    ts.len(),
                    who.join("; ")
                ),
            );
        }
    }

    // Cycles. G0: ww only. G1c: through a wr/session edge over ww/wr/session. G-single: one rw edge
    // closed by ww/wr/session edges.
    let mut seen_cycles: BTreeSet<Vec<usize>> = BTreeSet::new();
    for (a, m) in adj.iter().enumerate() {
        for (&b, &(e, _)) in m {
            let (kind, allowed): (Kind, &[Edge]) = match e {
                Edge::Ww => (Kind::G0, &[Edge::Ww]),
                Edge::Wr | Edge::Session => (Kind::G1c, &[Edge::Ww, Edge::Wr, Edge::Session]),
                Edge::Rw => (Kind::GSingle, &[Edge::Ww, Edge::Wr, Edge::Session]),
            };
            if out.full(kind) {
                continue;
            }
            if let Some(path) = bfs(&adj, b, a, allowed) {
                let mut cycle = vec![a];
                cycle.extend(path);
                let mut canon = cycle[..cycle.len() - 1].to_vec();
                canon.sort_unstable();
                if seen_cycles.insert(canon) {
                    out.add(kind, describe_cycle(history, &adj, &cycle));
                }
            }
        }
    }

    let mut anomalies = out.0;
    anomalies.sort_by_key(|a| a.kind);
    Checked {
        anomalies,
        graph_txns: included.iter().filter(|i| **i).count(),
        edges: counts,
    }
}

#[derive(Default)]
struct Found(Vec<Anomaly>);

impl Found {
    fn full(&self, kind: Kind) -> bool {
        self.0.iter().filter(|a| a.kind == kind).count() >= MAX_PER_KIND
    }
    fn add(&mut self, kind: Kind, detail: String) {
        if !self.full(kind) {
            self.0.push(Anomaly { kind, detail });
        }
    }
}

fn first_duplicate(list: &[Value]) -> Option<Value> {
    let mut seen = BTreeSet::new();
    list.iter().copied().find(|v| !seen.insert(*v))
}

fn last_append(txn: &Txn, key: Key) -> Option<Value> {
    txn.ops.iter().rev().find_map(|op| match op {
        Op::Append { key: k, value } if *k == key => Some(*value),
        _ => None,
    })
}

/// A path `from → … → to` using only `allowed` edges (nodes after `from`, ending with `to`).
fn bfs(
    adj: &[BTreeMap<usize, (Edge, Key)>],
    from: usize,
    to: usize,
    allowed: &[Edge],
) -> Option<Vec<usize>> {
    let mut prev: BTreeMap<usize, usize> = BTreeMap::new();
    let mut queue = VecDeque::from([from]);
    prev.insert(from, from);
    while let Some(x) = queue.pop_front() {
        if x == to {
            let mut path = vec![x];
            let mut cur = x;
            while cur != from {
                cur = prev[&cur];
                path.push(cur);
            }
            path.reverse();
            return Some(path);
        }
        for (&y, &(e, _)) in &adj[x] {
            if allowed.contains(&e) && !prev.contains_key(&y) {
                prev.insert(y, x);
                queue.push_back(y);
            }
        }
    }
    None
}

/// One transaction with its client, outcome and operations, e.g.
/// `T3 [client 1, gxid 57, Committed: r(4)=[1, 7] a(5, 12)]`.
pub fn describe(history: &[Txn], t: usize) -> String {
    let txn = &history[t];
    let ops: Vec<String> = txn
        .ops
        .iter()
        .map(|op| match op {
            Op::Append { key, value } => format!("a({key}, {value})"),
            Op::Read { key, values } => format!("r({key})={values:?}"),
        })
        .collect();
    format!(
        "T{t} [client {}, {}, {:?}: {}]",
        txn.client,
        txn.label,
        txn.outcome,
        ops.join(" ")
    )
}

fn describe_cycle(
    history: &[Txn],
    adj: &[BTreeMap<usize, (Edge, Key)>],
    cycle: &[usize],
) -> String {
    let mut s = String::from("cycle ");
    for w in cycle.windows(2) {
        let (e, k) = adj[w[0]][&w[1]];
        let on = if e == Edge::Session {
            String::new()
        } else {
            format!(" key {k}")
        };
        let _ = write!(s, "{} -{}{on}-> ", describe(history, w[0]), e.name());
    }
    if let Some(first) = cycle.first() {
        let _ = write!(s, "T{first}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(key: Key, value: Value) -> Op {
        Op::Append { key, value }
    }
    fn r(key: Key, values: &[Value]) -> Op {
        Op::Read {
            key,
            values: values.to_vec(),
        }
    }
    fn txn(client: usize, outcome: Outcome, ops: Vec<Op>) -> Txn {
        Txn {
            client,
            label: "test".into(),
            ops,
            outcome,
            snapshot_at: None,
            commit_at: None,
        }
    }
    fn ok(client: usize, ops: Vec<Op>) -> Txn {
        txn(client, Outcome::Committed, ops)
    }
    fn finals(lists: &[(Key, &[Value])]) -> BTreeMap<Key, Vec<Value>> {
        lists.iter().map(|(k, v)| (*k, v.to_vec())).collect()
    }
    fn kinds(c: &Checked) -> Vec<Kind> {
        c.kinds().into_iter().collect()
    }

    #[test]
    fn a_serial_history_passes() {
        let h = vec![
            ok(0, vec![r(1, &[]), a(1, 1), a(2, 2)]),
            ok(1, vec![r(1, &[1]), a(1, 3), r(1, &[1, 3])]),
            ok(0, vec![r(2, &[2]), r(1, &[1, 3]), a(2, 4)]),
            txn(1, Outcome::Aborted, vec![a(1, 5)]),
            txn(2, Outcome::Unknown, vec![a(2, 6)]),
            txn(2, Outcome::Unknown, vec![a(1, 7)]),
        ];
        let c = check(&h, &finals(&[(1, &[1, 3]), (2, &[2, 4, 6])]));
        assert!(c.ok(), "{}", c.report());
        // The unknown append that was seen is in the graph; the unseen one and the aborted one not.
        assert_eq!(c.graph_txns, 4);
        assert!(c.edges[0] >= 3, "ww edges {:?}", c.edges);
    }

    #[test]
    fn write_skew_is_allowed_under_snapshot_isolation() {
        // Two anti-dependencies (G2): serializability forbids it, SI does not.
        let h = vec![
            ok(0, vec![r(1, &[]), a(2, 1)]),
            ok(1, vec![r(2, &[]), a(1, 2)]),
        ];
        let c = check(&h, &finals(&[(1, &[2]), (2, &[1])]));
        assert!(c.ok(), "{}", c.report());
        assert_eq!(c.edges[2], 2);
    }

    #[test]
    fn g0_write_cycle() {
        let h = vec![ok(0, vec![a(1, 1), a(2, 2)]), ok(1, vec![a(1, 3), a(2, 4)])];
        let c = check(&h, &finals(&[(1, &[1, 3]), (2, &[4, 2])]));
        assert!(c.kinds().contains(&Kind::G0), "{}", c.report());
        assert!(c.report().contains("-ww key 2->"), "{}", c.report());
    }

    #[test]
    fn g1a_aborted_read() {
        let h = vec![
            txn(0, Outcome::Aborted, vec![a(1, 1)]),
            ok(1, vec![r(1, &[1])]),
        ];
        let c = check(&h, &finals(&[(1, &[])]));
        assert!(c.kinds().contains(&Kind::G1a), "{}", c.report());
        // The same value in a final list is also an aborted read.
        let c = check(&h[..1], &finals(&[(1, &[1])]));
        assert_eq!(kinds(&c), vec![Kind::G1a]);
    }

    #[test]
    fn g1b_intermediate_read() {
        let h = vec![ok(0, vec![a(1, 1), a(1, 2)]), ok(1, vec![r(1, &[1])])];
        let c = check(&h, &finals(&[(1, &[1, 2])]));
        assert!(c.kinds().contains(&Kind::G1b), "{}", c.report());
    }

    #[test]
    fn g1c_circular_information_flow() {
        let h = vec![
            ok(0, vec![a(1, 1), r(2, &[2])]),
            ok(1, vec![a(2, 2), r(1, &[1])]),
        ];
        let c = check(&h, &finals(&[(1, &[1]), (2, &[2])]));
        assert!(c.kinds().contains(&Kind::G1c), "{}", c.report());
        assert!(!c.kinds().contains(&Kind::G0));
    }

    #[test]
    fn g_single_read_skew() {
        // T1 read key 1 before T0's append but key 2 after it: a fractured read.
        let h = vec![
            ok(0, vec![a(1, 1), a(2, 2)]),
            ok(1, vec![r(1, &[]), r(2, &[2])]),
        ];
        let c = check(&h, &finals(&[(1, &[1]), (2, &[2])]));
        assert_eq!(kinds(&c), vec![Kind::GSingle], "{}", c.report());
        let rep = c.report();
        assert!(
            rep.contains("-rw key 1->") && rep.contains("-wr key 2->"),
            "{rep}"
        );
        assert!(
            rep.contains("r(1)=[] r(2)=[2]"),
            "the cycle shows the ops: {rep}"
        );
    }

    #[test]
    fn lost_update() {
        let h = vec![
            ok(0, vec![r(1, &[]), a(1, 1)]),
            ok(1, vec![r(1, &[]), a(1, 2)]),
        ];
        let c = check(&h, &finals(&[(1, &[1, 2])]));
        assert!(c.kinds().contains(&Kind::LostUpdate), "{}", c.report());
        assert!(c.kinds().contains(&Kind::GSingle), "{}", c.report());
    }

    #[test]
    fn session_order_makes_a_stale_read_a_g_single() {
        // Client 0 committed an append, then its next transaction did not see it.
        let h = vec![ok(0, vec![a(1, 1)]), ok(0, vec![r(1, &[])])];
        let c = check(&h, &finals(&[(1, &[1])]));
        assert_eq!(kinds(&c), vec![Kind::GSingle], "{}", c.report());
        assert!(c.report().contains("-session->"), "{}", c.report());
        // Not if the first commit was only acknowledged late (resolver still finishing it).
        let mut h = h;
        h[0].outcome = Outcome::CommittedLate;
        assert!(check(&h, &finals(&[(1, &[1])])).ok());
    }

    #[test]
    fn duplicates_incompatible_orders_and_garbage() {
        let h = vec![ok(0, vec![a(1, 1)]), ok(1, vec![a(1, 2)])];
        let c = check(&h, &finals(&[(1, &[1, 2, 1])]));
        assert!(
            c.kinds().contains(&Kind::DuplicateElements),
            "{}",
            c.report()
        );

        let h = vec![
            ok(0, vec![a(1, 1)]),
            ok(1, vec![a(1, 2)]),
            ok(2, vec![r(1, &[2])]),
        ];
        let c = check(&h, &finals(&[(1, &[1, 2])]));
        assert_eq!(kinds(&c), vec![Kind::IncompatibleOrder], "{}", c.report());

        let h = vec![ok(0, vec![r(1, &[99])])];
        let c = check(&h, &finals(&[(1, &[])]));
        assert!(c.kinds().contains(&Kind::GarbageRead), "{}", c.report());
    }

    #[test]
    fn internal_inconsistency() {
        // Its own append not visible to its own later read.
        let h = vec![ok(0, vec![a(1, 5), r(1, &[])])];
        let c = check(&h, &finals(&[(1, &[5])]));
        assert!(c.kinds().contains(&Kind::Internal), "{}", c.report());
        // A non-repeatable read: the second read of a key sees another commit.
        let h = vec![ok(0, vec![a(1, 1)]), ok(1, vec![r(1, &[]), r(1, &[1])])];
        let c = check(&h, &finals(&[(1, &[1])]));
        assert!(c.kinds().contains(&Kind::Internal), "{}", c.report());
    }

    #[test]
    fn a_read_of_a_commit_that_began_after_the_snapshot() {
        // T1's snapshot was taken at 10, T0 began to commit at 20, yet T1 saw T0's append.
        let mut h = vec![ok(0, vec![a(1, 1)]), ok(1, vec![r(1, &[1])])];
        h[0].commit_at = Some(20);
        h[1].snapshot_at = Some(10);
        let c = check(&h, &finals(&[(1, &[1])]));
        assert_eq!(kinds(&c), vec![Kind::FutureRead], "{}", c.report());
        // The same with the snapshot after the commit began: fine.
        h[1].snapshot_at = Some(30);
        assert!(check(&h, &finals(&[(1, &[1])])).ok());
    }

    #[test]
    fn lost_acknowledged_append() {
        let h = vec![
            ok(0, vec![a(1, 1)]),
            txn(0, Outcome::CommittedLate, vec![a(1, 2)]),
            txn(1, Outcome::Unknown, vec![a(1, 3)]),
        ];
        let c = check(&h, &finals(&[(1, &[1])]));
        assert_eq!(kinds(&c), vec![Kind::LostAppend], "{}", c.report());
        assert_eq!(
            c.anomalies.len(),
            1,
            "the unknown append may be lost: {}",
            c.report()
        );
    }
}

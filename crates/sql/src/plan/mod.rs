//! The planner's output and the streaming executor that runs it.
//!
//! - [`PhysicalPlan`]: a plan as plain data (serde): relation and index ids as numbers, column
//!   types as [`DataType`], expressions as [`Expr`] trees, so a coordinator can cut a plan into
//!   fragments and ship them to datanodes.
//! - [`planner`]: turns a bound SELECT (base relations, join tree, conjuncts, grouping, ordering,
//!   limit) into a [`PhysicalPlan`]: predicate pushdown, access-path choice (sequential or index
//!   scan), join method (nested loop with index lookups, hash join, merge join, plain nested loop),
//!   hash or sort aggregation, top-N; PostgreSQL's `enable_*` planner settings are honoured.
//! - [`executor`]: pull-based operators producing batches of at most [`BATCH`] rows; scans stream
//!   from storage cursors through [`TableAccess`]; sorts, hashes and aggregates track their
//!   memory against `pgxc.operator_memory_limit` (53200 beyond it); every operator checks the
//!   statement's cancel flag between batches (57014).
//! - [`explain`]: PostgreSQL's EXPLAIN text for a plan.
//!
//! The SELECT front end that builds the planner's input from sqlparser's AST lives in
//! `plan/bind.rs`, compiled as a child of `exec` because it reuses the interpreter's binder.

pub mod executor;
pub mod explain;
pub mod planner;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use pgxc_common::PgError;
use pgxc_storage::mvcc::{KeyRange, Row};
use serde::{Deserialize, Serialize};

pub use crate::exec::agg::{AggCall, AggKind};
use crate::expr::Expr;
use crate::types::DataType;

/// Rows per batch between operators (at most).
pub const BATCH: usize = 1024;

/// Planner estimates of one node, PostgreSQL-style: cost units (a sequential page read = 1.0),
/// startup and total cost, output rows and average row width in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    /// Cost before the first row.
    pub startup: f64,
    /// Cost of all rows.
    pub total: f64,
    /// Rows produced.
    pub rows: f64,
    /// Average row width in bytes.
    pub width: u32,
}

/// One ORDER BY / merge key over a node's input row: column, descending, NULLs first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SortSpec {
    /// Column of the input row.
    pub col: usize,
    /// `DESC`.
    pub desc: bool,
    /// `NULLS FIRST` (PostgreSQL's default for DESC).
    pub nulls_first: bool,
}

/// Join semantics. Output rows are `outer ‖ inner` (NULLs for the missing side of an outer
/// join); Semi and Anti output only the outer row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum JoinType {
    /// Matching pairs.
    Inner,
    /// Plus outer rows without a match.
    Left,
    /// Plus inner rows without a match.
    Right,
    /// Both.
    Full,
    /// Outer rows with at least one match.
    Semi,
    /// Outer rows without a match.
    Anti,
}

/// How an aggregate groups its input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AggStrategy {
    /// No GROUP BY: exactly one output row.
    Plain,
    /// A hash table of groups (output in first-seen order).
    Hashed,
    /// Input sorted on the group keys: one group at a time, bounded memory.
    Sorted,
}

/// Which step of a possibly split aggregate a node performs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AggPhase {
    /// Input rows to final values.
    Single,
    /// Input rows to transition states: group keys ‖ one bytea state per aggregate.
    Partial,
    /// Partial rows (group keys ‖ states) to final values, combining states of equal groups.
    Final,
}

/// A column of a base relation as a scan outputs it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScanColumn {
    /// Column name.
    pub name: String,
    /// Column type.
    pub ty: DataType,
}

/// Index bounds built from predicates. Value expressions are evaluated over the node's
/// parameter row (the outer row of a parameterised nested loop; empty otherwise), so constants
/// and outer columns both work.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct IndexQual {
    /// Values of the leading index columns (`col = value`).
    pub eq: Vec<Expr>,
    /// Alternative values for the next column (`col IN (...)`); each is scanned in key order.
    pub in_list: Option<Vec<Expr>>,
    /// Lower bound on the next column: value, inclusive.
    pub lower: Option<(Expr, bool)>,
    /// Upper bound on the next column: value, inclusive.
    pub upper: Option<(Expr, bool)>,
}

/// A physical plan: a tree of operators, plain data. Every node's output row is a vector of
/// values; expressions inside a node refer to its input row's columns by position (joins:
/// `outer ‖ inner`).
// Scan nodes carry their columns and bounds inline: plans are small trees built once per
// statement, so boxing the large variants would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum PhysicalPlan {
    /// Sequential scan of a table (heap order) with a pushed-down filter over the table row and
    /// an optional projection (column positions) applied after it.
    SeqScan {
        /// The table's storage relation id.
        rel: u64,
        /// Table name (EXPLAIN).
        table: String,
        /// Range-table alias (EXPLAIN).
        alias: String,
        /// The table's columns.
        columns: Vec<ScanColumn>,
        /// Filter over the table row.
        filter: Option<Expr>,
        /// Output only these columns (all when `None`).
        projection: Option<Vec<usize>>,
        /// Estimates.
        est: Estimate,
    },
    /// Index scan: rows of the table whose index key lies within the bounds of `qual`, in key
    /// order (backward: descending). `index_cond` are the predicates the bounds came from (they
    /// are rechecked with `filter`, so the bounds only narrow the scan).
    IndexScan {
        /// The table's storage relation id.
        rel: u64,
        /// The index's storage relation id.
        index: u64,
        /// Index name (EXPLAIN).
        index_name: String,
        /// Table name (EXPLAIN).
        table: String,
        /// Range-table alias (EXPLAIN).
        alias: String,
        /// The table's columns.
        columns: Vec<ScanColumn>,
        /// Table columns of the index key, in key order.
        key_columns: Vec<usize>,
        /// Key bounds.
        qual: IndexQual,
        /// The predicates behind `qual`, over `param ‖ table row` (param columns first).
        index_cond: Vec<Expr>,
        /// Further filter over the table row (index conditions included for the recheck).
        filter: Option<Expr>,
        /// Width of the parameter row `qual` reads (0 unless inside a parameterised nested loop).
        params: usize,
        /// Descending key order.
        backward: bool,
        /// Estimates.
        est: Estimate,
    },
    /// Rows of the input satisfying the predicate.
    Filter {
        /// Input.
        input: Box<PhysicalPlan>,
        /// Predicate over the input row.
        predicate: Expr,
        /// Estimates.
        est: Estimate,
    },
    /// Computed columns.
    Project {
        /// Input.
        input: Box<PhysicalPlan>,
        /// Output expressions over the input row.
        exprs: Vec<Expr>,
        /// Output names (EXPLAIN VERBOSE).
        names: Vec<String>,
        /// Estimates.
        est: Estimate,
    },
    /// Nested loop. With `param`, the inner side is re-opened for each outer row with that row
    /// as its parameter row (an index lookup per outer row); otherwise the inner rows are read
    /// once and kept.
    NestedLoop {
        /// Outer input.
        outer: Box<PhysicalPlan>,
        /// Inner input.
        inner: Box<PhysicalPlan>,
        /// Join semantics (a parameterised loop supports Inner, Left, Semi, Anti).
        join: JoinType,
        /// Join condition over `outer ‖ inner`.
        cond: Option<Expr>,
        /// Inner side parameterised by the outer row.
        param: bool,
        /// Estimates.
        est: Estimate,
    },
    /// Hash join: the inner side is hashed on `inner_keys`, the outer side probes with
    /// `outer_keys`; `residual` is checked on candidate pairs (`outer ‖ inner`). NULL keys never
    /// match.
    HashJoin {
        /// Outer (probe) input.
        outer: Box<PhysicalPlan>,
        /// Inner (build) input.
        inner: Box<PhysicalPlan>,
        /// Join semantics.
        join: JoinType,
        /// Key expressions over the outer row.
        outer_keys: Vec<Expr>,
        /// Key expressions over the inner row.
        inner_keys: Vec<Expr>,
        /// Further condition over `outer ‖ inner`.
        residual: Option<Expr>,
        /// Estimates.
        est: Estimate,
    },
    /// Merge join of inputs sorted ascending (NULLs last) on their keys.
    MergeJoin {
        /// Outer input, sorted on `outer_keys`.
        outer: Box<PhysicalPlan>,
        /// Inner input, sorted on `inner_keys`.
        inner: Box<PhysicalPlan>,
        /// Join semantics (Inner, Left, Right, Full).
        join: JoinType,
        /// Key columns of the outer row.
        outer_keys: Vec<usize>,
        /// Key columns of the inner row.
        inner_keys: Vec<usize>,
        /// Further condition over `outer ‖ inner`.
        residual: Option<Expr>,
        /// Estimates.
        est: Estimate,
    },
    /// Aggregation: output rows are `group values ‖ aggregate results` (Partial: states as
    /// bytea; Final: input is `group values ‖ states`).
    Aggregate {
        /// Input.
        input: Box<PhysicalPlan>,
        /// Grouping strategy.
        strategy: AggStrategy,
        /// Single, Partial or Final step.
        phase: AggPhase,
        /// Group key expressions over the input row.
        group: Vec<Expr>,
        /// Aggregate calls (arguments over the input row; Final reads states positionally).
        aggs: Vec<AggCall>,
        /// Estimates.
        est: Estimate,
    },
    /// Stable sort.
    Sort {
        /// Input.
        input: Box<PhysicalPlan>,
        /// Keys, major first.
        keys: Vec<SortSpec>,
        /// Estimates.
        est: Estimate,
    },
    /// The first `offset + limit` rows of a stable sort, kept in bounded memory, minus `offset`.
    TopN {
        /// Input.
        input: Box<PhysicalPlan>,
        /// Keys, major first.
        keys: Vec<SortSpec>,
        /// Rows to return.
        limit: u64,
        /// Rows to skip first.
        offset: u64,
        /// Estimates.
        est: Estimate,
    },
    /// LIMIT / OFFSET: stops pulling its input once done.
    Limit {
        /// Input.
        input: Box<PhysicalPlan>,
        /// Rows to return (all when `None`).
        limit: Option<u64>,
        /// Rows to skip first.
        offset: u64,
        /// Estimates.
        est: Estimate,
    },
    /// Drop rows whose first `width` columns equal an earlier row's (first occurrence kept,
    /// order preserved).
    Distinct {
        /// Input.
        input: Box<PhysicalPlan>,
        /// Columns compared.
        width: usize,
        /// Estimates.
        est: Estimate,
    },
    /// Literal rows.
    Values {
        /// The rows.
        rows: Vec<Vec<crate::types::Value>>,
        /// Row width.
        width: usize,
        /// Estimates.
        est: Estimate,
    },
    /// The rows of a session rowset (`exec/rowset.rs`), shared with the session, not copied:
    /// PostgreSQL's `Named Tuplestore Scan` of an ephemeral named relation.
    RowsetScan {
        /// The rowset's name.
        name: String,
        /// Range-table alias (EXPLAIN).
        alias: String,
        /// The rowset's columns.
        columns: Vec<ScanColumn>,
        /// The rows (serialized as a plain list).
        #[serde(with = "shared_rows")]
        rows: Arc<Vec<Vec<crate::types::Value>>>,
        /// Estimates.
        est: Estimate,
    },
    /// The rows of each input in turn (UNION ALL; partitions of a partial aggregate).
    Append {
        /// Inputs, all of the same width.
        inputs: Vec<PhysicalPlan>,
        /// Estimates.
        est: Estimate,
    },
}

impl PhysicalPlan {
    /// The node's estimates.
    pub fn est(&self) -> &Estimate {
        match self {
            PhysicalPlan::SeqScan { est, .. }
            | PhysicalPlan::IndexScan { est, .. }
            | PhysicalPlan::Filter { est, .. }
            | PhysicalPlan::Project { est, .. }
            | PhysicalPlan::NestedLoop { est, .. }
            | PhysicalPlan::HashJoin { est, .. }
            | PhysicalPlan::MergeJoin { est, .. }
            | PhysicalPlan::Aggregate { est, .. }
            | PhysicalPlan::Sort { est, .. }
            | PhysicalPlan::TopN { est, .. }
            | PhysicalPlan::Limit { est, .. }
            | PhysicalPlan::Distinct { est, .. }
            | PhysicalPlan::Values { est, .. }
            | PhysicalPlan::RowsetScan { est, .. }
            | PhysicalPlan::Append { est, .. } => est,
        }
    }

    /// The node's inputs, outer first.
    pub fn children(&self) -> Vec<&PhysicalPlan> {
        match self {
            PhysicalPlan::SeqScan { .. }
            | PhysicalPlan::IndexScan { .. }
            | PhysicalPlan::Values { .. }
            | PhysicalPlan::RowsetScan { .. } => Vec::new(),
            PhysicalPlan::Filter { input, .. }
            | PhysicalPlan::Project { input, .. }
            | PhysicalPlan::Aggregate { input, .. }
            | PhysicalPlan::Sort { input, .. }
            | PhysicalPlan::TopN { input, .. }
            | PhysicalPlan::Limit { input, .. }
            | PhysicalPlan::Distinct { input, .. } => vec![input],
            PhysicalPlan::NestedLoop { outer, inner, .. }
            | PhysicalPlan::HashJoin { outer, inner, .. }
            | PhysicalPlan::MergeJoin { outer, inner, .. } => vec![outer, inner],
            PhysicalPlan::Append { inputs, .. } => inputs.iter().collect(),
        }
    }

    /// Split a Single aggregate into a Partial aggregate over the same input and a Final
    /// aggregate to put above whatever gathers the partial rows ([`FinalAgg::over`]). `None`
    /// when the node is not a Single aggregate or an aggregate is DISTINCT or ordered (those
    /// stay Single), as PostgreSQL's partial aggregation does.
    pub fn split_aggregate(&self) -> Option<(PhysicalPlan, FinalAgg)> {
        let PhysicalPlan::Aggregate {
            input,
            strategy,
            phase: AggPhase::Single,
            group,
            aggs,
            est,
        } = self
        else {
            return None;
        };
        if !aggs.iter().all(AggCall::splittable) {
            return None;
        }
        let partial = PhysicalPlan::Aggregate {
            input: input.clone(),
            strategy: *strategy,
            phase: AggPhase::Partial,
            group: group.clone(),
            aggs: aggs.clone(),
            est: *est,
        };
        let final_group = group
            .iter()
            .enumerate()
            .map(|(i, g)| Expr::Column(i, g.data_type()))
            .collect();
        Some((
            partial,
            FinalAgg {
                strategy: if *strategy == AggStrategy::Sorted {
                    AggStrategy::Hashed
                } else {
                    *strategy
                },
                group: final_group,
                aggs: aggs.clone(),
                est: *est,
            },
        ))
    }
}

/// Serde for [`PhysicalPlan::RowsetScan`]'s shared rows: a plain list of rows.
mod shared_rows {
    use std::sync::Arc;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use crate::types::Value;

    pub fn serialize<S: Serializer>(rows: &Arc<Vec<Vec<Value>>>, s: S) -> Result<S::Ok, S::Error> {
        rows.as_slice().serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Arc<Vec<Vec<Value>>>, D::Error> {
        Vec::<Vec<Value>>::deserialize(d).map(Arc::new)
    }
}

/// The Final half of a split aggregate, waiting for its input.
#[derive(Clone, Debug, PartialEq)]
pub struct FinalAgg {
    strategy: AggStrategy,
    group: Vec<Expr>,
    aggs: Vec<AggCall>,
    est: Estimate,
}

impl FinalAgg {
    /// The Final aggregate over `input`, which yields Partial rows (group keys ‖ states).
    pub fn over(self, input: PhysicalPlan) -> PhysicalPlan {
        PhysicalPlan::Aggregate {
            input: Box::new(input),
            strategy: self.strategy,
            phase: AggPhase::Final,
            group: self.group,
            aggs: self.aggs,
            est: self.est,
        }
    }
}

/// Planner and executor settings, from the session's GUCs.
#[derive(Clone, Debug)]
pub struct PlanOptions {
    /// `pgxc.use_planner`: route supported SELECTs through the planner (off: interpreter only).
    pub use_planner: bool,
    /// `enable_seqscan`.
    pub enable_seqscan: bool,
    /// `enable_indexscan`.
    pub enable_indexscan: bool,
    /// `enable_hashjoin`.
    pub enable_hashjoin: bool,
    /// `enable_mergejoin`.
    pub enable_mergejoin: bool,
    /// `enable_nestloop`.
    pub enable_nestloop: bool,
    /// `enable_hashagg`.
    pub enable_hashagg: bool,
    /// `enable_sort`.
    pub enable_sort: bool,
    /// `pgxc.operator_memory_limit` in bytes: what one sort, hash table, aggregate or top-N may
    /// hold before failing with 53200.
    pub memory_limit: usize,
    /// The statement's cancel flag (checked between batches; 57014 once set).
    pub cancel: Option<Arc<AtomicBool>>,
}

impl Default for PlanOptions {
    fn default() -> PlanOptions {
        PlanOptions {
            use_planner: true,
            enable_seqscan: true,
            enable_indexscan: true,
            enable_hashjoin: true,
            enable_mergejoin: true,
            enable_nestloop: true,
            enable_hashagg: true,
            enable_sort: true,
            memory_limit: 1 << 30,
            cancel: None,
        }
    }
}

/// Whether a GUC value means on (PostgreSQL's boolean spellings).
fn guc_bool(v: &str) -> bool {
    !matches!(
        v.trim().trim_matches('\'').to_ascii_lowercase().as_str(),
        "off" | "false" | "0" | "no" | "f" | "n"
    )
}

/// A memory GUC in bytes: a number with an optional unit (`B`, `kB`, `MB`, `GB`, `TB`); a bare
/// number is kilobytes, as for PostgreSQL's `work_mem`. `None` if it does not parse.
pub fn parse_memory(v: &str) -> Option<usize> {
    let v = v.trim().trim_matches('\'').trim();
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let n: usize = num.parse().ok()?;
    let mult: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "kb" => 1 << 10,
        "b" => 1,
        "mb" => 1 << 20,
        "gb" => 1 << 30,
        "tb" => 1 << 40,
        _ => return None,
    };
    n.checked_mul(mult)
}

impl PlanOptions {
    /// The settings from a GUC lookup (`name` → current value, defaults included).
    pub fn from_gucs(guc: impl Fn(&str) -> Option<String>) -> PlanOptions {
        let d = PlanOptions::default();
        let b = |name: &str, dflt: bool| guc(name).map_or(dflt, |v| guc_bool(&v));
        PlanOptions {
            use_planner: b("pgxc.use_planner", d.use_planner),
            enable_seqscan: b("enable_seqscan", true),
            enable_indexscan: b("enable_indexscan", true),
            enable_hashjoin: b("enable_hashjoin", true),
            enable_mergejoin: b("enable_mergejoin", true),
            enable_nestloop: b("enable_nestloop", true),
            enable_hashagg: b("enable_hashagg", true),
            enable_sort: b("enable_sort", true),
            memory_limit: guc("pgxc.operator_memory_limit")
                .and_then(|v| parse_memory(&v))
                .unwrap_or(d.memory_limit),
            cancel: None,
        }
    }
}

/// An open storage cursor of a [`TableAccess`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CursorId(pub usize);

/// How the executor reads relations for the current transaction: the seam between plans and
/// storage. The standalone engine implements it over `pgxc_storage::mvcc::Txn`; a coordinator
/// can implement it over remote datanodes.
pub trait TableAccess {
    /// Open a sequential scan of table `rel` (heap order).
    fn open_scan(&mut self, rel: u64) -> Result<CursorId, PgError>;
    /// Open an index scan of index `index` over `range` (key order; descending if `reverse`).
    fn open_index_scan(
        &mut self,
        index: u64,
        range: KeyRange,
        reverse: bool,
    ) -> Result<CursorId, PgError>;
    /// The next up to `max` visible rows of a cursor; empty once it is exhausted.
    fn next_rows(&mut self, cursor: CursorId, max: usize) -> Result<Vec<Row>, PgError>;
    /// Forget a cursor.
    fn close(&mut self, cursor: CursorId);
    /// The version of table `rel` at `tid` if the transaction sees it (PostgreSQL's heap fetch
    /// by ctid).
    fn fetch(&mut self, rel: u64, tid: pgxc_storage::mvcc::Tid) -> Result<Option<Row>, PgError>;
    /// Estimated number of tuples of table `rel` (planner statistics), if known.
    fn estimated_tuples(&self, rel: u64) -> Option<f64>;
}

#[cfg(test)]
mod tests;

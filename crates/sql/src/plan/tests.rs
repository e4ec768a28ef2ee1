//! Unit tests of plans and the executor without the engine: literal inputs and an in-memory
//! [`TableAccess`].

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use pgxc_common::{PgError, SqlState};
use pgxc_storage::mvcc::{KeyRange, Row, Tid};

use super::executor::{run, ExecCtx};
use super::*;
use crate::catalog::encode_row;
use crate::expr::{BinOp, EvalContext};
use crate::types::{Numeric, Value};

/// Tables in memory; counts the rows handed out.
#[derive(Default)]
struct Mem {
    tables: HashMap<u64, Vec<Vec<Value>>>,
    cursors: Vec<Option<(u64, usize)>>,
    rows_read: usize,
}

impl TableAccess for Mem {
    fn open_scan(&mut self, rel: u64) -> Result<CursorId, PgError> {
        self.cursors.push(Some((rel, 0)));
        Ok(CursorId(self.cursors.len() - 1))
    }

    fn open_index_scan(&mut self, _: u64, _: KeyRange, _: bool) -> Result<CursorId, PgError> {
        Err(PgError::new(
            SqlState::FeatureNotSupported,
            "no indexes here",
        ))
    }

    fn next_rows(&mut self, cursor: CursorId, max: usize) -> Result<Vec<Row>, PgError> {
        let Some(Some((rel, pos))) = self.cursors.get_mut(cursor.0) else {
            return Ok(Vec::new());
        };
        let rows = self.tables.get(rel).map(Vec::as_slice).unwrap_or(&[]);
        let end = (*pos + max).min(rows.len());
        let mut out = Vec::new();
        for (i, r) in rows[*pos..end].iter().enumerate() {
            out.push(Row {
                tid: Tid((*pos + i) as u64),
                data: encode_row(r)?,
            });
        }
        self.rows_read += out.len();
        *pos = end;
        Ok(out)
    }

    fn close(&mut self, cursor: CursorId) {
        if let Some(c) = self.cursors.get_mut(cursor.0) {
            *c = None;
        }
    }

    fn fetch(&mut self, rel: u64, tid: Tid) -> Result<Option<Row>, PgError> {
        let Some(r) = self.tables.get(&rel).and_then(|t| t.get(tid.0 as usize)) else {
            return Ok(None);
        };
        Ok(Some(Row {
            tid,
            data: encode_row(r)?,
        }))
    }

    fn estimated_tuples(&self, rel: u64) -> Option<f64> {
        self.tables.get(&rel).map(|t| t.len() as f64)
    }
}

fn values(rows: Vec<Vec<Value>>, width: usize) -> PhysicalPlan {
    PhysicalPlan::Values {
        rows,
        width,
        est: Estimate::default(),
    }
}

fn col(i: usize, t: DataType) -> Expr {
    Expr::Column(i, t)
}

fn exec(
    plan: &PhysicalPlan,
    mem: &mut Mem,
    opts: &PlanOptions,
) -> Result<Vec<Vec<Value>>, PgError> {
    let eval = EvalContext::default();
    let mut cx = ExecCtx {
        access: mem,
        eval: &eval,
        opts,
    };
    run(plan, &mut cx)
}

fn seq(rel: u64, cols: &[(&str, DataType)]) -> PhysicalPlan {
    PhysicalPlan::SeqScan {
        rel,
        table: format!("t{rel}"),
        alias: format!("t{rel}"),
        columns: cols
            .iter()
            .map(|(n, t)| ScanColumn {
                name: n.to_string(),
                ty: t.clone(),
            })
            .collect(),
        filter: None,
        projection: None,
        est: Estimate::default(),
    }
}

fn call(kind: AggKind, args: Vec<Expr>, ty: DataType) -> AggCall {
    AggCall {
        kind,
        args,
        distinct: false,
        filter: None,
        ty,
        order: Vec::new(),
    }
}

#[test]
fn plans_survive_postcard() {
    let scan = seq(7, &[("a", DataType::Int4), ("b", DataType::Text)]);
    let plan = PhysicalPlan::TopN {
        input: Box::new(PhysicalPlan::Aggregate {
            input: Box::new(PhysicalPlan::HashJoin {
                outer: Box::new(scan.clone()),
                inner: Box::new(PhysicalPlan::IndexScan {
                    rel: 8,
                    index: 9,
                    index_name: "t8_pkey".into(),
                    table: "t8".into(),
                    alias: "x".into(),
                    columns: vec![ScanColumn {
                        name: "a".into(),
                        ty: DataType::Int4,
                    }],
                    key_columns: vec![0],
                    qual: IndexQual {
                        eq: vec![Expr::Const(Value::Int4(3), DataType::Int4)],
                        in_list: None,
                        lower: None,
                        upper: Some((Expr::Const(Value::Int4(9), DataType::Int4), false)),
                    },
                    index_cond: Vec::new(),
                    filter: None,
                    params: 0,
                    backward: true,
                    est: Estimate::default(),
                }),
                join: JoinType::Left,
                outer_keys: vec![col(0, DataType::Int4)],
                inner_keys: vec![col(0, DataType::Int4)],
                residual: Some(Expr::Binary(
                    BinOp::Lt,
                    Box::new(Expr::Cast(
                        Box::new(col(0, DataType::Int4)),
                        DataType::Numeric(None),
                        crate::expr::CastKind::Implicit,
                    )),
                    Box::new(Expr::Const(num("-12.50"), DataType::Numeric(Some((5, 2))))),
                    DataType::Bool,
                )),
                est: Estimate {
                    startup: 1.5,
                    total: 20.25,
                    rows: 100.0,
                    width: 12,
                },
            }),
            strategy: AggStrategy::Hashed,
            phase: AggPhase::Partial,
            group: vec![col(1, DataType::Text)],
            aggs: vec![
                call(AggKind::Sum, vec![col(0, DataType::Int4)], DataType::Int8),
                call(
                    AggKind::Avg,
                    vec![col(0, DataType::Int4)],
                    DataType::Numeric(None),
                ),
            ],
            est: Estimate::default(),
        }),
        keys: vec![SortSpec {
            col: 1,
            desc: true,
            nulls_first: true,
        }],
        limit: 10,
        offset: 2,
        est: Estimate::default(),
    };
    let bytes = postcard::to_allocvec(&plan).expect("encode");
    let back: PhysicalPlan = postcard::from_bytes(&bytes).expect("decode");
    assert_eq!(back, plan);
}

fn num(s: &str) -> Value {
    Value::Numeric(Numeric::parse(s).expect("numeric"))
}

/// Rows (g int4, x int4, f float8, n numeric, b bool, s text) with NULLs.
fn agg_rows() -> Vec<Vec<Value>> {
    let mut rows = Vec::new();
    for i in 0..30i32 {
        let null = i % 7 == 3;
        rows.push(vec![
            Value::Int4(i % 3),
            if null {
                Value::Null
            } else {
                Value::Int4(i * 5 - 40)
            },
            if null {
                Value::Null
            } else {
                Value::Float8(f64::from(i) / 4.0)
            },
            if null {
                Value::Null
            } else {
                num(&format!("{}.25", i - 10))
            },
            if null {
                Value::Null
            } else {
                Value::Bool(i % 4 != 0)
            },
            if null {
                Value::Null
            } else {
                Value::Text(format!("v{i}"))
            },
        ]);
    }
    rows
}

fn all_aggs() -> Vec<AggCall> {
    let t = |i: usize, ty: DataType| col(i, ty);
    let mut string_agg = call(
        AggKind::StringAgg,
        vec![
            t(5, DataType::Text),
            Expr::Const(Value::Text(",".into()), DataType::Text),
        ],
        DataType::Text,
    );
    string_agg.filter = None;
    vec![
        call(AggKind::CountStar, Vec::new(), DataType::Int8),
        call(AggKind::Count, vec![t(1, DataType::Int4)], DataType::Int8),
        call(AggKind::Sum, vec![t(1, DataType::Int4)], DataType::Int8),
        call(AggKind::Sum, vec![t(2, DataType::Float8)], DataType::Float8),
        call(
            AggKind::Sum,
            vec![t(3, DataType::Numeric(None))],
            DataType::Numeric(None),
        ),
        call(
            AggKind::Avg,
            vec![t(1, DataType::Int4)],
            DataType::Numeric(None),
        ),
        call(AggKind::Avg, vec![t(2, DataType::Float8)], DataType::Float8),
        call(AggKind::Min, vec![t(5, DataType::Text)], DataType::Text),
        call(AggKind::Max, vec![t(1, DataType::Int4)], DataType::Int4),
        call(AggKind::BoolAnd, vec![t(4, DataType::Bool)], DataType::Bool),
        call(AggKind::BoolOr, vec![t(4, DataType::Bool)], DataType::Bool),
        string_agg,
        call(
            AggKind::ArrayAgg,
            vec![t(1, DataType::Int4)],
            DataType::Array(Box::new(DataType::Int4)),
        ),
    ]
}

#[test]
fn partial_and_final_aggregates_equal_single() {
    let rows = agg_rows();
    let width = 6;
    for grouped in [false, true] {
        let group = if grouped {
            vec![col(0, DataType::Int4)]
        } else {
            Vec::new()
        };
        let single = PhysicalPlan::Aggregate {
            input: Box::new(values(rows.clone(), width)),
            strategy: if grouped {
                AggStrategy::Hashed
            } else {
                AggStrategy::Plain
            },
            phase: AggPhase::Single,
            group: group.clone(),
            aggs: all_aggs(),
            est: Estimate::default(),
        };
        let mut mem = Mem::default();
        let opts = PlanOptions::default();
        let want = exec(&single, &mut mem, &opts).expect("single");
        // Three disjoint partitions in order (one of them empty) and a trailing empty one.
        let parts = [
            rows[..11].to_vec(),
            Vec::new(),
            rows[11..].to_vec(),
            Vec::new(),
        ];
        let mut partials = Vec::new();
        let mut fin = None;
        for p in parts {
            let node = PhysicalPlan::Aggregate {
                input: Box::new(values(p, width)),
                strategy: if grouped {
                    AggStrategy::Hashed
                } else {
                    AggStrategy::Plain
                },
                phase: AggPhase::Single,
                group: group.clone(),
                aggs: all_aggs(),
                est: Estimate::default(),
            };
            let (partial, f) = node.split_aggregate().expect("splittable");
            // Partial rows travel as data: run each and feed them as literal rows.
            let prow = exec(&partial, &mut mem, &opts).expect("partial");
            partials.extend(prow);
            fin = Some(f);
        }
        let fin = fin
            .expect("final")
            .over(values(partials, group.len() + all_aggs().len()));
        let got = exec(&fin, &mut mem, &opts).expect("final");
        let sort = |mut v: Vec<Vec<Value>>| {
            v.sort_by_key(|r| format!("{r:?}"));
            v
        };
        assert_eq!(sort(got), sort(want), "grouped={grouped}");
    }
}

#[test]
fn distinct_and_ordered_aggregates_are_not_split() {
    let mut a = call(AggKind::Count, vec![col(0, DataType::Int4)], DataType::Int8);
    a.distinct = true;
    let node = PhysicalPlan::Aggregate {
        input: Box::new(values(Vec::new(), 1)),
        strategy: AggStrategy::Plain,
        phase: AggPhase::Single,
        group: Vec::new(),
        aggs: vec![a],
        est: Estimate::default(),
    };
    assert!(node.split_aggregate().is_none());
    let mut b = call(
        AggKind::StringAgg,
        vec![col(0, DataType::Text)],
        DataType::Text,
    );
    b.order = vec![(col(0, DataType::Text), false, false)];
    assert!(!b.splittable());
}

#[test]
fn a_limit_reads_only_the_first_batches() {
    let mut mem = Mem::default();
    mem.tables
        .insert(1, (0..50_000).map(|i| vec![Value::Int4(i)]).collect());
    let plan = PhysicalPlan::Limit {
        input: Box::new(seq(1, &[("a", DataType::Int4)])),
        limit: Some(10),
        offset: 0,
        est: Estimate::default(),
    };
    let rows = exec(&plan, &mut mem, &PlanOptions::default()).expect("run");
    assert_eq!(rows.len(), 10);
    assert_eq!(rows[9], vec![Value::Int4(9)]);
    assert!(mem.rows_read <= BATCH, "read {} rows", mem.rows_read);
    // count(*) streams: the whole table is read, batch by batch.
    let count = PhysicalPlan::Aggregate {
        input: Box::new(seq(1, &[("a", DataType::Int4)])),
        strategy: AggStrategy::Plain,
        phase: AggPhase::Single,
        group: Vec::new(),
        aggs: vec![call(AggKind::CountStar, Vec::new(), DataType::Int8)],
        est: Estimate::default(),
    };
    let opts = PlanOptions {
        memory_limit: 64 * 1024,
        ..PlanOptions::default()
    };
    let rows = exec(&count, &mut mem, &opts).expect("count");
    assert_eq!(rows, vec![vec![Value::Int8(50_000)]]);
}

#[test]
fn sorts_beyond_the_memory_limit_fail_with_53200() {
    let mut mem = Mem::default();
    mem.tables
        .insert(1, (0..5_000).map(|i| vec![Value::Int4(i)]).collect());
    let sort = PhysicalPlan::Sort {
        input: Box::new(seq(1, &[("a", DataType::Int4)])),
        keys: vec![SortSpec {
            col: 0,
            desc: true,
            nulls_first: true,
        }],
        est: Estimate::default(),
    };
    let small = PlanOptions {
        memory_limit: 16 * 1024,
        ..PlanOptions::default()
    };
    let e = exec(&sort, &mut mem, &small).expect_err("over the limit");
    assert_eq!(e.code, SqlState::OutOfMemory);
    let rows = exec(&sort, &mut mem, &PlanOptions::default()).expect("fits");
    assert_eq!(rows.len(), 5_000);
    assert_eq!(rows[0], vec![Value::Int4(4_999)]);
}

#[test]
fn a_cancelled_statement_fails_with_57014() {
    let mut mem = Mem::default();
    mem.tables
        .insert(1, (0..3_000).map(|i| vec![Value::Int4(i)]).collect());
    let cross = PhysicalPlan::NestedLoop {
        outer: Box::new(seq(1, &[("a", DataType::Int4)])),
        inner: Box::new(seq(1, &[("a", DataType::Int4)])),
        join: JoinType::Inner,
        cond: None,
        param: false,
        est: Estimate::default(),
    };
    let flag = Arc::new(AtomicBool::new(true));
    let opts = PlanOptions {
        cancel: Some(flag),
        ..PlanOptions::default()
    };
    let e = exec(&cross, &mut mem, &opts).expect_err("cancelled");
    assert_eq!(e.code, SqlState::QueryCanceled);
}

fn join_rows() -> (Vec<Vec<Value>>, Vec<Vec<Value>>) {
    let l = (0..40)
        .map(|i| {
            vec![
                if i % 9 == 0 {
                    Value::Null
                } else {
                    Value::Int4(i % 7)
                },
                Value::Int4(i),
            ]
        })
        .collect();
    let r = (0..25)
        .map(|i| {
            vec![
                if i % 8 == 0 {
                    Value::Null
                } else {
                    Value::Int4(i % 11)
                },
                Value::Int4(100 + i),
            ]
        })
        .collect();
    (l, r)
}

#[test]
fn hash_merge_and_nested_loop_joins_agree() {
    let (l, r) = join_rows();
    let eq = Expr::Binary(
        BinOp::Eq,
        Box::new(col(0, DataType::Int4)),
        Box::new(col(2, DataType::Int4)),
        DataType::Bool,
    );
    let sorted = |rows: &Vec<Vec<Value>>| {
        let mut rows = rows.clone();
        rows.sort_by(|a, b| crate::exec::agg::cmp_nulls(&a[0], &b[0], false, false));
        rows
    };
    for join in [
        JoinType::Inner,
        JoinType::Left,
        JoinType::Right,
        JoinType::Full,
        JoinType::Semi,
        JoinType::Anti,
    ] {
        let nl = PhysicalPlan::NestedLoop {
            outer: Box::new(values(l.clone(), 2)),
            inner: Box::new(values(r.clone(), 2)),
            join,
            cond: Some(eq.clone()),
            param: false,
            est: Estimate::default(),
        };
        let hj = PhysicalPlan::HashJoin {
            outer: Box::new(values(l.clone(), 2)),
            inner: Box::new(values(r.clone(), 2)),
            join,
            outer_keys: vec![col(0, DataType::Int4)],
            inner_keys: vec![col(0, DataType::Int4)],
            residual: None,
            est: Estimate::default(),
        };
        let mut mem = Mem::default();
        let opts = PlanOptions::default();
        let a = exec(&nl, &mut mem, &opts).expect("nl");
        let b = exec(&hj, &mut mem, &opts).expect("hash");
        // Hash join keeps the nested loop's order exactly.
        assert_eq!(a, b, "{join:?}");
        if matches!(join, JoinType::Semi | JoinType::Anti) {
            continue;
        }
        let mj = PhysicalPlan::MergeJoin {
            outer: Box::new(values(sorted(&l), 2)),
            inner: Box::new(values(sorted(&r), 2)),
            join,
            outer_keys: vec![0],
            inner_keys: vec![0],
            residual: None,
            est: Estimate::default(),
        };
        let c = exec(&mj, &mut mem, &opts).expect("merge");
        let key = |mut v: Vec<Vec<Value>>| {
            v.sort_by_key(|r| format!("{r:?}"));
            v
        };
        assert_eq!(key(a), key(c), "{join:?}");
    }
}

#[test]
fn top_n_equals_a_stable_sort_and_limit() {
    let rows: Vec<Vec<Value>> = (0..3000)
        .map(|i| vec![Value::Int4((i * 7919) % 13), Value::Int4(i)])
        .collect();
    let keys = vec![SortSpec {
        col: 0,
        desc: false,
        nulls_first: false,
    }];
    let topn = PhysicalPlan::TopN {
        input: Box::new(values(rows.clone(), 2)),
        keys: keys.clone(),
        limit: 25,
        offset: 5,
        est: Estimate::default(),
    };
    let full = PhysicalPlan::Limit {
        input: Box::new(PhysicalPlan::Sort {
            input: Box::new(values(rows, 2)),
            keys,
            est: Estimate::default(),
        }),
        limit: Some(25),
        offset: 5,
        est: Estimate::default(),
    };
    let mut mem = Mem::default();
    let opts = PlanOptions::default();
    let a = exec(&topn, &mut mem, &opts).expect("topn");
    let b = exec(&full, &mut mem, &opts).expect("sort");
    assert_eq!(a.len(), 25);
    assert_eq!(a, b);
}

#[test]
fn memory_settings_parse_like_postgresql() {
    assert_eq!(parse_memory("64kB"), Some(64 * 1024));
    assert_eq!(parse_memory("1GB"), Some(1 << 30));
    assert_eq!(parse_memory("100"), Some(100 * 1024));
    assert_eq!(parse_memory("2 MB"), Some(2 << 20));
    assert_eq!(parse_memory("lots"), None);
}

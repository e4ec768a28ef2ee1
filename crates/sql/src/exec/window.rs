//! Window functions over a materialized input: partitions by hashing the PARTITION BY values,
//! sorts each partition by ORDER BY, and computes ranking, offset, value and aggregate
//! functions per row. Frames: the default (RANGE UNBOUNDED PRECEDING to the current row's last
//! peer, or the whole partition without ORDER BY), ROWS and GROUPS frames with constant offsets,
//! RANGE frames with offsets of the ORDER BY key's type (numbers, intervals for date/time keys),
//! and EXCLUDE CURRENT ROW / GROUP / TIES / NO OTHERS, as PostgreSQL 11+.

use super::*;

#[derive(Clone, Copy, Debug, PartialEq)]
enum WinFn {
    RowNumber,
    Rank,
    DenseRank,
    PercentRank,
    CumeDist,
    Ntile,
    Lag,
    Lead,
    FirstValue,
    LastValue,
    NthValue,
    Agg,
}

/// A frame bound: offsets are row/group counts (ROWS, GROUPS) or values of the ORDER BY key's
/// type (RANGE).
#[derive(Clone, Debug)]
enum FrameBound {
    Unbounded,
    Preceding(Value),
    Current,
    Following(Value),
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Units {
    Rows,
    Range,
    Groups,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Exclude {
    NoOthers,
    CurrentRow,
    Group,
    Ties,
}

/// An explicit window frame.
#[derive(Clone, Debug)]
struct Frame {
    units: Units,
    start: FrameBound,
    end: FrameBound,
    exclude: Exclude,
    /// RANGE with offsets: `key + offset` and `key - offset` over the row `[key, offset]`.
    range_ops: Option<(Expr, Expr)>,
}

/// One bound window function call.
#[derive(Debug)]
pub(super) struct WinSpec {
    f: WinFn,
    args: Vec<Expr>,
    partition: Vec<Expr>,
    order: Vec<(Expr, SortKey)>,
    /// An explicit frame; `None` = the default frame (RANGE UNBOUNDED PRECEDING .. CURRENT ROW).
    frame: Option<Frame>,
    agg: Option<AggSpec>,
}

/// The window functions of one SELECT: their values are appended after the input columns.
#[derive(Debug, Default)]
pub(super) struct WinCx {
    pub(super) base: usize,
    pub(super) specs: Vec<WinSpec>,
    pub(super) named: Vec<(String, ast::WindowSpec)>,
}

fn win_fn(name: &str) -> Option<WinFn> {
    Some(match name {
        "row_number" => WinFn::RowNumber,
        "rank" => WinFn::Rank,
        "dense_rank" => WinFn::DenseRank,
        "percent_rank" => WinFn::PercentRank,
        "cume_dist" => WinFn::CumeDist,
        "ntile" => WinFn::Ntile,
        "lag" => WinFn::Lag,
        "lead" => WinFn::Lead,
        "first_value" => WinFn::FirstValue,
        "last_value" => WinFn::LastValue,
        "nth_value" => WinFn::NthValue,
        _ => return None,
    })
}

impl<'a> Exec<'a> {
    /// A frame bound; offsets are bound as bigint (ROWS, GROUPS: 22013 if negative) or as
    /// `offset_ty` (RANGE).
    fn frame_bound(
        &self,
        b: &ast::WindowFrameBound,
        offset_ty: &DataType,
    ) -> Result<FrameBound, PgError> {
        let k = |e: &Option<Box<A>>| -> Result<Option<Value>, PgError> {
            let Some(x) = e else { return Ok(None) };
            let v = coerce(
                self.bind(x, &Cx::plain(&[]))?,
                offset_ty,
                CastContext::Assignment,
            )?
            .eval(&[], &self.cx)?;
            let zero = match offset_ty {
                DataType::Interval => None,
                DataType::Numeric(_) => Some(Value::Numeric(Numeric::from_i64(0))),
                DataType::Float4 | DataType::Float8 => Some(Value::Float8(0.0)),
                _ => Some(Value::Int8(0)),
            };
            let negative = v.is_null()
                || zero
                    .as_ref()
                    .is_some_and(|z| compare(&v, z) == Some(Ordering::Less));
            if negative {
                return Err(err(
                    if v.is_null() {
                        SqlState::NullValueNotAllowed
                    } else {
                        SqlState::InvalidPrecedingOrFollowingSize
                    },
                    if v.is_null() {
                        "frame starting offset must not be null"
                    } else {
                        "frame starting offset must not be negative"
                    },
                ));
            }
            Ok(Some(v))
        };
        Ok(match b {
            ast::WindowFrameBound::CurrentRow => FrameBound::Current,
            ast::WindowFrameBound::Preceding(e) => match k(e)? {
                None => FrameBound::Unbounded,
                Some(n) => FrameBound::Preceding(n),
            },
            ast::WindowFrameBound::Following(e) => match k(e)? {
                None => FrameBound::Unbounded,
                Some(n) => FrameBound::Following(n),
            },
        })
    }

    /// Bind a window function call (`f.over` is set) and return the column holding its value.
    pub(super) fn bind_window(
        &self,
        f: &ast::Function,
        cx: &Cx<'_>,
        win: &RefCell<WinCx>,
    ) -> Result<Expr, PgError> {
        let name = func_name(f);
        let spec = match &f.over {
            Some(ast::WindowType::WindowSpec(s)) => s.clone(),
            Some(ast::WindowType::NamedWindow(n)) => {
                let n = normalize_ident(n);
                win.borrow()
                    .named
                    .iter()
                    .find(|(k, _)| *k == n)
                    .map(|(_, s)| s.clone())
                    .ok_or_else(|| {
                        err(
                            SqlState::UndefinedObject,
                            format!("window \"{n}\" does not exist"),
                        )
                    })?
            }
            None => return Err(err(SqlState::InternalError, "not a window call")),
        };
        let inner = Cx {
            cols: cx.cols,
            agg: cx.agg,
            win: None,
            clause: "window functions",
        };
        // EXCLUDE arrives as a marker first in PARTITION BY (see the parser's rewrite).
        let mut exclude = Exclude::NoOthers;
        let mut partition = Vec::new();
        for e in &spec.partition_by {
            if let A::Function(pf) = e {
                if func_name(pf) == crate::parser::FRAME_EXCLUDE {
                    let what = pf.args.to_string().to_ascii_lowercase();
                    exclude = if what.contains("current row") {
                        Exclude::CurrentRow
                    } else if what.contains("group") {
                        Exclude::Group
                    } else if what.contains("ties") {
                        Exclude::Ties
                    } else {
                        Exclude::NoOthers
                    };
                    continue;
                }
            }
            partition.push(self.bind(e, &inner)?);
        }
        let order = spec
            .order_by
            .iter()
            .map(|o| Ok((self.bind(&o.expr, &inner)?, sort_key_of(o, 0))))
            .collect::<Result<Vec<_>, PgError>>()?;
        let mut frame = None;
        if let Some(fr) = &spec.window_frame {
            let units = match fr.units {
                ast::WindowFrameUnits::Rows => Units::Rows,
                ast::WindowFrameUnits::Range => Units::Range,
                ast::WindowFrameUnits::Groups => Units::Groups,
            };
            let has_offset = |b: &ast::WindowFrameBound| {
                matches!(
                    b,
                    ast::WindowFrameBound::Preceding(Some(_))
                        | ast::WindowFrameBound::Following(Some(_))
                )
            };
            let offsets =
                has_offset(&fr.start_bound) || fr.end_bound.as_ref().is_some_and(has_offset);
            let mut offset_ty = DataType::Int8;
            let mut range_ops = None;
            if units == Units::Range && offsets {
                if order.len() != 1 {
                    return Err(err(
                        SqlState::WindowingError,
                        "RANGE with offset PRECEDING/FOLLOWING requires exactly one ORDER BY column",
                    ));
                }
                let kt = order[0].0.data_type();
                offset_ty = match kt.clone() {
                    DataType::Date
                    | DataType::Timestamp
                    | DataType::Timestamptz
                    | DataType::Time
                    | DataType::Interval => DataType::Interval,
                    DataType::Int2 | DataType::Int4 | DataType::Int8 => DataType::Int8,
                    other => other,
                };
                let key = Expr::Column(0, kt.clone());
                let off = Expr::Column(1, offset_ty.clone());
                range_ops = Some((
                    self.binary_expr(BinOp::Add, key.clone(), off.clone())?,
                    self.binary_expr(BinOp::Sub, key, off)?,
                ));
            }
            if units == Units::Groups && order.is_empty() {
                return Err(err(
                    SqlState::WindowingError,
                    "GROUPS mode requires an ORDER BY clause",
                ));
            }
            let start = self.frame_bound(&fr.start_bound, &offset_ty)?;
            let end = match &fr.end_bound {
                Some(b) => self.frame_bound(b, &offset_ty)?,
                None => FrameBound::Current,
            };
            if matches!(&fr.start_bound, ast::WindowFrameBound::Following(None)) {
                return Err(err(
                    SqlState::WindowingError,
                    "frame start cannot be UNBOUNDED FOLLOWING",
                ));
            }
            if matches!(&fr.end_bound, Some(ast::WindowFrameBound::Preceding(None))) {
                return Err(err(
                    SqlState::WindowingError,
                    "frame end cannot be UNBOUNDED PRECEDING",
                ));
            }
            // UNBOUNDED FOLLOWING as an end is kept apart from UNBOUNDED PRECEDING.
            let end = match (&fr.end_bound, end) {
                (Some(ast::WindowFrameBound::Following(None)), _) => {
                    FrameBound::Following(Value::Null)
                }
                (_, e) => e,
            };
            frame = Some(Frame {
                units,
                start,
                end,
                exclude,
                range_ops,
            });
        } else if exclude != Exclude::NoOthers {
            frame = Some(Frame {
                units: Units::Range,
                start: FrameBound::Unbounded,
                end: FrameBound::Current,
                exclude,
                range_ops: None,
            });
        }
        let (wf, agg) = match win_fn(&name) {
            Some(w) => (w, None),
            None => match agg_fn(&name) {
                Some(af) => {
                    let tmp = RefCell::new(AggCx::default());
                    let acx = Cx {
                        cols: cx.cols,
                        agg: Some(&tmp),
                        win: None,
                        clause: "window functions",
                    };
                    let mut plain = f.clone();
                    plain.over = None;
                    self.bind_agg(&plain, af, &acx)?;
                    let spec = tmp.into_inner().aggs.pop().map(|(_, s)| s);
                    (WinFn::Agg, spec)
                }
                None => {
                    return Err(err(
                        SqlState::UndefinedFunction,
                        format!("function {name} is not a window function"),
                    ))
                }
            },
        };
        let mut args = Vec::new();
        if let FunctionArguments::List(l) = &f.args {
            for a in &l.args {
                match a {
                    FunctionArg::Unnamed(FunctionArgExpr::Expr(x)) => {
                        args.push(self.bind(x, &inner)?)
                    }
                    FunctionArg::Unnamed(FunctionArgExpr::Wildcard) => {}
                    _ => return Err(unsupported("this window function argument")),
                }
            }
        }
        let arity_ok = match wf {
            WinFn::RowNumber
            | WinFn::Rank
            | WinFn::DenseRank
            | WinFn::PercentRank
            | WinFn::CumeDist => args.is_empty(),
            WinFn::Ntile | WinFn::FirstValue | WinFn::LastValue => args.len() == 1,
            WinFn::Lag | WinFn::Lead => (1..=3).contains(&args.len()),
            WinFn::NthValue => args.len() == 2,
            WinFn::Agg => true,
        };
        if !arity_ok
            && matches!(
                wf,
                WinFn::Rank | WinFn::DenseRank | WinFn::PercentRank | WinFn::CumeDist
            )
        {
            // With arguments these name PostgreSQL's hypothetical-set aggregates.
            return Err(err(
                SqlState::WrongObjectType,
                format!("OVER is not supported for ordered-set aggregate {name}"),
            ));
        }
        if !arity_ok {
            let types: Vec<String> = args.iter().map(|a| a.data_type().name()).collect();
            return Err(err(
                SqlState::UndefinedFunction,
                format!("function {name}({}) does not exist", types.join(", ")),
            ));
        }
        let ty = match wf {
            WinFn::RowNumber | WinFn::Rank | WinFn::DenseRank => DataType::Int8,
            WinFn::Ntile => {
                args[0] = coerce(args[0].clone(), &DataType::Int4, CastContext::Implicit)?;
                DataType::Int4
            }
            WinFn::PercentRank | WinFn::CumeDist => DataType::Float8,
            WinFn::Lag | WinFn::Lead | WinFn::FirstValue | WinFn::LastValue | WinFn::NthValue => {
                let t = out_type(&args[0].data_type());
                if matches!(wf, WinFn::Lag | WinFn::Lead) {
                    if let Some(o) = args.get(1).cloned() {
                        args[1] = coerce(o, &DataType::Int4, CastContext::Implicit)?;
                    }
                    if let Some(d) = args.get(2).cloned() {
                        args[2] = coerce(d, &t, CastContext::Implicit)?;
                    }
                }
                if wf == WinFn::NthValue {
                    args[1] = coerce(args[1].clone(), &DataType::Int4, CastContext::Implicit)?;
                }
                t
            }
            WinFn::Agg => agg.as_ref().map(|a| a.ty.clone()).unwrap_or(DataType::Int8),
        };
        let mut w = win.borrow_mut();
        w.specs.push(WinSpec {
            f: wf,
            args,
            partition,
            order,
            frame,
            agg,
        });
        Ok(Expr::Column(w.base + w.specs.len() - 1, ty))
    }

    /// The frame of the row at sorted position `p` of a partition of `len` rows: positions in
    /// order, after EXCLUDE. `first_peer`/`last_peer` delimit peer groups, `dense` numbers
    /// them from 1, `key` is the (single) ORDER BY value at a position (RANGE offsets).
    #[allow(clippy::too_many_arguments)]
    fn frame_positions(
        &self,
        spec: &WinSpec,
        p: usize,
        len: usize,
        first_peer: &[usize],
        last_peer: &[usize],
        dense: &[i64],
        key: &dyn Fn(usize) -> Value,
    ) -> Result<Vec<usize>, PgError> {
        let last = len as i64 - 1;
        let Some(fr) = &spec.frame else {
            let fe = if spec.order.is_empty() {
                last
            } else {
                last_peer[p] as i64
            };
            return Ok((0..=fe.max(-1))
                .filter(|&q| q >= 0)
                .map(|q| q as usize)
                .collect());
        };
        let count = |v: &Value| -> i64 {
            match v {
                Value::Int8(n) => *n,
                Value::Int4(n) => i64::from(*n),
                _ => 0,
            }
        };
        // Group boundaries (GROUPS): start position of each group, by group number from 0.
        let group_of = |q: usize| dense[q] - 1;
        let ngroups = dense.last().copied().unwrap_or(0);
        let group_start = |g: i64| -> i64 {
            if g < 0 {
                return 0;
            }
            (0..len)
                .find(|&q| group_of(q) == g)
                .map_or(len as i64, |q| q as i64)
        };
        let group_end = |g: i64| -> i64 {
            if g >= ngroups {
                return last;
            }
            (0..len)
                .rev()
                .find(|&q| group_of(q) == g)
                .map_or(-1, |q| q as i64)
        };
        // RANGE: first/last position whose key is at or after/before `b` in sort order.
        let sk = spec.order.first().map(|(_, k)| (k.desc, k.nulls_first));
        let range_pos = |off: &Value, preceding: bool, is_start: bool| -> Result<i64, PgError> {
            let cur = key(p);
            if cur.is_null() {
                return Ok(if is_start {
                    first_peer[p] as i64
                } else {
                    last_peer[p] as i64
                });
            }
            let (desc, nf) = sk.unwrap_or((false, false));
            let Some((add, sub)) = &fr.range_ops else {
                return Ok(p as i64);
            };
            let e = if preceding != desc { sub } else { add };
            let b = e.eval(&[cur, off.clone()], &self.cx)?;
            Ok(if is_start {
                (0..len)
                    .find(|&q| cmp_nulls(&key(q), &b, desc, nf) != Ordering::Less)
                    .map_or(len as i64, |q| q as i64)
            } else {
                (0..len)
                    .rev()
                    .find(|&q| cmp_nulls(&key(q), &b, desc, nf) != Ordering::Greater)
                    .map_or(-1, |q| q as i64)
            })
        };
        let bound = |b: &FrameBound, is_start: bool| -> Result<i64, PgError> {
            Ok(match (b, fr.units) {
                (FrameBound::Unbounded, _) => {
                    if is_start {
                        0
                    } else {
                        last
                    }
                }
                (FrameBound::Following(Value::Null), _) => last,
                (FrameBound::Current, Units::Rows) => p as i64,
                (FrameBound::Current, _) => {
                    if is_start {
                        first_peer[p] as i64
                    } else {
                        last_peer[p] as i64
                    }
                }
                (FrameBound::Preceding(v), Units::Rows) => p as i64 - count(v),
                (FrameBound::Following(v), Units::Rows) => p as i64 + count(v),
                (FrameBound::Preceding(v), Units::Groups) => {
                    let g = group_of(p) - count(v);
                    if is_start {
                        group_start(g.max(0))
                    } else if g < 0 {
                        -1
                    } else {
                        group_end(g)
                    }
                }
                (FrameBound::Following(v), Units::Groups) => {
                    let g = group_of(p) + count(v);
                    if is_start {
                        if g >= ngroups {
                            len as i64
                        } else {
                            group_start(g)
                        }
                    } else {
                        group_end(g.min(ngroups - 1))
                    }
                }
                (FrameBound::Preceding(v), Units::Range) => range_pos(v, true, is_start)?,
                (FrameBound::Following(v), Units::Range) => range_pos(v, false, is_start)?,
            })
        };
        let fs = bound(&fr.start, true)?.max(0);
        let fe = bound(&fr.end, false)?.min(last);
        let mut out: Vec<usize> = if fs <= fe {
            (fs as usize..=fe as usize).collect()
        } else {
            Vec::new()
        };
        match fr.exclude {
            Exclude::NoOthers => {}
            Exclude::CurrentRow => out.retain(|&q| q != p),
            Exclude::Group => out.retain(|&q| q < first_peer[p] || q > last_peer[p]),
            Exclude::Ties => {
                out.retain(|&q| q == p || q < first_peer[p] || q > last_peer[p]);
            }
        }
        Ok(out)
    }

    /// Append the value of every window function to every row.
    pub(super) fn compute_windows(
        &self,
        rows: &mut [Vec<Value>],
        specs: &[WinSpec],
    ) -> Result<(), PgError> {
        let n = rows.len();
        let mut results: Vec<Vec<Value>> = vec![Vec::with_capacity(specs.len()); n];
        for spec in specs {
            let mut parts: Vec<Vec<usize>> = Vec::new();
            let mut index: HashMap<Vec<u8>, usize> = HashMap::new();
            for (i, r) in rows.iter().enumerate() {
                let key = spec
                    .partition
                    .iter()
                    .map(|e| e.eval(r, &self.cx))
                    .collect::<Result<Vec<_>, _>>()?;
                let k = row_key(&key);
                match index.get(&k) {
                    Some(&p) => parts[p].push(i),
                    None => {
                        index.insert(k, parts.len());
                        parts.push(vec![i]);
                    }
                }
            }
            let mut out = vec![Value::Null; n];
            for idxs in parts {
                let keys: Vec<Vec<Value>> = idxs
                    .iter()
                    .map(|&i| {
                        spec.order
                            .iter()
                            .map(|(e, _)| e.eval(&rows[i], &self.cx))
                            .collect::<Result<Vec<_>, _>>()
                    })
                    .collect::<Result<_, _>>()?;
                let mut order: Vec<usize> = (0..idxs.len()).collect();
                let cmp = |a: usize, b: usize| {
                    for (j, (_, k)) in spec.order.iter().enumerate() {
                        let o = cmp_nulls(&keys[a][j], &keys[b][j], k.desc, k.nulls_first);
                        if o != Ordering::Equal {
                            return o;
                        }
                    }
                    Ordering::Equal
                };
                order.sort_by(|&a, &b| cmp(a, b));
                let len = order.len();
                // Peer groups: first and last position of each position's peers.
                let mut first_peer = vec![0; len];
                let mut last_peer = vec![0; len];
                let mut dense = vec![0i64; len];
                let mut start = 0;
                let mut groups = 0;
                for p in 0..len {
                    if p > 0 && cmp(order[p - 1], order[p]) != Ordering::Equal {
                        start = p;
                    }
                    if p == start {
                        groups += 1;
                    }
                    first_peer[p] = start;
                    dense[p] = groups;
                }
                let mut end = len;
                for p in (0..len).rev() {
                    if p + 1 < len && cmp(order[p + 1], order[p]) != Ordering::Equal {
                        end = p + 1;
                    }
                    last_peer[p] = end - 1;
                }
                let row_at = |p: usize| &rows[idxs[order[p]]];
                for p in 0..len {
                    let cur = row_at(p);
                    let frame = self.frame_positions(
                        spec,
                        p,
                        len,
                        &first_peer,
                        &last_peer,
                        &dense,
                        &|q: usize| keys[order[q]].first().cloned().unwrap_or(Value::Null),
                    )?;
                    let arg = |k: usize, r: &[Value]| -> Result<Value, PgError> {
                        spec.args
                            .get(k)
                            .map(|e| e.eval(r, &self.cx))
                            .unwrap_or(Ok(Value::Null))
                    };
                    let v = match spec.f {
                        WinFn::RowNumber => Value::Int8(p as i64 + 1),
                        WinFn::Rank => Value::Int8(first_peer[p] as i64 + 1),
                        WinFn::DenseRank => Value::Int8(dense[p]),
                        WinFn::PercentRank => Value::Float8(if len <= 1 {
                            0.0
                        } else {
                            first_peer[p] as f64 / (len - 1) as f64
                        }),
                        WinFn::CumeDist => Value::Float8((last_peer[p] + 1) as f64 / len as f64),
                        WinFn::Ntile => {
                            let b = match arg(0, cur)? {
                                Value::Int4(b) if b > 0 => b as usize,
                                Value::Null => {
                                    out[idxs[order[p]]] = Value::Null;
                                    continue;
                                }
                                _ => {
                                    return Err(err(
                                        SqlState::InvalidArgumentForNtile,
                                        "argument of ntile must be greater than zero",
                                    ))
                                }
                            };
                            let per = len / b;
                            let extra = len % b;
                            let big = extra * (per + 1);
                            let bucket = if p < big {
                                p / (per + 1)
                            } else {
                                extra + (p - big) / per.max(1)
                            };
                            Value::Int4(i32::try_from(bucket + 1).unwrap_or(i32::MAX))
                        }
                        WinFn::Lag | WinFn::Lead => {
                            let off = match spec.args.get(1) {
                                Some(e) => match e.eval(cur, &self.cx)? {
                                    Value::Int4(o) => i64::from(o),
                                    _ => 1,
                                },
                                None => 1,
                            };
                            let t = if spec.f == WinFn::Lag {
                                p as i64 - off
                            } else {
                                p as i64 + off
                            };
                            if t >= 0 && (t as usize) < len {
                                arg(0, row_at(t as usize))?
                            } else {
                                arg(2, cur)?
                            }
                        }
                        WinFn::FirstValue => match frame.first() {
                            Some(&q) => arg(0, row_at(q))?,
                            None => Value::Null,
                        },
                        WinFn::LastValue => match frame.last() {
                            Some(&q) => arg(0, row_at(q))?,
                            None => Value::Null,
                        },
                        WinFn::NthValue => {
                            let k = match arg(1, cur)? {
                                Value::Int4(k) if k > 0 => k as usize,
                                _ => {
                                    return Err(err(
                                        SqlState::InvalidArgumentForNthValue,
                                        "argument of nth_value must be greater than zero",
                                    ))
                                }
                            };
                            match frame.get(k - 1) {
                                Some(&q) => arg(0, row_at(q))?,
                                None => Value::Null,
                            }
                        }
                        WinFn::Agg => {
                            let Some(a) = &spec.agg else {
                                return Err(err(SqlState::InternalError, "window aggregate"));
                            };
                            let mut acc = query::new_acc();
                            for &q in &frame {
                                let r = row_at(q);
                                if let Some(f) = &a.filter {
                                    if !bool_of(&f.eval(r, &self.cx)?) {
                                        continue;
                                    }
                                }
                                let args = a
                                    .args
                                    .iter()
                                    .map(|e| e.eval(r, &self.cx))
                                    .collect::<Result<Vec<_>, _>>()?;
                                query::agg_step(a, &mut acc, args)?;
                            }
                            query::agg_finish(a, &acc)?
                        }
                    };
                    out[idxs[order[p]]] = v;
                }
            }
            for (r, v) in results.iter_mut().zip(out) {
                r.push(v);
            }
        }
        for (r, extra) in rows.iter_mut().zip(results) {
            r.extend(extra);
        }
        Ok(())
    }
}

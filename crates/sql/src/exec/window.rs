//! Window functions over a materialized input: partitions by hashing the PARTITION BY values,
//! sorts each partition by ORDER BY, and computes ranking, offset, value and aggregate
//! functions per row. Frames: the default (RANGE UNBOUNDED PRECEDING to the current row's last
//! peer, or the whole partition without ORDER BY) and ROWS frames with constant offsets; RANGE
//! offsets, GROUPS and EXCLUDE are not supported yet (0A000).

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

#[derive(Clone, Copy, Debug)]
enum FrameBound {
    Unbounded,
    Preceding(i64),
    Current,
    Following(i64),
}

/// One bound window function call.
#[derive(Debug)]
pub(super) struct WinSpec {
    f: WinFn,
    args: Vec<Expr>,
    partition: Vec<Expr>,
    order: Vec<(Expr, SortKey)>,
    /// A ROWS frame; `None` = the default frame.
    rows_frame: Option<(FrameBound, FrameBound)>,
    /// RANGE/ROWS UNBOUNDED PRECEDING .. UNBOUNDED FOLLOWING.
    whole: bool,
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
    fn frame_bound(&self, b: &ast::WindowFrameBound) -> Result<FrameBound, PgError> {
        let k = |e: &Option<Box<A>>| -> Result<Option<i64>, PgError> {
            match e {
                None => Ok(None),
                Some(x) => {
                    let v = coerce(
                        self.bind(x, &Cx::plain(&[]))?,
                        &DataType::Int8,
                        CastContext::Assignment,
                    )?
                    .eval(&[], &self.cx)?;
                    match v {
                        Value::Int8(n) if n >= 0 => Ok(Some(n)),
                        _ => Err(err(
                            SqlState::InvalidParameterValue,
                            "frame offset must not be negative",
                        )),
                    }
                }
            }
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
        let partition = spec
            .partition_by
            .iter()
            .map(|e| self.bind(e, &inner))
            .collect::<Result<Vec<_>, _>>()?;
        let order = spec
            .order_by
            .iter()
            .map(|o| Ok((self.bind(&o.expr, &inner)?, sort_key_of(o, 0))))
            .collect::<Result<Vec<_>, PgError>>()?;
        let (mut rows_frame, mut whole) = (None, false);
        if let Some(fr) = &spec.window_frame {
            let start = self.frame_bound(&fr.start_bound)?;
            let end = match &fr.end_bound {
                Some(b) => self.frame_bound(b)?,
                None => FrameBound::Current,
            };
            let start_unb = matches!(
                (&fr.start_bound, start),
                (
                    ast::WindowFrameBound::Preceding(None),
                    FrameBound::Unbounded
                )
            );
            let end_unb = matches!(&fr.end_bound, Some(ast::WindowFrameBound::Following(None)));
            match fr.units {
                ast::WindowFrameUnits::Rows => rows_frame = Some((start, end)),
                ast::WindowFrameUnits::Range if start_unb && end_unb => whole = true,
                ast::WindowFrameUnits::Range if start_unb && matches!(end, FrameBound::Current) => {
                }
                _ => return Err(unsupported("this window frame")),
            }
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
            rows_frame,
            whole,
            agg,
        });
        Ok(Expr::Column(w.base + w.specs.len() - 1, ty))
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
                    let (fs, fe): (i64, i64) = if spec.whole {
                        (0, len as i64 - 1)
                    } else if let Some((s, e)) = spec.rows_frame {
                        let pos = |b: FrameBound, is_start: bool| match b {
                            FrameBound::Unbounded => {
                                if is_start {
                                    0
                                } else {
                                    len as i64 - 1
                                }
                            }
                            FrameBound::Preceding(k) => p as i64 - k,
                            FrameBound::Current => p as i64,
                            FrameBound::Following(k) => p as i64 + k,
                        };
                        (pos(s, true).max(0), pos(e, false).min(len as i64 - 1))
                    } else if spec.order.is_empty() {
                        (0, len as i64 - 1)
                    } else {
                        (0, last_peer[p] as i64)
                    };
                    let frame: Vec<usize> = if fs <= fe {
                        (fs as usize..=fe as usize).collect()
                    } else {
                        Vec::new()
                    };
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

//! Group commit: COMMIT, PREPARE TRANSACTION, COMMIT PREPARED and ROLLBACK PREPARED become
//! durable in batches, one fsync per batch, written by one flusher task at a time.

use pgxc_common::{Gxid, PgError, SqlState};

use super::catalog::{heap_table, index_table, RelEntry, RelId};
use super::store::{be, io, tdef, Store, CATALOG, CLOG, PREPARED, WAL};
use super::store::{PrepareInfo, PreparedXact};
use super::visibility::XidStatus;
use super::wal::{Change, ChangeRecord, Lsn};

/// How a transaction ends.
#[derive(Clone, Debug)]
pub(crate) enum EndKind {
    Commit,
    Prepare { gid: String, info: PrepareInfo },
    CommitPrepared { gid: String },
    RollbackPrepared { gid: String },
}

pub(crate) struct CommitReq {
    pub xid: Gxid,
    pub kind: EndKind,
    pub changes: Vec<Change>,
    pub done: tokio::sync::oneshot::Sender<Result<Lsn, PgError>>,
}

/// Requests waiting for the flusher, and whether a flusher runs.
#[derive(Default)]
pub(crate) struct CommitQueue {
    pending: Vec<CommitReq>,
    flusher: bool,
}

/// Everything one durable redb transaction writes for a batch.
#[derive(Default)]
struct Plan {
    wal: Vec<(u64, Vec<u8>)>,
    clog_put: Vec<(u64, u8)>,
    clog_del: Vec<u64>,
    prep_put: Vec<(String, Vec<u8>)>,
    prep_del: Vec<String>,
    cat_put: Vec<(u64, Vec<u8>)>,
    cat_del: Vec<u64>,
    drop_sids: Vec<u64>,
}

/// A request accepted into a batch, with the in-memory effects to apply once durable.
struct Accepted {
    xid: Gxid,
    kind: EndKind,
    lsn: Lsn,
    catalog: Vec<(RelId, Option<RelEntry>)>,
    prepared: Option<PreparedXact>,
    done: tokio::sync::oneshot::Sender<Result<Lsn, PgError>>,
}

/// postcard encoding of the store's own records (plain structs and enums: cannot fail).
pub(crate) fn encode<T: serde::Serialize>(v: &T) -> Vec<u8> {
    postcard::to_allocvec(v).expect("postcard encodes plain records")
}

fn write_plan(db: &redb::Database, plan: Plan, durable: bool) -> Result<(), PgError> {
    let mut w = db.begin_write().map_err(io)?;
    let durability = if durable {
        redb::Durability::Immediate
    } else {
        // Only with the test-only mistake `Store::set_mistake_ack_before_durable`.
        redb::Durability::None
    };
    w.set_durability(durability).map_err(io)?;
    {
        let mut t = w.open_table(tdef(WAL)).map_err(io)?;
        for (lsn, rec) in &plan.wal {
            t.insert(be(*lsn).as_slice(), rec.as_slice()).map_err(io)?;
        }
    }
    {
        let mut t = w.open_table(tdef(CLOG)).map_err(io)?;
        for (x, s) in &plan.clog_put {
            t.insert(be(*x).as_slice(), [*s].as_slice()).map_err(io)?;
        }
        for x in &plan.clog_del {
            t.remove(be(*x).as_slice()).map_err(io)?;
        }
    }
    {
        let mut t = w.open_table(tdef(PREPARED)).map_err(io)?;
        for (g, v) in &plan.prep_put {
            t.insert(g.as_bytes(), v.as_slice()).map_err(io)?;
        }
        for g in &plan.prep_del {
            t.remove(g.as_bytes()).map_err(io)?;
        }
    }
    {
        let mut t = w.open_table(tdef(CATALOG)).map_err(io)?;
        for (id, v) in &plan.cat_put {
            t.insert(be(*id).as_slice(), v.as_slice()).map_err(io)?;
        }
        for id in &plan.cat_del {
            t.remove(be(*id).as_slice()).map_err(io)?;
        }
    }
    for sid in &plan.drop_sids {
        w.delete_table(tdef(&heap_table(*sid))).map_err(io)?;
        w.delete_table(tdef(&index_table(*sid))).map_err(io)?;
    }
    w.commit().map_err(io)
}

impl Store {
    /// End transaction `xid` as `kind`, durably, with its `changes`; resolves once the batch it
    /// joined is on disk. For COMMIT/ROLLBACK PREPARED, `xid` is ignored (the gid names it).
    pub(crate) async fn submit_end(
        &self,
        xid: Gxid,
        kind: EndKind,
        changes: Vec<Change>,
    ) -> Result<Lsn, PgError> {
        let (done, rx) = tokio::sync::oneshot::channel();
        let start = {
            let mut q = self.inner.commit.lock().unwrap_or_else(|p| p.into_inner());
            q.pending.push(CommitReq {
                xid,
                kind,
                changes,
                done,
            });
            !std::mem::replace(&mut q.flusher, true)
        };
        let inline = self
            .inner
            .inline_commits
            .load(std::sync::atomic::Ordering::Relaxed);
        if start && inline {
            // Inline mode: this future writes the batch itself, without yielding (the write is
            // synchronous), so it completes in its first poll and cannot be cancelled half-way.
            self.run_batches(true).await;
        } else if start {
            // A task of its own, so that a cancelled caller cannot strand the queue.
            let store = self.clone();
            tokio::spawn(async move { store.run_flusher().await });
        }
        rx.await.unwrap_or_else(|_| {
            Err(PgError::new(
                SqlState::InternalError,
                "commit flusher stopped before answering",
            ))
        })
    }

    async fn run_flusher(self) {
        let delay = self.inner.config.commit_delay;
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        self.run_batches(false).await;
    }

    /// Write queued batches until the queue is empty, then clear the flusher flag. `inline`:
    /// synchronously, on the caller's future ([`Store::set_inline_commits`]).
    async fn run_batches(&self, inline: bool) {
        loop {
            let batch = {
                let mut q = self.inner.commit.lock().unwrap_or_else(|p| p.into_inner());
                if q.pending.is_empty() {
                    q.flusher = false;
                    return;
                }
                std::mem::take(&mut q.pending)
            };
            self.flush_batch(batch, inline).await;
        }
    }

    async fn flush_batch(&self, batch: Vec<CommitReq>, inline: bool) {
        let mut plan = Plan::default();
        let mut accepted = Vec::new();
        {
            let mut st = self.state();
            if let Err(e) = st.check_usable() {
                for r in batch {
                    let _ = r.done.send(Err(e.clone()));
                }
                return;
            }
            let mut claimed: Vec<String> = Vec::new();
            for req in batch {
                // Resolve the transaction and check the request.
                let (xid, check) = match &req.kind {
                    EndKind::Commit => (
                        req.xid,
                        (st.status(req.xid) == XidStatus::InProgress)
                            .then_some(())
                            .ok_or_else(|| {
                                PgError::new(
                                    SqlState::InvalidTransactionState,
                                    format!("transaction {} is not in progress", req.xid),
                                )
                            }),
                    ),
                    EndKind::Prepare { gid, .. } => {
                        if st.prepared.contains_key(gid) || claimed.contains(gid) {
                            (
                                req.xid,
                                Err(PgError::new(
                                    SqlState::DuplicateObject,
                                    format!("transaction identifier \"{gid}\" is already in use"),
                                )),
                            )
                        } else if st.status(req.xid) != XidStatus::InProgress {
                            (
                                req.xid,
                                Err(PgError::new(
                                    SqlState::InvalidTransactionState,
                                    format!("transaction {} is not in progress", req.xid),
                                )),
                            )
                        } else {
                            (req.xid, Ok(()))
                        }
                    }
                    EndKind::CommitPrepared { gid } | EndKind::RollbackPrepared { gid } => {
                        match st.prepared.get(gid) {
                            Some(p) if !claimed.contains(gid) => (p.xid, Ok(())),
                            _ => (
                                req.xid,
                                Err(PgError::new(
                                    SqlState::UndefinedObject,
                                    format!(
                                    "prepared transaction with identifier \"{gid}\" does not exist"
                                ),
                                )),
                            ),
                        }
                    }
                };
                if let Err(e) = check {
                    let _ = req.done.send(Err(e));
                    continue;
                }
                // Catalog effects.
                let mut catalog = Vec::new();
                let commits = matches!(req.kind, EndKind::Commit | EndKind::CommitPrepared { .. });
                let rolls_back = matches!(req.kind, EndKind::RollbackPrepared { .. });
                if commits || rolls_back {
                    let touched: Vec<RelEntry> = st
                        .catalog
                        .values()
                        .filter(|e| e.pending_for(xid))
                        .cloned()
                        .collect();
                    for e in touched {
                        let id = e.def.id;
                        let (after, gone) = if commits {
                            e.on_commit(xid)
                        } else {
                            e.on_abort(xid)
                        };
                        match &after {
                            Some(a) => plan.cat_put.push((id.0, encode(a))),
                            None => plan.cat_del.push(id.0),
                        }
                        plan.drop_sids.extend(gone);
                        catalog.push((id, after));
                    }
                }
                // Change-log records.
                let mut records = req.changes;
                let mut prepared = None;
                match &req.kind {
                    EndKind::Commit => {
                        records.push(Change::Commit);
                        plan.clog_put.push((xid.0, 1));
                    }
                    EndKind::Prepare { gid, info } => {
                        let locks = st.locks.locks_of(xid);
                        records.push(Change::Prepare {
                            gid: gid.clone(),
                            locks: locks.clone(),
                        });
                        plan.clog_put.push((xid.0, 3));
                        let p = PreparedXact {
                            xid,
                            gid: gid.clone(),
                            info: info.clone(),
                            locks,
                        };
                        plan.prep_put.push((gid.clone(), encode(&p)));
                        claimed.push(gid.clone());
                        prepared = Some(p);
                    }
                    EndKind::CommitPrepared { gid } => {
                        records.push(Change::CommitPrepared { gid: gid.clone() });
                        plan.clog_put.push((xid.0, 1));
                        plan.prep_del.push(gid.clone());
                        claimed.push(gid.clone());
                    }
                    EndKind::RollbackPrepared { gid } => {
                        records.push(Change::RollbackPrepared { gid: gid.clone() });
                        plan.clog_del.push(xid.0);
                        plan.prep_del.push(gid.clone());
                        claimed.push(gid.clone());
                    }
                }
                let mut last = Lsn(0);
                for change in records {
                    let lsn = Lsn(st.next_lsn);
                    st.next_lsn += 1;
                    plan.wal
                        .push((lsn.0, encode(&ChangeRecord { lsn, xid, change })));
                    last = lsn;
                }
                accepted.push(Accepted {
                    xid,
                    kind: req.kind,
                    lsn: last,
                    catalog,
                    prepared,
                    done: req.done,
                });
            }
        }
        if accepted.is_empty() {
            return;
        }
        let result = if inline {
            write_plan(self.db(), plan, self.durable_ends())
        } else {
            self.write_durably(plan).await
        };
        let mut st = self.state();
        if let Err(e) = result {
            st.poisoned = Some(e.message.clone());
            for a in accepted {
                let _ = a.done.send(Err(e.clone()));
            }
            return;
        }
        st.deferred = 0;
        for a in accepted {
            for (id, after) in a.catalog {
                match after {
                    Some(e) => {
                        st.catalog.insert(id, e);
                    }
                    None => {
                        st.catalog.remove(&id);
                    }
                }
            }
            match a.kind {
                EndKind::Commit => {
                    st.clog.insert(a.xid, XidStatus::Committed);
                    st.active.remove(&a.xid);
                    st.locks.end(a.xid);
                }
                EndKind::Prepare { gid, .. } => {
                    st.clog.insert(a.xid, XidStatus::Prepared);
                    st.active.remove(&a.xid);
                    if let Some(p) = a.prepared {
                        st.prepared.insert(gid, p);
                    }
                }
                EndKind::CommitPrepared { gid } => {
                    st.clog.insert(a.xid, XidStatus::Committed);
                    st.prepared.remove(&gid);
                    st.locks.end(a.xid);
                }
                EndKind::RollbackPrepared { gid } => {
                    st.clog.remove(&a.xid);
                    st.prepared.remove(&gid);
                    st.locks.end(a.xid);
                }
            }
            let _ = a.done.send(Ok(a.lsn));
        }
    }

    /// Write `plan` in one immediately durable redb transaction; in real mode on a blocking
    /// thread, so that commits arriving during the fsync queue up for the next batch.
    async fn write_durably(&self, plan: Plan) -> Result<(), PgError> {
        #[cfg(madsim)]
        {
            write_plan(self.db(), plan, self.durable_ends())
        }
        #[cfg(not(madsim))]
        {
            let inner = self.inner.clone();
            let durable = self.durable_ends();
            tokio::task::spawn_blocking(move || write_plan(inner.kv.db(), plan, durable))
                .await
                .unwrap_or_else(|e| {
                    Err(PgError::new(
                        SqlState::InternalError,
                        format!("commit writer failed: {e}"),
                    ))
                })
        }
    }

    /// `COMMIT PREPARED 'gid'`, from any session: makes the prepared transaction's changes
    /// durable and visible, releases its locks. Returns the LSN of its change-log record.
    ///
    /// Errors: 42704 if no transaction is prepared with `gid`; 58030 on disk failure.
    pub async fn commit_prepared(&self, gid: &str) -> Result<Lsn, PgError> {
        self.submit_end(
            Gxid(0),
            EndKind::CommitPrepared {
                gid: gid.to_string(),
            },
            Vec::new(),
        )
        .await
    }

    /// `ROLLBACK PREPARED 'gid'`, from any session: discards the prepared transaction's
    /// changes and releases its locks. Returns the LSN of its change-log record.
    ///
    /// Errors: 42704 if no transaction is prepared with `gid`; 58030 on disk failure.
    pub async fn rollback_prepared(&self, gid: &str) -> Result<Lsn, PgError> {
        self.submit_end(
            Gxid(0),
            EndKind::RollbackPrepared {
                gid: gid.to_string(),
            },
            Vec::new(),
        )
        .await
    }
}

/// Compile-time check: the store's futures can run on a multi-threaded runtime.
#[allow(unused)]
async fn _assert_send(s: Store) {
    fn send<T: Send>(_: &T) {}
    let f = s.commit_prepared("x");
    send(&f);
}

//! VACUUM: removing tuple versions no snapshot can see any more, and their index entries.

use std::collections::BTreeSet;
use std::future::Future;
use std::time::Duration;

use pgxc_common::{Gxid, PgError};
use redb::{ReadableDatabase, ReadableTable};

use super::catalog::{heap_table, index_table, RelKind};
use super::store::{be, from_be, io, open_read, tdef, Store, VacuumStats};
use super::tuple::{decode_tuple, Tid};
use super::visibility::is_dead;

/// Dead versions removed per redb write transaction.
const BATCH: usize = 1024;

impl Store {
    /// VACUUM every relation: remove versions dead below `horizon` (the GTM's global xmin; it is
    /// clamped by the snapshots of transactions open here) and their index entries.
    ///
    /// Errors: 58030 / XX001 from the disk.
    pub fn vacuum(&self, horizon: Gxid) -> Result<VacuumStats, PgError> {
        let tables: Vec<(u64, Vec<u64>)> = {
            let st = self.state();
            st.check_usable()?;
            let mut v = Vec::new();
            for e in st.catalog.values() {
                if e.def.kind != RelKind::Table {
                    continue;
                }
                let idx = |pick: &dyn Fn(&super::catalog::RelEntry) -> Option<u64>| -> Vec<u64> {
                    st.catalog
                        .values()
                        .filter(|i| matches!(i.def.kind, RelKind::Index { table, .. } if table == e.def.id))
                        .filter_map(pick)
                        .collect()
                };
                v.push((e.sid, idx(&|i| Some(i.sid))));
                if let Some((_, s)) = e.truncated {
                    v.push((s, idx(&|i| i.truncated.map(|t| t.1))));
                }
            }
            v
        };
        let mut stats = VacuumStats {
            horizon: self.state().clamp_horizon(horizon),
            ..VacuumStats::default()
        };
        for (heap_sid, index_sids) in tables {
            self.vacuum_heap(heap_sid, &index_sids, horizon, &mut stats)?;
        }
        Ok(stats)
    }

    fn vacuum_heap(
        &self,
        heap_sid: u64,
        index_sids: &[u64],
        horizon: Gxid,
        stats: &mut VacuumStats,
    ) -> Result<(), PgError> {
        let mut after: Option<Vec<u8>> = None;
        loop {
            // Find candidates with a read transaction.
            let (dead, more) = {
                let st = self.state();
                let h = st.clamp_horizon(horizon);
                let r = self.db().begin_read().map_err(io)?;
                let Some(t) = open_read(&r, &heap_table(heap_sid))? else {
                    return Ok(());
                };
                let lower = after
                    .as_deref()
                    .map_or(std::ops::Bound::Unbounded, std::ops::Bound::Excluded);
                let mut dead = Vec::new();
                let mut more = false;
                for e in t
                    .range::<&[u8]>((lower, std::ops::Bound::Unbounded))
                    .map_err(io)?
                {
                    let (k, v) = e.map_err(io)?;
                    after = Some(k.value().to_vec());
                    let (hdr, _) = decode_tuple(v.value())?;
                    if is_dead(&hdr, h, |x| st.status(x)) {
                        dead.push(Tid(from_be(k.value())?));
                        if dead.len() >= BATCH {
                            more = true;
                            break;
                        }
                    }
                }
                (dead, more)
            };
            if !dead.is_empty() {
                // Re-check and remove in one write transaction.
                let removed = self.with_write(|c| {
                    let h = c.st.clamp_horizon(horizon);
                    let mut gone = BTreeSet::new();
                    {
                        let mut t = c.w.open_table(tdef(&heap_table(heap_sid))).map_err(io)?;
                        for tid in &dead {
                            let still = match t.get(be(tid.0).as_slice()).map_err(io)? {
                                Some(v) => {
                                    is_dead(&decode_tuple(v.value())?.0, h, |x| c.st.status(x))
                                }
                                None => false,
                            };
                            if still {
                                t.remove(be(tid.0).as_slice()).map_err(io)?;
                                gone.insert(*tid);
                            }
                        }
                    }
                    let mut entries = 0u64;
                    for sid in index_sids {
                        let mut t = c.w.open_table(tdef(&index_table(*sid))).map_err(io)?;
                        t.retain(|k, _| {
                            let keep = match k
                                .len()
                                .checked_sub(8)
                                .and_then(|at| k[at..].try_into().ok())
                            {
                                Some(b) => !gone.contains(&Tid(u64::from_be_bytes(b))),
                                None => true,
                            };
                            if !keep {
                                entries += 1;
                            }
                            keep
                        })
                        .map_err(io)?;
                    }
                    Ok((gone.len() as u64, entries))
                })?;
                stats.tuples_removed += removed.0;
                stats.index_entries_removed += removed.1;
            }
            if !more {
                return Ok(());
            }
        }
    }

    /// Run VACUUM every `interval` in a background task (PostgreSQL's autovacuum), with the
    /// horizon from `horizon()` (e.g. the GTM's global xmin; `None` skips a round). The task is
    /// detached: abort the returned handle to stop it.
    pub fn spawn_autovacuum<F, Fut>(
        &self,
        interval: Duration,
        horizon: F,
    ) -> tokio::task::JoinHandle<()>
    where
        F: Fn() -> Fut + Send + 'static,
        Fut: Future<Output = Option<Gxid>> + Send,
    {
        let store = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                if let Some(h) = horizon().await {
                    match store.vacuum(h) {
                        Ok(s) if s.tuples_removed > 0 => {
                            tracing::debug!(removed = s.tuples_removed, horizon = %s.horizon, "autovacuum")
                        }
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, "autovacuum failed"),
                    }
                }
            }
        })
    }
}

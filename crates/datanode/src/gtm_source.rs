//! The cluster's GTM as an engine's source of GXIDs and snapshots.

use pgxc_common::{Gxid, PgError, Snapshot};
use pgxc_gtm::client::GtmClient;
use pgxc_sql::engine::TxnSource;

/// [`TxnSource`] over a GTM client (usually the coordinator's or datanode's GTM proxy). Calls
/// block the calling thread until the GTM answers, so they must run on a session thread or in
/// `spawn_blocking`, never on an async worker.
pub struct GtmTxnSource {
    #[cfg_attr(madsim, allow(dead_code))]
    client: GtmClient,
}

impl GtmTxnSource {
    /// A source over `client`.
    pub fn new(client: GtmClient) -> GtmTxnSource {
        GtmTxnSource { client }
    }
}

#[cfg(not(madsim))]
impl TxnSource for GtmTxnSource {
    fn begin(&self) -> Result<(Gxid, Snapshot), PgError> {
        pollster::block_on(self.client.begin_snapshot())
    }

    fn snapshot(&self) -> Result<Snapshot, PgError> {
        pollster::block_on(self.client.snapshot(None))
    }

    fn end(&self, xid: Gxid, committed: bool) {
        let r = if committed {
            pollster::block_on(self.client.commit(xid))
        } else {
            pollster::block_on(self.client.abort(xid))
        };
        if let Err(e) = r {
            // The GTM ends an abandoned GXID when the session's lease lapses; the local outcome
            // is already durable, so this only delays the xmin horizon.
            tracing::warn!(%xid, "could not report the end of a datanode-local transaction: {e}");
        }
    }
}

/// Under madsim no call may block the simulation's only thread: every call fails with XX000
/// (a simulated datanode takes its GXIDs from a source that asked the GTM ahead, in `pgxc-sim`).
#[cfg(madsim)]
impl TxnSource for GtmTxnSource {
    fn begin(&self) -> Result<(Gxid, Snapshot), PgError> {
        Err(blocking_in_sim())
    }

    fn snapshot(&self) -> Result<Snapshot, PgError> {
        Err(blocking_in_sim())
    }

    fn end(&self, xid: Gxid, _committed: bool) {
        tracing::warn!(%xid, "GtmTxnSource cannot report under madsim");
    }
}

#[cfg(madsim)]
fn blocking_in_sim() -> PgError {
    PgError::new(
        pgxc_common::SqlState::InternalError,
        "GtmTxnSource blocks its thread and cannot run under madsim",
    )
}

//! The cluster's GTM as an engine's source of GXIDs and snapshots.

use pgxc_common::{Gxid, PgError, Snapshot};
use pgxc_gtm::client::GtmClient;
use pgxc_sql::engine::TxnSource;

/// [`TxnSource`] over a GTM client (usually the coordinator's or datanode's GTM proxy). Calls
/// block the calling thread until the GTM answers, so they must run on a session thread or in
/// `spawn_blocking`, never on an async worker.
pub struct GtmTxnSource {
    client: GtmClient,
}

impl GtmTxnSource {
    /// A source over `client`.
    pub fn new(client: GtmClient) -> GtmTxnSource {
        GtmTxnSource { client }
    }
}

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

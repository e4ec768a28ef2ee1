//! The GTM as a coordinator catalog engine's source of GXIDs, snapshots **and sequences**
//! (Postgres-XC's global sequences: every `nextval` on any coordinator is handed out by the GTM,
//! so a `serial` column never gets the same value twice however many coordinators insert).
//!
//! The engine keeps each sequence's definition in its catalog (so it can answer "does not
//! exist" and check `setval`'s bounds itself) and asks [`ClusterTxnSource`] for the values. The
//! sequence DDL (create, alter, drop) is applied to the GTM only by the coordinator where the DDL
//! originated: its client sessions' catalog threads are marked with [`mark_origin_thread`];
//! the same DDL replayed on another coordinator's catalog (through the coordinator protocol) or
//! on a datanode changes only that node's local definition.

use std::cell::Cell;

use pgxc_common::{Gxid, PgError, Snapshot};
use pgxc_datanode::gtm_source::GtmTxnSource;
use pgxc_gtm::client::GtmClient;
use pgxc_gtm::proto::SeqOptions;
use pgxc_sql::engine::{GlobalSequences, SeqDef, TxnSource};

thread_local! {
    /// Set on the catalog thread of a coordinator's client session (see [`mark_origin_thread`]).
    static ORIGIN: Cell<bool> = const { Cell::new(false) };
}

/// Mark the calling thread as a client session's catalog thread: sequence DDL the engine runs on
/// it is applied to the GTM. Called once by [`crate::session::CoordSession::new`] on its thread.
pub fn mark_origin_thread() {
    ORIGIN.with(|o| o.set(true));
}

fn is_origin() -> bool {
    ORIGIN.try_with(Cell::get).unwrap_or(false)
}

/// [`TxnSource`] over a GTM client, with the GTM's sequences as the engine's
/// ([`TxnSource::sequences`]). Calls block the calling thread until the GTM answers, so they must
/// run on a session thread or in `spawn_blocking`, never on an async worker.
pub struct ClusterTxnSource {
    txns: GtmTxnSource,
    client: GtmClient,
}

impl ClusterTxnSource {
    /// A source over `client` (usually the coordinator's GTM proxy connection).
    pub fn new(client: GtmClient) -> ClusterTxnSource {
        ClusterTxnSource {
            txns: GtmTxnSource::new(client.clone()),
            client,
        }
    }
}

impl TxnSource for ClusterTxnSource {
    fn begin(&self) -> Result<(Gxid, Snapshot), PgError> {
        self.txns.begin()
    }

    fn snapshot(&self) -> Result<Snapshot, PgError> {
        self.txns.snapshot()
    }

    fn end(&self, xid: Gxid, committed: bool) {
        self.txns.end(xid, committed)
    }

    fn sequences(&self) -> Option<&dyn GlobalSequences> {
        Some(self)
    }
}

fn options(def: &SeqDef, restart: Option<Option<i64>>) -> SeqOptions {
    SeqOptions {
        data_type: None,
        increment: Some(def.increment),
        min_value: Some(Some(def.min)),
        max_value: Some(Some(def.max)),
        start: Some(def.start),
        restart,
        cache: None,
        cycle: Some(def.cycle),
    }
}

impl GlobalSequences for ClusterTxnSource {
    fn create(&self, key: &str, def: &SeqDef) -> Result<(), PgError> {
        if !is_origin() {
            return Ok(());
        }
        pollster::block_on(self.client.create_sequence(key, options(def, None), false))
    }

    fn alter(&self, key: &str, def: &SeqDef, restart: Option<i64>) -> Result<(), PgError> {
        if !is_origin() {
            return Ok(());
        }
        pollster::block_on(
            self.client
                .alter_sequence(key, options(def, restart.map(Some)), false),
        )
    }

    fn drop(&self, key: &str) -> Result<(), PgError> {
        if !is_origin() {
            return Ok(());
        }
        pollster::block_on(self.client.drop_sequence(key, true))
    }

    fn nextval(&self, key: &str) -> Result<i64, PgError> {
        pollster::block_on(self.client.nextval(key))
    }

    fn setval(&self, key: &str, value: i64, is_called: bool) -> Result<i64, PgError> {
        pollster::block_on(self.client.setval(key, value, is_called))
    }

    fn position(&self, key: &str) -> Result<(i64, bool), PgError> {
        let info = pollster::block_on(self.client.get_sequence(key))?;
        Ok((info.last_value, info.is_called))
    }
}

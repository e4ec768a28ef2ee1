//! The PostgreSQL wire protocol in front of a coordinator: `pgxc_wire`'s server with
//! [`CoordSession`]s, each driven from its session thread on the process's runtime.

use std::sync::Arc;

use pgxc_common::{PgError, SqlState};
use pgxc_sql::engine::CopyOut;
use pgxc_sql::parser;
use pgxc_sql::types::TimeZone;
use pgxc_sql::QueryResult;
use pgxc_wire::WireSession;
use tokio::net::TcpListener;
use tokio::runtime::Handle;

use crate::node::Coordinator;
use crate::session::CoordSession;

/// A [`CoordSession`] with the synchronous face `pgxc_wire` drives: every call blocks the
/// session thread on the process runtime (`Handle::block_on`), so pooled datanode connections
/// and the GTM client keep being driven by that runtime.
pub struct WireCoordSession {
    handle: Handle,
    inner: CoordSession,
}

impl WireCoordSession {
    /// A new session on `coord`. Errors: XX000 if its catalog session cannot start.
    pub fn new(coord: &Arc<Coordinator>, handle: Handle) -> Result<WireCoordSession, PgError> {
        Ok(WireCoordSession {
            handle,
            inner: CoordSession::new(coord)?,
        })
    }
}

impl WireSession for WireCoordSession {
    fn execute(&mut self, sql: &str) -> Result<Vec<QueryResult>, PgError> {
        self.handle.block_on(self.inner.execute(sql))
    }
    fn transaction_status(&self) -> u8 {
        if self.inner.in_failed_transaction() {
            b'E'
        } else if self.inner.in_transaction() {
            b'T'
        } else {
            b'I'
        }
    }
    fn in_failed_transaction(&self) -> bool {
        self.inner.in_failed_transaction()
    }
    fn fail_transaction_block(&mut self) {
        self.inner.mark_failed();
    }
    fn time_zone(&self) -> TimeZone {
        TimeZone::utc()
    }
    fn copy_in(&mut self, stmt: &parser::Copy, data: &[u8]) -> Result<QueryResult, PgError> {
        self.handle.block_on(self.inner.copy_in(stmt, data))
    }
    fn copy_out(&mut self, _stmt: &parser::Copy) -> Result<CopyOut, PgError> {
        Err(PgError::new(
            SqlState::FeatureNotSupported,
            "COPY TO STDOUT is not supported on a coordinator yet",
        ))
    }
}

/// Serve clients of `coord` on `listener` until it fails. Must run inside the process's
/// multi-threaded runtime.
pub async fn serve(listener: TcpListener, coord: Arc<Coordinator>) -> std::io::Result<()> {
    let handle = Handle::current();
    pgxc_wire::serve_with(listener, move || {
        WireCoordSession::new(&coord, handle.clone()).map_err(|e| std::io::Error::other(e.message))
    })
    .await
}

//! pgxc-common: the vocabulary every pgxc component shares.
//!
//! - [`Gxid`] and [`Snapshot`]: global transaction ids and global snapshots, with PostgreSQL's meaning
//!   (`xmin`, `xmax`, `xip`), as handed out by the GTM (Postgres-XC's `GlobalTransactionId` / `GTM_Snapshot`).
//! - [`SqlState`] and [`PgError`]: the one mapping from pgxc errors to PostgreSQL SQLSTATE codes.
//! - [`failpoint`]: named crash points armed by `PGXC_FAILPOINTS`, for real-process fault tests.
//! - [`frame`]: the length-prefixed binary framing used on every pgxc-internal TCP link (GTM, proxy, Raft).
//!
//! Determinism: this crate reaches tokio only through the workspace alias (`madsim-tokio`), so it runs unchanged
//! under `--cfg madsim`.

pub mod error;
pub mod failpoint;
pub mod frame;
pub mod txn;

pub use error::{PgError, SqlState};
pub use txn::{Gxid, Snapshot};

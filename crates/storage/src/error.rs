//! [`StorageError`]: the one error type of the storage seam, and its mapping to [`PgError`].

use pgxc_common::{PgError, SqlState};

/// An error from the storage seam.
///
/// Every redb error is classified into one of three kinds; the message keeps redb's description and
/// the name of the database file involved where known.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    /// The disk failed: a read, write, `set_len` or sync returned an error, the handle was fenced
    /// by a simulated crash, or an earlier I/O failure left the database unusable until it is
    /// reopened. Maps to SQLSTATE 58030 (`io_error`).
    #[error("storage i/o error: {0}")]
    Io(String),
    /// redb found a damaged file (a checksum or structure failure, an unknown format version, or
    /// an aborted repair). Maps to SQLSTATE XX001 (`data_corrupted`).
    #[error("storage corruption: {0}")]
    Corruption(String),
    /// The caller used the seam wrongly: an invalid file name, a database file already open
    /// elsewhere, a value too large for redb, a table opened with another type. A bug, not a
    /// disk condition. Maps to SQLSTATE XX000 (`internal_error`).
    #[error("storage misuse: {0}")]
    Misuse(String),
}

impl StorageError {
    /// Whether this is an [`StorageError::Io`] error.
    pub fn is_io(&self) -> bool {
        matches!(self, StorageError::Io(_))
    }

    /// Whether this is a [`StorageError::Corruption`] error.
    pub fn is_corruption(&self) -> bool {
        matches!(self, StorageError::Corruption(_))
    }
}

impl From<StorageError> for PgError {
    fn from(err: StorageError) -> PgError {
        let code = match &err {
            StorageError::Io(_) => SqlState::IoError,
            StorageError::Corruption(_) => SqlState::DataCorrupted,
            StorageError::Misuse(_) => SqlState::InternalError,
        };
        PgError::new(code, err.to_string())
    }
}

impl From<std::io::Error> for StorageError {
    fn from(err: std::io::Error) -> StorageError {
        StorageError::Io(err.to_string())
    }
}

impl From<redb::StorageError> for StorageError {
    fn from(err: redb::StorageError) -> StorageError {
        StorageError::from(redb::Error::from(err))
    }
}

impl From<redb::DatabaseError> for StorageError {
    fn from(err: redb::DatabaseError) -> StorageError {
        StorageError::from(redb::Error::from(err))
    }
}

impl From<redb::TransactionError> for StorageError {
    fn from(err: redb::TransactionError) -> StorageError {
        StorageError::from(redb::Error::from(err))
    }
}

impl From<redb::TableError> for StorageError {
    fn from(err: redb::TableError) -> StorageError {
        StorageError::from(redb::Error::from(err))
    }
}

impl From<redb::CommitError> for StorageError {
    fn from(err: redb::CommitError) -> StorageError {
        StorageError::from(redb::Error::from(err))
    }
}

impl From<redb::SetDurabilityError> for StorageError {
    fn from(err: redb::SetDurabilityError) -> StorageError {
        StorageError::from(redb::Error::from(err))
    }
}

impl From<redb::Error> for StorageError {
    fn from(err: redb::Error) -> StorageError {
        use redb::Error as E;
        let msg = err.to_string();
        match err {
            E::Io(_) | E::Backend(_) | E::PreviousIo => StorageError::Io(msg),
            E::Corrupted(_) | E::UpgradeRequired(_) | E::RepairAborted => {
                StorageError::Corruption(msg)
            }
            _ => StorageError::Misuse(msg),
        }
    }
}

/// The result type of the storage seam.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;

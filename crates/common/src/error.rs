//! The one mapping from pgxc errors to PostgreSQL SQLSTATE codes.
//!
//! Every error that can reach a client is a [`PgError`]: a [`SqlState`] plus a message, as PostgreSQL's
//! `ereport(ERROR, (errcode(...), errmsg(...)))`. Components add variants here, never their own codes.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A PostgreSQL SQLSTATE (PostgreSQL 15, Appendix A "PostgreSQL Error Codes").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SqlState {
    /// 08000 connection_exception: a GTM or node link failed and the request may be retried elsewhere.
    ConnectionException,
    /// 08006 connection_failure: the peer closed or could not be reached.
    ConnectionFailure,
    /// 08007 transaction_resolution_unknown: the outcome of a commit is not known yet ("in doubt").
    TransactionResolutionUnknown,
    /// 08P01 protocol_violation: a malformed or oversized message.
    ProtocolViolation,
    /// 0A000 feature_not_supported.
    FeatureNotSupported,
    /// 22003 numeric_value_out_of_range.
    NumericValueOutOfRange,
    /// 22023 invalid_parameter_value (e.g. `INCREMENT must not be zero`).
    InvalidParameterValue,
    /// 2200H sequence_generator_limit_exceeded (`nextval: reached maximum value of sequence`).
    SequenceGeneratorLimitExceeded,
    /// 23505 unique_violation (`duplicate key value violates unique constraint "name"`).
    UniqueViolation,
    /// 25000 invalid_transaction_state (e.g. an operation on a transaction that already ended or failed).
    InvalidTransactionState,
    /// 25P02 in_failed_sql_transaction.
    InFailedSqlTransaction,
    /// 40001 serialization_failure.
    SerializationFailure,
    /// 40P01 deadlock_detected.
    DeadlockDetected,
    /// 42601 syntax_error.
    SyntaxError,
    /// 42704 undefined_object (e.g. an unknown prepared transaction gid).
    UndefinedObject,
    /// 42P01 undefined_table (PostgreSQL reports a missing sequence with this code).
    UndefinedTable,
    /// 42P07 duplicate_table (a sequence that already exists).
    DuplicateTable,
    /// 42710 duplicate_object (e.g. a gid already in use).
    DuplicateObject,
    /// 55000 object_not_in_prerequisite_state (`currval of sequence "s" is not yet defined in this session`).
    ObjectNotInPrerequisiteState,
    /// 55P03 lock_not_available (`canceling statement due to lock timeout`, `could not obtain lock`).
    LockNotAvailable,
    /// 57014 query_canceled (`canceling statement due to user request`).
    QueryCanceled,
    /// 57P01 admin_shutdown.
    AdminShutdown,
    /// 57P03 cannot_connect_now: the server is starting, recovering, or not the leader.
    CannotConnectNow,
    /// 58030 io_error: the disk failed.
    IoError,
    /// XX000 internal_error.
    InternalError,
    /// XX001 data_corrupted: a checksum or decode failure on data read back from disk.
    DataCorrupted,
}

impl SqlState {
    /// The five-character code, e.g. `"40001"`.
    pub fn code(self) -> &'static str {
        use SqlState::*;
        match self {
            ConnectionException => "08000",
            ConnectionFailure => "08006",
            TransactionResolutionUnknown => "08007",
            ProtocolViolation => "08P01",
            FeatureNotSupported => "0A000",
            NumericValueOutOfRange => "22003",
            InvalidParameterValue => "22023",
            SequenceGeneratorLimitExceeded => "2200H",
            UniqueViolation => "23505",
            InvalidTransactionState => "25000",
            InFailedSqlTransaction => "25P02",
            SerializationFailure => "40001",
            DeadlockDetected => "40P01",
            SyntaxError => "42601",
            UndefinedObject => "42704",
            UndefinedTable => "42P01",
            DuplicateTable => "42P07",
            DuplicateObject => "42710",
            ObjectNotInPrerequisiteState => "55000",
            LockNotAvailable => "55P03",
            QueryCanceled => "57014",
            AdminShutdown => "57P01",
            CannotConnectNow => "57P03",
            IoError => "58030",
            InternalError => "XX000",
            DataCorrupted => "XX001",
        }
    }
}

/// An error with a SQLSTATE and a PostgreSQL-style message (lower case, no trailing period).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message} (SQLSTATE {})", code.code())]
pub struct PgError {
    /// The SQLSTATE sent to the client.
    pub code: SqlState,
    /// The primary message (`errmsg`).
    pub message: String,
}

impl PgError {
    /// Build an error from a code and a message.
    pub fn new(code: SqlState, message: impl Into<String>) -> PgError {
        PgError {
            code,
            message: message.into(),
        }
    }
}

impl fmt::Display for SqlState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

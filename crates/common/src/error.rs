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
    /// 22001 string_data_right_truncation (`value too long for type character varying(3)`).
    StringDataRightTruncation,
    /// 22003 numeric_value_out_of_range.
    NumericValueOutOfRange,
    /// 22007 invalid_datetime_format (`invalid input syntax for type date: "x"`).
    InvalidDatetimeFormat,
    /// 22008 datetime_field_overflow (`date/time field value out of range: "2024-02-30"`).
    DatetimeFieldOverflow,
    /// 22009 invalid_time_zone_displacement_value.
    InvalidTimeZoneDisplacementValue,
    /// 22012 division_by_zero.
    DivisionByZero,
    /// 2201F invalid_argument_for_power_function (`cannot take square root of a negative number`).
    InvalidArgumentForPowerFunction,
    /// 2201E invalid_argument_for_logarithm.
    InvalidArgumentForLogarithm,
    /// 2201W invalid_row_count_in_limit_clause.
    InvalidRowCountInLimitClause,
    /// 2201X invalid_row_count_in_result_offset_clause.
    InvalidRowCountInResultOffsetClause,
    /// 54000 program_limit_exceeded.
    ProgramLimitExceeded,
    /// 3B001 invalid_savepoint_specification.
    InvalidSavepointSpecification,
    /// 22P05 untranslatable_character (`unsupported Unicode escape sequence`).
    UntranslatableCharacter,
    /// 22021 character_not_in_repertoire (`invalid byte sequence for encoding "UTF8": 0xff`).
    CharacterNotInRepertoire,
    /// 22015 interval_field_overflow (`interval field value out of range: "1:70"`).
    IntervalFieldOverflow,
    /// 22P02 invalid_text_representation (`invalid input syntax for type integer: "abc"`).
    InvalidTextRepresentation,
    /// 22P04 bad_copy_file_format.
    BadCopyFileFormat,
    /// 22P03 invalid_binary_representation (a malformed binary-format parameter).
    InvalidBinaryRepresentation,
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
    /// 25006 read_only_sql_transaction: a write in a READ ONLY transaction.
    ReadOnlySqlTransaction,
    /// 42602 invalid_name: a malformed name (e.g. too many dotted parts in a regclass literal).
    InvalidName,
    /// 40000 transaction_rollback: a transaction ended in rollback where commit was asked (a
    /// datanode answered COMMIT or PREPARE with ROLLBACK).
    TransactionRollback,
    /// 40001 serialization_failure.
    SerializationFailure,
    /// 40P01 deadlock_detected.
    DeadlockDetected,
    /// 42601 syntax_error.
    SyntaxError,
    /// 54001 statement_too_complex (`stack depth limit exceeded`, e.g. too deeply nested SQL).
    StatementTooComplex,
    /// 42804 datatype_mismatch.
    DatatypeMismatch,
    /// 42846 cannot_coerce (`cannot cast type boolean to date`).
    CannotCoerce,
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
    /// 23502 not_null_violation (`null value in column "c" of relation "t" violates not-null constraint`).
    NotNullViolation,
    /// 23503 foreign_key_violation.
    ForeignKeyViolation,
    /// 23514 check_violation.
    CheckViolation,
    /// 21000 cardinality_violation (`more than one row returned by a subquery used as an expression`).
    CardinalityViolation,
    /// 25001 active_sql_transaction (`there is already a transaction in progress` is a warning; errors such as `VACUUM cannot run inside a transaction block`).
    ActiveSqlTransaction,
    /// 25P01 no_active_sql_transaction.
    NoActiveSqlTransaction,
    /// 34000 invalid_cursor_name (`cursor "c" does not exist`).
    InvalidCursorName,
    /// 24000 invalid_cursor_state (`cursor "c" is not positioned on a row`).
    InvalidCursorState,
    /// 42712 duplicate_alias (`table name "a" specified more than once`).
    DuplicateAlias,
    /// 22013 invalid_preceding_or_following_size (`frame starting offset must not be negative`).
    InvalidPrecedingOrFollowingSize,
    /// 42701 duplicate_column.
    DuplicateColumn,
    /// 42P16 invalid_table_definition (e.g. two primary keys).
    InvalidTableDefinition,
    /// 428C9 generated_always (a value for a GENERATED ALWAYS column).
    GeneratedAlways,
    /// 22025 invalid_escape_sequence.
    InvalidEscapeSequence,
    /// 2201B invalid_regular_expression.
    InvalidRegularExpression,
    /// 22004 null_value_not_allowed.
    NullValueNotAllowed,
    /// 22011 `substring_error` (a negative substring length).
    SubstringError,
    /// 2201G invalid_argument_for_width_bucket_function.
    InvalidArgumentForWidthBucket,
    /// 2202E array_subscript_error.
    ArraySubscriptError,
    /// 42P06 duplicate_schema.
    DuplicateSchema,
    /// 3F000 invalid_schema_name.
    InvalidSchemaName,
    /// 42P03 duplicate_cursor.
    DuplicateCursor,
    /// 42P20 windowing_error.
    WindowingError,
    /// 22014 invalid_argument_for_ntile_function.
    InvalidArgumentForNtile,
    /// 22016 invalid_argument_for_nth_value_function.
    InvalidArgumentForNthValue,
    /// 42830 invalid_foreign_key.
    InvalidForeignKey,
    /// 42P05 duplicate_prepared_statement.
    DuplicatePreparedStatement,
    /// 26000 invalid_sql_statement_name (unknown prepared statement).
    InvalidSqlStatementName,
    /// 42P02 undefined_parameter.
    UndefinedParameter,
    /// 42P19 invalid_recursion.
    InvalidRecursion,
    /// 2BP01 dependent_objects_still_exist.
    DependentObjectsStillExist,
    /// 42702 ambiguous_column (`column reference "c" is ambiguous`).
    AmbiguousColumn,
    /// 42703 undefined_column (`column "c" does not exist`).
    UndefinedColumn,
    /// 42803 grouping_error (`column "c" must appear in the GROUP BY clause or be used in an aggregate function`).
    GroupingError,
    /// 42883 undefined_function (`function f(integer) does not exist`, `operator does not exist: integer = text`).
    UndefinedFunction,
    /// 42809 wrong_object_type.
    WrongObjectType,
    /// 42P10 invalid_column_reference.
    InvalidColumnReference,
    /// 53200 out_of_memory (a sort or hash beyond its memory budget).
    OutOfMemory,
    /// XX000 internal_error.
    InternalError,
    /// XX001 data_corrupted: a checksum or decode failure on data read back from disk.
    DataCorrupted,
    /// 28P01 invalid_password (`password authentication failed for user "u"`: a failed SCRAM
    /// exchange, also for an unknown user, as PostgreSQL answers).
    InvalidPassword,
    /// 00000 successful_completion: the code of a NOTICE such as `table "t" does not exist,
    /// skipping` (never an error's code).
    SuccessfulCompletion,
    /// 01000 warning: a WARNING without a more specific code.
    Warning,
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
            StringDataRightTruncation => "22001",
            NumericValueOutOfRange => "22003",
            InvalidDatetimeFormat => "22007",
            DatetimeFieldOverflow => "22008",
            InvalidTimeZoneDisplacementValue => "22009",
            DivisionByZero => "22012",
            InvalidArgumentForPowerFunction => "2201F",
            InvalidArgumentForLogarithm => "2201E",
            InvalidRowCountInLimitClause => "2201W",
            InvalidRowCountInResultOffsetClause => "2201X",
            ProgramLimitExceeded => "54000",
            InvalidSavepointSpecification => "3B001",
            UntranslatableCharacter => "22P05",
            CharacterNotInRepertoire => "22021",
            IntervalFieldOverflow => "22015",
            InvalidTextRepresentation => "22P02",
            BadCopyFileFormat => "22P04",
            InvalidBinaryRepresentation => "22P03",
            InvalidParameterValue => "22023",
            SequenceGeneratorLimitExceeded => "2200H",
            UniqueViolation => "23505",
            InvalidTransactionState => "25000",
            InFailedSqlTransaction => "25P02",
            ReadOnlySqlTransaction => "25006",
            TransactionRollback => "40000",
            InvalidName => "42602",
            SerializationFailure => "40001",
            DeadlockDetected => "40P01",
            SyntaxError => "42601",
            StatementTooComplex => "54001",
            DatatypeMismatch => "42804",
            CannotCoerce => "42846",
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
            NotNullViolation => "23502",
            ForeignKeyViolation => "23503",
            CheckViolation => "23514",
            CardinalityViolation => "21000",
            ActiveSqlTransaction => "25001",
            NoActiveSqlTransaction => "25P01",
            InvalidCursorName => "34000",
            InvalidCursorState => "24000",
            DuplicateAlias => "42712",
            InvalidPrecedingOrFollowingSize => "22013",
            DuplicateColumn => "42701",
            InvalidTableDefinition => "42P16",
            GeneratedAlways => "428C9",
            InvalidEscapeSequence => "22025",
            InvalidRegularExpression => "2201B",
            NullValueNotAllowed => "22004",
            SubstringError => "22011",
            InvalidArgumentForWidthBucket => "2201G",
            ArraySubscriptError => "2202E",
            DuplicateSchema => "42P06",
            InvalidSchemaName => "3F000",
            DuplicateCursor => "42P03",
            WindowingError => "42P20",
            InvalidArgumentForNtile => "22014",
            InvalidArgumentForNthValue => "22016",
            InvalidForeignKey => "42830",
            DuplicatePreparedStatement => "42P05",
            InvalidSqlStatementName => "26000",
            UndefinedParameter => "42P02",
            InvalidRecursion => "42P19",
            DependentObjectsStillExist => "2BP01",
            AmbiguousColumn => "42702",
            UndefinedColumn => "42703",
            GroupingError => "42803",
            UndefinedFunction => "42883",
            WrongObjectType => "42809",
            InvalidColumnReference => "42P10",
            OutOfMemory => "53200",
            InternalError => "XX000",
            DataCorrupted => "XX001",
            InvalidPassword => "28P01",
            SuccessfulCompletion => "00000",
            Warning => "01000",
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
    /// The 1-based character position in the query string that the error refers to (the `P` field of an
    /// ErrorResponse), e.g. the offending token of a syntax error.
    #[serde(default)]
    pub position: Option<u32>,
}

impl PgError {
    /// Build an error from a code and a message.
    pub fn new(code: SqlState, message: impl Into<String>) -> PgError {
        PgError {
            code,
            message: message.into(),
            position: None,
        }
    }

    /// The same error with a 1-based character position in the query string.
    pub fn with_position(mut self, position: u32) -> PgError {
        self.position = Some(position);
        self
    }
}

impl fmt::Display for SqlState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// The severity of a [`Notice`] (the `S`/`V` fields of a NoticeResponse).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum NoticeSeverity {
    /// `NOTICE` (e.g. `table "t" does not exist, skipping`, SQLSTATE 00000).
    Notice,
    /// `WARNING` (e.g. `there is no transaction in progress`, SQLSTATE 25P01).
    Warning,
}

impl NoticeSeverity {
    /// The word PostgreSQL sends: `NOTICE` or `WARNING`.
    pub fn as_str(self) -> &'static str {
        match self {
            NoticeSeverity::Notice => "NOTICE",
            NoticeSeverity::Warning => "WARNING",
        }
    }
}

/// A non-error message a statement reports to the client (PostgreSQL's `ereport(NOTICE)` /
/// `ereport(WARNING)`), sent as a NoticeResponse before the statement's CommandComplete.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Notice {
    /// NOTICE or WARNING.
    pub severity: NoticeSeverity,
    /// The SQLSTATE (00000 for plain notices).
    pub code: SqlState,
    /// The primary message, in PostgreSQL's words.
    pub message: String,
}

impl Notice {
    /// A NOTICE with SQLSTATE 00000.
    pub fn info(message: impl Into<String>) -> Notice {
        Notice {
            severity: NoticeSeverity::Notice,
            code: SqlState::SuccessfulCompletion,
            message: message.into(),
        }
    }

    /// A WARNING with SQLSTATE `code`.
    pub fn warning(code: SqlState, message: impl Into<String>) -> Notice {
        Notice {
            severity: NoticeSeverity::Warning,
            code,
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod notice_tests {
    use super::*;

    #[test]
    fn new_codes_and_notices() {
        assert_eq!(SqlState::InvalidPassword.code(), "28P01");
        assert_eq!(SqlState::SuccessfulCompletion.code(), "00000");
        let n = Notice::info("table \"t\" does not exist, skipping");
        assert_eq!((n.severity.as_str(), n.code.code()), ("NOTICE", "00000"));
        let w = Notice::warning(
            SqlState::NoActiveSqlTransaction,
            "there is no transaction in progress",
        );
        assert_eq!((w.severity.as_str(), w.code.code()), ("WARNING", "25P01"));
    }
}

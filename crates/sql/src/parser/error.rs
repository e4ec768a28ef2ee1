//! Syntax errors in PostgreSQL's shape: SQLSTATE 42601, `syntax error at or near "tok"` or
//! `syntax error at end of input`, with the 1-based character position of the offending token.

use pgxc_common::{PgError, SqlState};

use super::lexer::Token;

/// The 1-based character position of byte offset `byte` in `src`.
pub(crate) fn char_position(src: &str, byte: usize) -> u32 {
    let byte = byte.min(src.len());
    let n = match src.get(..byte) {
        Some(prefix) => prefix.chars().count(),
        None => src.char_indices().take_while(|(i, _)| *i < byte).count(),
    };
    u32::try_from(n + 1).unwrap_or(u32::MAX)
}

/// A 42601 error with a ready-made message at byte offset `byte`.
pub(crate) fn syntax_error_raw(src: &str, byte: usize, message: String) -> PgError {
    PgError::new(SqlState::SyntaxError, message).with_position(char_position(src, byte))
}

/// `syntax error at or near "<token text>"`.
pub(crate) fn syntax_error_at(src: &str, tok: &Token) -> PgError {
    let text = src.get(tok.start..tok.end).unwrap_or("");
    syntax_error_raw(
        src,
        tok.start,
        format!("syntax error at or near \"{text}\""),
    )
}

/// `syntax error at end of input`, positioned just past the end of the string (as PostgreSQL does).
pub(crate) fn syntax_error_end(src: &str) -> PgError {
    syntax_error_raw(src, src.len(), "syntax error at end of input".to_string())
}

/// The error for deeply nested input (sqlparser's recursion limit).
pub(crate) fn too_complex() -> PgError {
    PgError::new(SqlState::StatementTooComplex, "stack depth limit exceeded")
}

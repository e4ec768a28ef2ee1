//! `COPY ... FROM STDIN` / `COPY ... TO STDOUT`: PostgreSQL's text and CSV data formats.
//!
//! The wire server runs the copy sub-protocol (CopyInResponse, CopyData, CopyDone) and hands the
//! collected bytes to [`Session::copy_in`]; `COPY TO STDOUT` is [`Session::copy_out`], whose lines
//! the server sends as CopyData messages.
//!
//! The parsed fields go to the direct load path (`exec/load.rs`) as untyped text values, with no
//! SQL text in between: each column type's input function parses its field (the same conversion
//! as a string literal in INSERT, so `invalid input syntax for type integer: "x"` is 22P02 as
//! before), and the rows are written through the executor's insert path, so defaults,
//! constraints, indexes and foreign keys behave exactly as for INSERT. As PostgreSQL's COPY,
//! identity columns take the given values and, without a column list, stored generated columns
//! are left out. Outside a transaction block the whole COPY runs in one transaction (all rows or
//! none), as PostgreSQL's. Not yet: the binary format, `WHERE`, `FORCE_NOT_NULL` / `FORCE_NULL`,
//! and PostgreSQL's `CONTEXT: COPY t, line n` detail.

use pgxc_common::{PgError, SqlState};

use super::load::LoadMode;
use crate::engine::{QueryResult, Session};
use crate::parser::{Copy, CopySource, CopyTarget, OptionValue};
use crate::types::{DataType, Value};

/// The data format options of one COPY.
#[derive(Clone, Debug)]
struct Format {
    csv: bool,
    delimiter: char,
    null: String,
    header: bool,
    quote: char,
    escape: char,
}

fn bad(msg: impl Into<String>) -> PgError {
    PgError::new(SqlState::BadCopyFileFormat, msg)
}

fn option_str(v: &Option<OptionValue>) -> Option<String> {
    match v {
        Some(OptionValue::Str(s)) | Some(OptionValue::Word(s)) | Some(OptionValue::Number(s)) => {
            Some(s.clone())
        }
        _ => None,
    }
}

fn single_char(name: &str, v: &Option<OptionValue>) -> Result<char, PgError> {
    let s = option_str(v).unwrap_or_default();
    let mut it = s.chars();
    match (it.next(), it.next()) {
        (Some(c), None) => Ok(c),
        _ => Err(PgError::new(
            SqlState::FeatureNotSupported,
            format!("COPY {name} must be a single one-byte character"),
        )),
    }
}

impl Format {
    fn of(stmt: &Copy) -> Result<Format, PgError> {
        let mut csv = false;
        for o in &stmt.options {
            if o.name == "format" {
                match option_str(&o.value)
                    .as_deref()
                    .map(str::to_ascii_lowercase)
                    .as_deref()
                {
                    Some("text") => csv = false,
                    Some("csv") => csv = true,
                    Some("binary") => {
                        return Err(PgError::new(
                            SqlState::FeatureNotSupported,
                            "COPY BINARY is not supported yet",
                        ))
                    }
                    other => {
                        return Err(PgError::new(
                            SqlState::InvalidParameterValue,
                            format!("COPY format \"{}\" not recognized", other.unwrap_or("")),
                        ))
                    }
                }
            }
        }
        let mut f = Format {
            csv,
            delimiter: if csv { ',' } else { '\t' },
            null: if csv { String::new() } else { "\\N".into() },
            header: false,
            quote: '"',
            escape: '"',
        };
        let mut escape_set = false;
        for o in &stmt.options {
            match o.name.as_str() {
                "format" | "freeze" | "encoding" => {}
                "delimiter" => f.delimiter = single_char("delimiter", &o.value)?,
                "null" => f.null = option_str(&o.value).unwrap_or_default(),
                "header" => {
                    f.header = match option_str(&o.value) {
                        None => true,
                        Some(v) => !matches!(
                            v.to_ascii_lowercase().as_str(),
                            "false" | "off" | "0" | "no"
                        ),
                    }
                }
                "quote" => f.quote = single_char("quote", &o.value)?,
                "escape" => {
                    f.escape = single_char("escape", &o.value)?;
                    escape_set = true;
                }
                other => {
                    return Err(PgError::new(
                        SqlState::FeatureNotSupported,
                        format!("COPY option \"{other}\" is not supported yet"),
                    ))
                }
            }
        }
        if !escape_set {
            f.escape = f.quote;
        }
        Ok(f)
    }
}

/// Split text-format data into rows of fields (`None` = NULL).
fn parse_text(data: &str, f: &Format) -> Result<Vec<Vec<Option<String>>>, PgError> {
    let mut rows = Vec::new();
    let mut first = true;
    let data = data.strip_suffix('\n').unwrap_or(data);
    if data.is_empty() {
        return Ok(rows);
    }
    for line in data.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line == "\\." {
            break;
        }
        if std::mem::take(&mut first) && f.header {
            continue;
        }
        let mut fields = Vec::new();
        let mut raw = String::new();
        let mut val = String::new();
        let mut chars = line.chars().peekable();
        let push = |raw: &mut String, val: &mut String, fields: &mut Vec<Option<String>>| {
            if *raw == f.null {
                fields.push(None);
            } else {
                fields.push(Some(std::mem::take(val)));
            }
            raw.clear();
            val.clear();
        };
        while let Some(c) = chars.next() {
            if c == f.delimiter {
                push(&mut raw, &mut val, &mut fields);
                continue;
            }
            raw.push(c);
            if c != '\\' {
                val.push(c);
                continue;
            }
            let Some(e) = chars.next() else {
                break;
            };
            raw.push(e);
            match e {
                'b' => val.push('\u{8}'),
                'f' => val.push('\u{c}'),
                'n' => val.push('\n'),
                'r' => val.push('\r'),
                't' => val.push('\t'),
                'v' => val.push('\u{b}'),
                '0'..='7' => {
                    let mut n = e.to_digit(8).unwrap_or(0);
                    for _ in 0..2 {
                        match chars.peek().and_then(|d| d.to_digit(8)) {
                            Some(d) => {
                                n = n * 8 + d;
                                raw.push(chars.next().unwrap_or('0'));
                            }
                            None => break,
                        }
                    }
                    val.push(char::from_u32(n & 0xff).unwrap_or('\0'));
                }
                'x' if chars.peek().is_some_and(|d| d.is_ascii_hexdigit()) => {
                    let mut n = 0;
                    for _ in 0..2 {
                        match chars.peek().and_then(|d| d.to_digit(16)) {
                            Some(d) => {
                                n = n * 16 + d;
                                raw.push(chars.next().unwrap_or('0'));
                            }
                            None => break,
                        }
                    }
                    val.push(char::from_u32(n).unwrap_or('\0'));
                }
                other => val.push(other),
            }
        }
        push(&mut raw, &mut val, &mut fields);
        rows.push(fields);
    }
    Ok(rows)
}

/// Split CSV data into rows of fields (`None` = NULL: an unquoted field equal to the null string).
fn parse_csv(data: &str, f: &Format) -> Result<Vec<Vec<Option<String>>>, PgError> {
    let mut rows = Vec::new();
    let mut chars = data.chars().peekable();
    let mut first = true;
    loop {
        if chars.peek().is_none() {
            break;
        }
        // One record.
        let mut fields = Vec::new();
        let mut line_raw = String::new();
        loop {
            let mut val = String::new();
            let mut quoted = false;
            let mut ended_line = false;
            let mut at_end = false;
            loop {
                match chars.next() {
                    None => {
                        at_end = true;
                        break;
                    }
                    Some(c) if c == f.quote => {
                        quoted = true;
                        line_raw.push(c);
                        // Inside quotes until the closing quote.
                        loop {
                            match chars.next() {
                                None => return Err(bad("unterminated CSV quoted field")),
                                Some(q) if q == f.escape && chars.peek() == Some(&f.quote) => {
                                    if f.escape == f.quote {
                                        chars.next();
                                        val.push(f.quote);
                                    } else {
                                        val.push(chars.next().unwrap_or(f.quote));
                                    }
                                }
                                Some(q)
                                    if q == f.escape
                                        && f.escape != f.quote
                                        && chars.peek() == Some(&f.escape) =>
                                {
                                    chars.next();
                                    val.push(f.escape);
                                }
                                Some(q) if q == f.quote => break,
                                Some(q) => val.push(q),
                            }
                        }
                    }
                    Some(c) if c == f.delimiter => break,
                    Some('\n') => {
                        ended_line = true;
                        break;
                    }
                    Some('\r') => {
                        if chars.peek() == Some(&'\n') {
                            chars.next();
                        }
                        ended_line = true;
                        break;
                    }
                    Some(c) => {
                        line_raw.push(c);
                        val.push(c);
                    }
                }
            }
            if !quoted && val == f.null {
                fields.push(None);
            } else {
                fields.push(Some(val));
            }
            if ended_line || at_end {
                break;
            }
        }
        if fields.len() == 1 && !line_raw.contains(f.quote) && line_raw == "\\." {
            break;
        }
        if std::mem::take(&mut first) && f.header {
            continue;
        }
        rows.push(fields);
    }
    Ok(rows)
}

/// The rows of a `COPY ... TO STDOUT`, each line with its newline.
#[derive(Clone, Debug, PartialEq)]
pub struct CopyOut {
    /// The lines (a header line first if asked for).
    pub lines: Vec<Vec<u8>>,
    /// Data rows (the tag is `COPY rows`).
    pub rows: u64,
    /// Columns per row.
    pub columns: usize,
    /// CSV (`true`) or text format; both are "textual" on the wire.
    pub csv: bool,
}

impl Session {
    /// Transaction status for ReadyForQuery: `b'I'` idle, `b'T'` in a block, `b'E'` in a failed block.
    pub fn transaction_status(&self) -> u8 {
        if !self.in_transaction() {
            b'I'
        } else if self.in_failed_transaction() {
            b'E'
        } else {
            b'T'
        }
    }

    /// Load `data` (the concatenated CopyData payloads of a `COPY ... FROM STDIN`) into the table
    /// of `stmt`, in its text or CSV format. Returns the `COPY n` result.
    ///
    /// Errors: 22P04 for malformed data (wrong column count, an unterminated CSV quote), 0A000 for
    /// unsupported options, and any error the rows' INSERT raises (22P02, 23505...).
    pub fn copy_in(&mut self, stmt: &Copy, data: &[u8]) -> Result<QueryResult, PgError> {
        if !stmt.from || stmt.target != CopyTarget::Stdin {
            return Err(PgError::new(
                SqlState::FeatureNotSupported,
                "only COPY ... FROM STDIN loads data through copy_in",
            ));
        }
        if stmt.where_clause.is_some() {
            return Err(PgError::new(
                SqlState::FeatureNotSupported,
                "COPY FROM ... WHERE is not supported yet",
            ));
        }
        let f = Format::of(stmt)?;
        let text = std::str::from_utf8(data).map_err(|_| {
            PgError::new(
                SqlState::CharacterNotInRepertoire,
                "invalid byte sequence for encoding \"UTF8\"",
            )
        })?;
        let implicit = !self.in_transaction();
        if implicit {
            self.execute("BEGIN")?;
        }
        let r = self.copy_rows(stmt, &f, text);
        if implicit {
            match &r {
                Ok(_) => {
                    self.execute("COMMIT")?;
                }
                Err(_) => {
                    let _ = self.execute("ROLLBACK");
                }
            }
        } else if r.is_err() {
            self.fail_transaction_block();
        }
        r
    }

    fn copy_rows(&mut self, stmt: &Copy, f: &Format, text: &str) -> Result<QueryResult, PgError> {
        let CopySource::Table { name, columns } = &stmt.source else {
            return Err(PgError::new(
                SqlState::WrongObjectType,
                "COPY query ... FROM is not supported",
            ));
        };
        let cols: Vec<String> = columns.iter().map(|c| c.to_string()).collect();
        let rows = if f.csv {
            parse_csv(text, f)?
        } else {
            parse_text(text, f)?
        };
        // Each field is an untyped literal: the load path parses it with the column type's
        // input function (`Value::Text` into a non-text column), as the old INSERT text did.
        let rows: Vec<Vec<Value>> = rows
            .into_iter()
            .map(|r| {
                r.into_iter()
                    .map(|v| v.map_or(Value::Null, Value::Text))
                    .collect()
            })
            .collect();
        let table = name.to_string();
        let n = self.with_block_exec(true, |x| x.load_rows(&table, &cols, rows, LoadMode::Copy))?;
        Ok(QueryResult::command(format!("COPY {n}")))
    }

    /// Run a `COPY ... TO STDOUT` and format its rows.
    ///
    /// Errors: 0A000 for unsupported options, the query's errors.
    pub fn copy_out(&mut self, stmt: &Copy) -> Result<CopyOut, PgError> {
        if stmt.from || stmt.target != CopyTarget::Stdout {
            return Err(PgError::new(
                SqlState::FeatureNotSupported,
                "only COPY ... TO STDOUT unloads data through copy_out",
            ));
        }
        let f = Format::of(stmt)?;
        let sql = match &stmt.source {
            CopySource::Table { name, columns } if columns.is_empty() => {
                format!("SELECT * FROM {name}")
            }
            CopySource::Table { name, columns } => format!(
                "SELECT {} FROM {name}",
                columns
                    .iter()
                    .map(|c| c.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            CopySource::Query(q) => q.to_string(),
        };
        let r = self
            .execute(&sql)?
            .pop()
            .unwrap_or_else(|| QueryResult::command(""));
        let tz = self.time_zone();
        let mut lines = Vec::with_capacity(r.rows.len() + 1);
        let d = f.delimiter.to_string();
        if f.header {
            let names: Vec<String> = r
                .columns
                .iter()
                .map(|(n, _)| out_field(Some(n), &f))
                .collect();
            lines.push(format!("{}\n", names.join(&d)).into_bytes());
        }
        for row in &r.rows {
            let fields: Vec<String> = row
                .iter()
                .zip(&r.columns)
                .map(|(v, (_, ty)): (_, &(String, DataType))| {
                    out_field(v.to_text_opt(ty, &tz).as_deref(), &f)
                })
                .collect();
            lines.push(format!("{}\n", fields.join(&d)).into_bytes());
        }
        Ok(CopyOut {
            lines,
            rows: r.rows.len() as u64,
            columns: r.columns.len(),
            csv: f.csv,
        })
    }
}

/// One output field.
fn out_field(v: Option<&str>, f: &Format) -> String {
    let Some(s) = v else {
        return f.null.clone();
    };
    if f.csv {
        let needs = s == f.null
            || s.contains(f.delimiter)
            || s.contains(f.quote)
            || s.contains('\n')
            || s.contains('\r')
            || s == "\\.";
        if !needs {
            return s.to_string();
        }
        let mut out = String::new();
        out.push(f.quote);
        for c in s.chars() {
            if c == f.quote || c == f.escape {
                out.push(f.escape);
            }
            out.push(c);
        }
        out.push(f.quote);
        out
    } else {
        let mut out = String::with_capacity(s.len());
        for c in s.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' if f.delimiter == '\t' => out.push_str("\\t"),
                '\u{8}' => out.push_str("\\b"),
                '\u{c}' => out.push_str("\\f"),
                '\u{b}' => out.push_str("\\v"),
                c if c == f.delimiter => {
                    out.push('\\');
                    out.push(c);
                }
                c => out.push(c),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text_fmt() -> Format {
        Format {
            csv: false,
            delimiter: '\t',
            null: "\\N".into(),
            header: false,
            quote: '"',
            escape: '"',
        }
    }

    #[test]
    fn text_format_escapes_and_nulls() {
        let rows = parse_text("1\ta\\tb\t\\N\n2\t\\\\N\tx\\101\n\\.\n", &text_fmt()).unwrap();
        assert_eq!(
            rows,
            vec![
                vec![Some("1".into()), Some("a\tb".into()), None],
                vec![Some("2".into()), Some("\\N".into()), Some("xA".into())],
            ]
        );
    }

    #[test]
    fn csv_format_quotes_and_header() {
        let f = Format {
            csv: true,
            delimiter: ',',
            null: String::new(),
            header: true,
            quote: '"',
            escape: '"',
        };
        let rows = parse_csv("id,name\n1,\"a,\"\"b\"\"\"\n2,\n3,\"\"\n4,\"x\ny\"", &f).unwrap();
        assert_eq!(
            rows,
            vec![
                vec![Some("1".into()), Some("a,\"b\"".into())],
                vec![Some("2".into()), None],
                vec![Some("3".into()), Some(String::new())],
                vec![Some("4".into()), Some("x\ny".into())],
            ]
        );
        assert_eq!(out_field(Some(""), &f), "\"\"");
        assert_eq!(out_field(None, &f), "");
        assert_eq!(out_field(Some("a\"b"), &f), "\"a\"\"b\"");
    }

    #[test]
    fn text_output_escapes() {
        assert_eq!(out_field(Some("a\tb\\c\n"), &text_fmt()), "a\\tb\\\\c\\n");
        assert_eq!(out_field(None, &text_fmt()), "\\N");
    }
}

//! A small PostgreSQL-shaped lexer used by the pre-parse layer.
//!
//! It is not a full replacement for sqlparser's tokenizer: it exists to split a query string into statements
//! on semicolons (respecting quotes, dollar quotes, nested comments), to recognise the statements we parse
//! ourselves, and to name the token at an error position. Lexical errors carry PostgreSQL's messages
//! (`unterminated quoted string at or near ...`, `trailing junk after numeric literal ...`).

use pgxc_common::PgError;

use super::error::syntax_error_raw;

/// What kind of token this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// An unquoted identifier or keyword; `value` is ASCII-lowercased (PostgreSQL's `downcase_identifier`).
    Word,
    /// A double-quoted identifier; `value` is its content with `""` unescaped.
    QuotedIdent,
    /// A string constant (`'..'`, `E'..'`, `$$..$$`, `B'..'`, `X'..'`, `U&'..'`); `value` is its content.
    Str,
    /// A numeric constant; `value` is its text.
    Number,
    /// A parameter `$n`.
    Param,
    /// An operator or punctuation other than the ones below; `value` is its text.
    Op,
    LParen,
    RParen,
    Comma,
    Semicolon,
    Dot,
}

/// One token with its byte range in the original string.
#[derive(Clone, Debug)]
pub(crate) struct Token {
    pub kind: Kind,
    pub start: usize,
    pub end: usize,
    pub value: String,
}

impl Token {
    /// Whether this is the unquoted keyword `kw` (lower case).
    pub fn is_kw(&self, kw: &str) -> bool {
        self.kind == Kind::Word && self.value == kw
    }
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || !c.is_ascii()
}

fn is_ident_cont(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '$' || !c.is_ascii()
}

fn is_op_char(c: char) -> bool {
    matches!(
        c,
        '~' | '!'
            | '@'
            | '#'
            | '^'
            | '&'
            | '|'
            | '`'
            | '?'
            | '+'
            | '-'
            | '*'
            | '/'
            | '%'
            | '<'
            | '>'
            | '='
    )
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\u{b}' | '\u{c}')
}

struct Lexer<'a> {
    src: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Lexer<'a> {
    fn peek_char(&self, at: usize) -> Option<char> {
        self.src.get(at..).and_then(|s| s.chars().next())
    }

    fn rest_error(&self, start: usize, what: &str) -> PgError {
        syntax_error_raw(
            self.src,
            start,
            format!("{what} at or near \"{}\"", &self.src[start..]),
        )
    }

    /// Skip whitespace and comments. Errors on an unterminated `/*` comment.
    fn skip_trivia(&mut self) -> Result<(), PgError> {
        loop {
            let b = self.bytes;
            if self.pos >= b.len() {
                return Ok(());
            }
            let c = b[self.pos];
            if c.is_ascii() && is_space(c as char) {
                self.pos += 1;
            } else if c == b'-' && b.get(self.pos + 1) == Some(&b'-') {
                while self.pos < b.len() && b[self.pos] != b'\n' && b[self.pos] != b'\r' {
                    self.pos += 1;
                }
            } else if c == b'/' && b.get(self.pos + 1) == Some(&b'*') {
                let start = self.pos;
                let mut depth = 0usize;
                loop {
                    if self.pos + 1 >= b.len() {
                        return Err(self.rest_error(start, "unterminated /* comment"));
                    }
                    if b[self.pos] == b'/' && b[self.pos + 1] == b'*' {
                        depth += 1;
                        self.pos += 2;
                    } else if b[self.pos] == b'*' && b[self.pos + 1] == b'/' {
                        depth -= 1;
                        self.pos += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        self.pos += 1;
                    }
                }
            } else {
                return Ok(());
            }
        }
    }

    /// A quoted run starting at `self.pos` (the opening quote `q`); doubled quotes escape; with `backslash`,
    /// a backslash escapes the next character. Returns the unescaped content.
    fn quoted(&mut self, token_start: usize, q: u8, backslash: bool) -> Result<String, PgError> {
        let b = self.bytes;
        let mut i = self.pos + 1;
        let mut out = String::new();
        let mut seg = i;
        loop {
            if i >= b.len() {
                let what = if q == b'"' {
                    "unterminated quoted identifier"
                } else {
                    "unterminated quoted string"
                };
                return Err(self.rest_error(token_start, what));
            }
            if b[i] == q {
                if b.get(i + 1) == Some(&q) {
                    out.push_str(&self.src[seg..=i]);
                    i += 2;
                    seg = i;
                    continue;
                }
                out.push_str(&self.src[seg..i]);
                self.pos = i + 1;
                return Ok(out);
            }
            if backslash && b[i] == b'\\' && i + 1 < b.len() {
                out.push_str(&self.src[seg..i]);
                let next = self.peek_char(i + 1).unwrap_or('\\');
                out.push(match next {
                    'n' => '\n',
                    't' => '\t',
                    'r' => '\r',
                    'b' => '\u{8}',
                    'f' => '\u{c}',
                    other => other,
                });
                i += 1 + next.len_utf8();
                seg = i;
                continue;
            }
            i += 1;
        }
    }

    fn next_token(&mut self) -> Result<Option<Token>, PgError> {
        self.skip_trivia()?;
        let b = self.bytes;
        let start = self.pos;
        if start >= b.len() {
            return Ok(None);
        }
        let c = self.peek_char(start).unwrap_or('\0');
        let tok = |kind, end, value: String| Token {
            kind,
            start,
            end,
            value,
        };
        // String constants with a prefix: E'..', B'..', X'..', N'..', U&'..', U&"..".
        if matches!(c, 'e' | 'E' | 'b' | 'B' | 'x' | 'X' | 'n' | 'N')
            && b.get(start + 1) == Some(&b'\'')
        {
            self.pos = start + 1;
            let backslash = matches!(c, 'e' | 'E');
            let v = self.quoted(start, b'\'', backslash)?;
            return Ok(Some(tok(Kind::Str, self.pos, v)));
        }
        if matches!(c, 'u' | 'U') && b.get(start + 1) == Some(&b'&') {
            if let Some(&q @ (b'\'' | b'"')) = b.get(start + 2) {
                self.pos = start + 2;
                let v = self.quoted(start, q, false)?;
                let kind = if q == b'"' {
                    Kind::QuotedIdent
                } else {
                    Kind::Str
                };
                return Ok(Some(tok(kind, self.pos, v)));
            }
        }
        if is_ident_start(c) {
            let mut i = start;
            while let Some(ch) = self.peek_char(i) {
                if !is_ident_cont(ch) {
                    break;
                }
                i += ch.len_utf8();
            }
            self.pos = i;
            let v = self.src[start..i].to_ascii_lowercase();
            return Ok(Some(tok(Kind::Word, i, v)));
        }
        if c == '"' {
            self.pos = start;
            let v = self.quoted(start, b'"', false)?;
            if v.is_empty() {
                return Err(syntax_error_raw(
                    self.src,
                    start,
                    "zero-length delimited identifier at or near \"\"\"\"".to_string(),
                ));
            }
            return Ok(Some(tok(Kind::QuotedIdent, self.pos, v)));
        }
        if c == '\'' {
            self.pos = start;
            let v = self.quoted(start, b'\'', false)?;
            return Ok(Some(tok(Kind::Str, self.pos, v)));
        }
        if c == '$' {
            // $n parameter
            if b.get(start + 1).is_some_and(|d| d.is_ascii_digit()) {
                let mut i = start + 1;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
                if self.peek_char(i).is_some_and(is_ident_cont) {
                    let mut j = i;
                    while let Some(ch) = self.peek_char(j) {
                        if !is_ident_cont(ch) {
                            break;
                        }
                        j += ch.len_utf8();
                    }
                    return Err(syntax_error_raw(
                        self.src,
                        start,
                        format!(
                            "trailing junk after parameter at or near \"{}\"",
                            &self.src[start..j]
                        ),
                    ));
                }
                self.pos = i;
                return Ok(Some(tok(Kind::Param, i, self.src[start..i].to_string())));
            }
            // $tag$ dollar quote
            let mut i = start + 1;
            while let Some(ch) = self.peek_char(i) {
                if ch == '$' || !is_ident_cont(ch) {
                    break;
                }
                i += ch.len_utf8();
            }
            let tag_ok = self.peek_char(i) == Some('$')
                && !self
                    .peek_char(start + 1)
                    .is_some_and(|d| d.is_ascii_digit());
            if tag_ok {
                let delim = &self.src[start..=i];
                let body_start = i + 1;
                match self.src[body_start..].find(delim) {
                    Some(k) => {
                        let body = self.src[body_start..body_start + k].to_string();
                        self.pos = body_start + k + delim.len();
                        return Ok(Some(tok(Kind::Str, self.pos, body)));
                    }
                    None => {
                        return Err(self.rest_error(start, "unterminated dollar-quoted string"));
                    }
                }
            }
            self.pos = start + 1;
            return Ok(Some(tok(Kind::Op, self.pos, "$".to_string())));
        }
        if c.is_ascii_digit() || (c == '.' && b.get(start + 1).is_some_and(|d| d.is_ascii_digit()))
        {
            let mut i = start;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            if i < b.len() && b[i] == b'.' && b.get(i + 1) != Some(&b'.') {
                i += 1;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
            }
            if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
                let mut j = i + 1;
                if j < b.len() && (b[j] == b'+' || b[j] == b'-') {
                    j += 1;
                }
                if j < b.len() && b[j].is_ascii_digit() {
                    while j < b.len() && b[j].is_ascii_digit() {
                        j += 1;
                    }
                    i = j;
                }
            }
            if self.peek_char(i).is_some_and(is_ident_start) {
                let mut j = i;
                while let Some(ch) = self.peek_char(j) {
                    if !is_ident_cont(ch) {
                        break;
                    }
                    j += ch.len_utf8();
                }
                return Err(syntax_error_raw(
                    self.src,
                    start,
                    format!(
                        "trailing junk after numeric literal at or near \"{}\"",
                        &self.src[start..j]
                    ),
                ));
            }
            self.pos = i;
            return Ok(Some(tok(Kind::Number, i, self.src[start..i].to_string())));
        }
        let single = |kind| {
            let end = start + 1;
            (kind, end)
        };
        let (kind, end) = match c {
            '(' => single(Kind::LParen),
            ')' => single(Kind::RParen),
            ',' => single(Kind::Comma),
            ';' => single(Kind::Semicolon),
            '.' => single(Kind::Dot),
            ':' if b.get(start + 1) == Some(&b':') => (Kind::Op, start + 2),
            c if is_op_char(c) => {
                let mut i = start;
                while i < b.len() && is_op_char(b[i] as char) {
                    if i > start
                        && ((b[i] == b'-' && b.get(i + 1) == Some(&b'-'))
                            || (b[i] == b'/' && b.get(i + 1) == Some(&b'*')))
                    {
                        break;
                    }
                    i += 1;
                }
                (Kind::Op, i)
            }
            other => (Kind::Op, start + other.len_utf8()),
        };
        self.pos = end;
        Ok(Some(tok(kind, end, self.src[start..end].to_string())))
    }
}

/// Tokenize the whole string.
pub(crate) fn tokenize(src: &str) -> Result<Vec<Token>, PgError> {
    let mut lx = Lexer {
        src,
        bytes: src.as_bytes(),
        pos: 0,
    };
    let mut out = Vec::new();
    while let Some(t) = lx.next_token()? {
        out.push(t);
    }
    Ok(out)
}

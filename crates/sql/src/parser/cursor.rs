//! A cursor over one statement's tokens for the hand-written recognisers.

use pgxc_common::PgError;
use sqlparser::ast::{Ident, ObjectName, ObjectNamePart};

use super::error::{syntax_error_at, syntax_error_end};
use super::lexer::{Kind, Token};

pub(crate) struct Cursor<'a> {
    pub src: &'a str,
    pub toks: &'a [Token],
    pub i: usize,
    /// The `;` ending this statement, if any (errors "at end" of a statement point at it).
    pub terminator: Option<&'a Token>,
}

pub(crate) type PResult<T> = Result<T, PgError>;

impl<'a> Cursor<'a> {
    pub fn new(src: &'a str, toks: &'a [Token], terminator: Option<&'a Token>) -> Self {
        Cursor {
            src,
            toks,
            i: 0,
            terminator,
        }
    }

    pub fn peek(&self) -> Option<&'a Token> {
        self.toks.get(self.i)
    }

    pub fn peek_at(&self, n: usize) -> Option<&'a Token> {
        self.toks.get(self.i + n)
    }

    pub fn at_end(&self) -> bool {
        self.i >= self.toks.len()
    }

    pub fn advance(&mut self) -> Option<&'a Token> {
        let t = self.toks.get(self.i);
        if t.is_some() {
            self.i += 1;
        }
        t
    }

    /// The error at the current token (or at the end of the statement).
    pub fn error(&self) -> PgError {
        match self.peek().or(self.terminator) {
            Some(t) => syntax_error_at(self.src, t),
            None => syntax_error_end(self.src),
        }
    }

    /// The error at the previous token (the one just consumed).
    pub fn error_prev(&self) -> PgError {
        match self.i.checked_sub(1).and_then(|k| self.toks.get(k)) {
            Some(t) => syntax_error_at(self.src, t),
            None => self.error(),
        }
    }

    pub fn peek_kw(&self, kw: &str) -> bool {
        self.peek().is_some_and(|t| t.is_kw(kw))
    }

    pub fn peek_kind(&self, kind: Kind) -> bool {
        self.peek().is_some_and(|t| t.kind == kind)
    }

    /// Consume the keyword `kw` if it is next.
    pub fn kw(&mut self, kw: &str) -> bool {
        if self.peek_kw(kw) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    /// Consume the keywords `kws` if they all come next.
    pub fn kws(&mut self, kws: &[&str]) -> bool {
        let ok = kws
            .iter()
            .enumerate()
            .all(|(n, kw)| self.peek_at(n).is_some_and(|t| t.is_kw(kw)));
        if ok {
            self.i += kws.len();
        }
        ok
    }

    pub fn expect_kw(&mut self, kw: &str) -> PResult<()> {
        if self.kw(kw) {
            Ok(())
        } else {
            Err(self.error())
        }
    }

    pub fn eat(&mut self, kind: Kind) -> bool {
        if self.peek_kind(kind) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    pub fn expect(&mut self, kind: Kind) -> PResult<&'a Token> {
        match self.peek() {
            Some(t) if t.kind == kind => {
                self.i += 1;
                Ok(t)
            }
            _ => Err(self.error()),
        }
    }

    pub fn expect_end(&self) -> PResult<()> {
        if self.at_end() {
            Ok(())
        } else {
            Err(self.error())
        }
    }

    /// An identifier: an unquoted word (kept as written, like sqlparser) or a quoted identifier.
    pub fn ident(&mut self) -> PResult<Ident> {
        match self.peek() {
            Some(t) if t.kind == Kind::Word => {
                self.i += 1;
                Ok(Ident::new(&self.src[t.start..t.end]))
            }
            Some(t) if t.kind == Kind::QuotedIdent => {
                self.i += 1;
                Ok(Ident::with_quote('"', t.value.clone()))
            }
            _ => Err(self.error()),
        }
    }

    /// A possibly qualified name `a.b.c`.
    pub fn object_name(&mut self) -> PResult<ObjectName> {
        let mut parts = vec![ObjectNamePart::Identifier(self.ident()?)];
        while self.peek_kind(Kind::Dot) {
            self.i += 1;
            parts.push(ObjectNamePart::Identifier(self.ident()?));
        }
        Ok(ObjectName(parts))
    }

    /// `( ident [, ...] )`.
    pub fn ident_list(&mut self) -> PResult<Vec<Ident>> {
        self.expect(Kind::LParen)?;
        let mut out = vec![self.ident()?];
        while self.eat(Kind::Comma) {
            out.push(self.ident()?);
        }
        self.expect(Kind::RParen)?;
        Ok(out)
    }

    /// A string constant.
    pub fn string(&mut self) -> PResult<String> {
        Ok(self.expect(Kind::Str)?.value.clone())
    }
}

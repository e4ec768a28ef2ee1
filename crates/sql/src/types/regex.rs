//! PostgreSQL regular expressions (`~`, `SIMILAR TO`, `regexp_*`) on top of the `regex` crate.
//!
//! PostgreSQL's advanced regular expressions (AREs) are translated to the `regex` crate's syntax for
//! their common subset: `.` matches newlines unless the `n` flag is given, `\m`/`\M`/`\y`/`\Y` become
//! word boundaries, `\Z` becomes `\z`. Back references are not supported (0A000).

use std::cell::RefCell;
use std::collections::HashMap;

use pgxc_common::{PgError, SqlState};
use regex::Regex;

/// Parsed regexp flags (`g` is reported separately; it does not change the pattern).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Flags {
    /// `i`: case-insensitive.
    pub icase: bool,
    /// `n`: newline-sensitive (`.` and bracket expressions do not match newlines, `^`/`$` per line).
    pub newline: bool,
    /// `x`: expanded syntax.
    pub expanded: bool,
    /// `g`: every match (only for functions that accept it).
    pub global: bool,
    /// `q`: the pattern is a literal string.
    pub literal: bool,
}

/// Parse a flags string (`"gi"`...). Errors: 22023 on an unknown flag.
pub fn parse_flags(s: &str) -> Result<Flags, PgError> {
    let mut f = Flags::default();
    for c in s.chars() {
        match c {
            'g' => f.global = true,
            'i' => f.icase = true,
            'c' => f.icase = false,
            'n' | 'm' => f.newline = true,
            'p' | 'w' => f.newline = true,
            's' => f.newline = false,
            'x' => f.expanded = true,
            't' => f.expanded = false,
            'q' => f.literal = true,
            'b' | 'e' => {}
            _ => {
                return Err(PgError::new(
                    SqlState::InvalidParameterValue,
                    format!("invalid regular expression option: \"{c}\""),
                ))
            }
        }
    }
    Ok(f)
}

fn invalid(msg: impl std::fmt::Display) -> PgError {
    PgError::new(
        SqlState::InvalidRegularExpression,
        format!("invalid regular expression: {msg}"),
    )
}

/// Translate an ARE to `regex` syntax.
fn translate(pat: &str, f: Flags) -> Result<String, PgError> {
    let mut out = String::with_capacity(pat.len() + 8);
    out.push_str("(?");
    if f.icase {
        out.push('i');
    }
    if f.newline {
        out.push('m');
    } else {
        out.push('s');
    }
    if f.expanded {
        out.push('x');
    }
    out.push(')');
    if f.literal {
        out.push_str(&regex::escape(pat));
        return Ok(out);
    }
    let mut chars = pat.chars().peekable();
    let mut in_bracket = false;
    while let Some(c) = chars.next() {
        if in_bracket {
            out.push(c);
            match c {
                ']' => in_bracket = false,
                '[' if chars.peek().is_some_and(|n| matches!(n, ':' | '.' | '=')) => {
                    // [:alpha:] inside a bracket: copy through the closing `:]`.
                    let kind = chars.next().unwrap_or(':');
                    out.push(kind);
                    let mut prev = ' ';
                    for n in chars.by_ref() {
                        out.push(n);
                        if n == ']' && prev == kind {
                            break;
                        }
                        prev = n;
                    }
                }
                '\\' => {
                    if let Some(n) = chars.next() {
                        out.push(n);
                    }
                }
                _ => {}
            }
            continue;
        }
        match c {
            '[' => {
                in_bracket = true;
                out.push('[');
                if chars.peek() == Some(&'^') {
                    out.push(chars.next().unwrap_or('^'));
                }
                if chars.peek() == Some(&']') {
                    chars.next();
                    out.push_str("\\]");
                }
            }
            '\\' => match chars.next() {
                None => return Err(invalid("invalid escape \\ sequence")),
                Some('m') => out.push_str("\\b{start}"),
                Some('M') => out.push_str("\\b{end}"),
                Some('y') => out.push_str("\\b"),
                Some('Y') => out.push_str("\\B"),
                Some('Z') => out.push_str("\\z"),
                Some(d) if d.is_ascii_digit() && d != '0' => {
                    return Err(PgError::new(
                        SqlState::FeatureNotSupported,
                        "back references in regular expressions are not supported",
                    ))
                }
                Some(n) => {
                    out.push('\\');
                    out.push(n);
                }
            },
            '{' => {
                // A bound `{m[,n]}`; anything else is a literal brace.
                let rest: String = chars.clone().take_while(|&x| x != '}').collect();
                let is_bound = !rest.is_empty()
                    && rest.chars().all(|x| x.is_ascii_digit() || x == ',')
                    && rest.starts_with(|x: char| x.is_ascii_digit());
                out.push_str(if is_bound { "{" } else { "\\{" });
            }
            '}' => out.push('}'),
            _ => out.push(c),
        }
    }
    if in_bracket {
        return Err(invalid("brackets [] not balanced"));
    }
    Ok(out)
}

thread_local! {
    static CACHE: RefCell<HashMap<(String, Flags), Regex>> = RefCell::new(HashMap::new());
}

/// Compile `pat` with `flags` (cached per thread). Errors: 2201B on a malformed pattern.
pub fn compile(pat: &str, mut flags: Flags) -> Result<Regex, PgError> {
    flags.global = false;
    let key = (pat.to_string(), flags);
    if let Some(r) = CACHE.with(|c| c.borrow().get(&key).cloned()) {
        return Ok(r);
    }
    let src = translate(pat, flags)?;
    let re = Regex::new(&src).map_err(|e| {
        let msg = e.to_string();
        let text = if msg.contains("unclosed group") || msg.contains("unopened group") {
            "parentheses () not balanced".to_string()
        } else if msg.contains("unclosed character class") {
            "brackets [] not balanced".to_string()
        } else {
            msg.lines()
                .last()
                .unwrap_or("")
                .trim_start_matches("error: ")
                .to_string()
        };
        invalid(text)
    })?;
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() > 256 {
            c.clear();
        }
        c.insert(key, re.clone());
    });
    Ok(re)
}

/// PostgreSQL's `similar_to_escape`: a SQL `SIMILAR TO` pattern as an anchored ARE. `escape` is
/// `None` for `ESCAPE ''` (no escape character). Errors: 22025 for an escape string longer than one
/// character, 2201B for a trailing escape character.
pub fn similar_to_regex(pat: &str, escape: Option<&str>) -> Result<String, PgError> {
    let esc = match escape {
        None => None,
        Some(e) => {
            let mut it = e.chars();
            match (it.next(), it.next()) {
                (None, _) => None,
                (Some(c), None) => Some(c),
                _ => {
                    return Err(PgError::new(
                        SqlState::InvalidEscapeSequence,
                        "invalid escape string",
                    ))
                }
            }
        }
    };
    let mut out = String::from("^(?:");
    let mut nquotes = 0;
    let mut in_bracket = false;
    let mut chars = pat.chars().peekable();
    while let Some(c) = chars.next() {
        if Some(c) == esc {
            let Some(n) = chars.next() else {
                return Err(invalid("invalid escape \\ sequence"));
            };
            if n == '"' && !in_bracket {
                nquotes += 1;
                match nquotes {
                    1 => out.push_str(")("),
                    2 => out.push_str(")(?:"),
                    _ => {
                        return Err(invalid(
                            "SQL regular expression may not contain more than two escape-double-quote separators",
                        ))
                    }
                }
            } else {
                out.push('\\');
                out.push(n);
            }
            continue;
        }
        if in_bracket {
            if c == '\\' {
                out.push('\\');
            }
            out.push(c);
            if c == ']' {
                in_bracket = false;
            }
            continue;
        }
        match c {
            '[' => {
                in_bracket = true;
                out.push('[');
                if chars.peek() == Some(&'^') {
                    out.push(chars.next().unwrap_or('^'));
                }
                if chars.peek() == Some(&']') {
                    chars.next();
                    out.push_str("\\]");
                }
            }
            '%' => out.push_str(".*"),
            '_' => out.push('.'),
            '.' | '^' | '$' => {
                out.push('\\');
                out.push(c);
            }
            '\\' => out.push_str("\\\\"),
            _ => out.push(c),
        }
    }
    out.push_str(")$");
    Ok(out)
}

/// `s ~ pat` with `flags`.
pub fn is_match(s: &str, pat: &str, flags: Flags) -> Result<bool, PgError> {
    Ok(compile(pat, flags)?.is_match(s))
}

/// `regexp_replace(s, pat, rep, flags)`: the first (or with `g` every) match replaced; `\1`..`\9` in
/// `rep` insert a capture group, `\&` the whole match, `\\` a backslash.
pub fn replace(s: &str, pat: &str, rep: &str, flags: Flags) -> Result<String, PgError> {
    let re = compile(pat, flags)?;
    let mut out = String::with_capacity(s.len());
    let mut last = 0;
    for caps in re.captures_iter(s) {
        let Some(m) = caps.get(0) else { continue };
        out.push_str(&s[last..m.start()]);
        let mut it = rep.chars().peekable();
        while let Some(c) = it.next() {
            if c != '\\' {
                out.push(c);
                continue;
            }
            match it.peek().copied() {
                Some(d) if d.is_ascii_digit() => {
                    it.next();
                    let k = d as usize - '0' as usize;
                    if let Some(g) = caps.get(k) {
                        out.push_str(g.as_str());
                    }
                }
                Some('&') => {
                    it.next();
                    out.push_str(m.as_str());
                }
                Some('\\') => {
                    it.next();
                    out.push('\\');
                }
                _ => out.push('\\'),
            }
        }
        last = m.end();
        if !flags.global {
            break;
        }
    }
    out.push_str(&s[last..]);
    Ok(out)
}

/// The captures of one match as `regexp_match` reports them: the capture groups, or the whole
/// match when the pattern has none.
fn groups(caps: &regex::Captures<'_>) -> Vec<Option<String>> {
    if caps.len() == 1 {
        vec![caps.get(0).map(|m| m.as_str().to_string())]
    } else {
        (1..caps.len())
            .map(|k| caps.get(k).map(|m| m.as_str().to_string()))
            .collect()
    }
}

/// `regexp_match(s, pat, flags)`: `None` when there is no match.
pub fn first_match(
    s: &str,
    pat: &str,
    flags: Flags,
) -> Result<Option<Vec<Option<String>>>, PgError> {
    if flags.global {
        return Err(PgError::new(
            SqlState::InvalidParameterValue,
            "regexp_match() does not support the \"global\" option",
        ));
    }
    let re = compile(pat, flags)?;
    Ok(re.captures(s).map(|c| groups(&c)))
}

/// `regexp_matches(s, pat, flags)`: every match with `g`, else at most one.
pub fn all_matches(s: &str, pat: &str, flags: Flags) -> Result<Vec<Vec<Option<String>>>, PgError> {
    let re = compile(pat, flags)?;
    let mut out = Vec::new();
    for c in re.captures_iter(s) {
        out.push(groups(&c));
        if !flags.global {
            break;
        }
    }
    Ok(out)
}

/// `regexp_split_to_array(s, pat, flags)`. Zero-length matches split between characters, but not at
/// the start or end of the string (PostgreSQL's rule).
pub fn split(s: &str, pat: &str, flags: Flags) -> Result<Vec<String>, PgError> {
    if flags.global {
        return Err(PgError::new(
            SqlState::InvalidParameterValue,
            "regexp_split_to_array() does not support the \"global\" option",
        ));
    }
    let re = compile(pat, flags)?;
    let mut out = Vec::new();
    let mut start = 0;
    for m in re.find_iter(s) {
        if m.start() == m.end() && (m.start() == 0 || m.start() >= s.len()) {
            continue;
        }
        out.push(s[start..m.start()].to_string());
        start = m.end();
    }
    out.push(s[start..].to_string());
    Ok(out)
}

/// One match: its byte span and its capture groups' spans.
type Span = (usize, usize, Vec<Option<(usize, usize)>>);

/// Matches of `pat` in `s` from character position `start` (1-based): `(byte start, byte end,
/// captures)`.
fn matches_from(s: &str, pat: &str, start: i64, flags: Flags) -> Result<Vec<Span>, PgError> {
    if start < 1 {
        return Err(PgError::new(
            SqlState::InvalidParameterValue,
            format!("invalid value for parameter \"start\": {start}"),
        ));
    }
    let re = compile(pat, flags)?;
    let skip = usize::try_from(start - 1).unwrap_or(usize::MAX);
    let off = match s.char_indices().nth(skip) {
        Some((b, _)) => b,
        None if s.chars().count() == skip => s.len(),
        None => return Ok(Vec::new()),
    };
    Ok(re
        .captures_iter(&s[off..])
        .filter_map(|c| {
            let m = c.get(0)?;
            let subs = (1..c.len())
                .map(|k| c.get(k).map(|g| (off + g.start(), off + g.end())))
                .collect();
            Some((off + m.start(), off + m.end(), subs))
        })
        .collect())
}

fn char_pos(s: &str, byte: usize) -> i32 {
    i32::try_from(s[..byte].chars().count()).unwrap_or(i32::MAX)
}

/// `regexp_count(s, pat, start, flags)`.
pub fn count(s: &str, pat: &str, start: i64, flags: Flags) -> Result<i32, PgError> {
    Ok(i32::try_from(matches_from(s, pat, start, flags)?.len()).unwrap_or(i32::MAX))
}

/// The `n`th match's (byte) span, or its `sub`th capture group's (`sub` 0: the whole match).
fn nth_span(
    s: &str,
    pat: &str,
    start: i64,
    n: i64,
    flags: Flags,
    sub: i64,
) -> Result<Option<(usize, usize)>, PgError> {
    if n < 1 {
        return Err(PgError::new(
            SqlState::InvalidParameterValue,
            format!("invalid value for parameter \"n\": {n}"),
        ));
    }
    if sub < 0 {
        return Err(PgError::new(
            SqlState::InvalidParameterValue,
            format!("invalid value for parameter \"subexpr\": {sub}"),
        ));
    }
    let all = matches_from(s, pat, start, flags)?;
    let Some((a, b, subs)) = all
        .into_iter()
        .nth(usize::try_from(n - 1).unwrap_or(usize::MAX))
    else {
        return Ok(None);
    };
    if sub == 0 {
        return Ok(Some((a, b)));
    }
    Ok(subs
        .get(usize::try_from(sub - 1).unwrap_or(usize::MAX))
        .copied()
        .flatten())
}

/// `regexp_instr(s, pat, start, n, endoption, flags, subexpr)`: 1-based position, 0 if none.
pub fn instr(
    s: &str,
    pat: &str,
    start: i64,
    n: i64,
    end_option: i64,
    flags: Flags,
    sub: i64,
) -> Result<i32, PgError> {
    if end_option != 0 && end_option != 1 {
        return Err(PgError::new(
            SqlState::InvalidParameterValue,
            format!("invalid value for parameter \"endoption\": {end_option}"),
        ));
    }
    Ok(match nth_span(s, pat, start, n, flags, sub)? {
        None => 0,
        Some((a, b)) => char_pos(s, if end_option == 1 { b } else { a }) + 1,
    })
}

/// `regexp_substr(s, pat, start, n, flags, subexpr)`.
pub fn substr(
    s: &str,
    pat: &str,
    start: i64,
    n: i64,
    flags: Flags,
    sub: i64,
) -> Result<Option<String>, PgError> {
    Ok(nth_span(s, pat, start, n, flags, sub)?.map(|(a, b)| s[a..b].to_string()))
}

/// `substring(s from pat)`: the first capture group of the first match if the pattern has one, else
/// the whole match.
pub fn substring(s: &str, pat: &str) -> Result<Option<String>, PgError> {
    let re = compile(pat, Flags::default())?;
    Ok(re.captures(s).and_then(|c| {
        if c.len() > 1 {
            c.get(1).map(|m| m.as_str().to_string())
        } else {
            c.get(0).map(|m| m.as_str().to_string())
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basics() {
        let f = Flags::default();
        assert!(is_match("hello", "^h.*o$", f).unwrap());
        assert!(!is_match("hello", "L", f).unwrap());
        assert!(is_match("hello", "L", parse_flags("i").unwrap()).unwrap());
        assert_eq!(replace("abc", "(b)", "[\\1]", f).unwrap(), "a[b]c");
        assert_eq!(
            replace("foobarbaz", "b..", "X", parse_flags("g").unwrap()).unwrap(),
            "fooXX"
        );
        assert_eq!(split("a, b,c", ",\\s*", f).unwrap(), vec!["a", "b", "c"]);
        assert!(compile("(", f).is_err());
        assert!(compile("[", f).is_err());
    }

    #[test]
    fn similar() {
        let m = |s: &str, p: &str| {
            is_match(
                s,
                &similar_to_regex(p, Some("\\")).unwrap(),
                Flags::default(),
            )
            .unwrap()
        };
        assert!(m("abc", "abc"));
        assert!(!m("abc", "a"));
        assert!(m("abc", "%(b|d)%"));
        assert!(m("abc", "(a|b)*c"));
        assert!(!m("abd", "a(b|c)c"));
    }
}

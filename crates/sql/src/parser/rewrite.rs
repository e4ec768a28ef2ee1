//! Token-level rewrites of PostgreSQL expression syntax sqlparser cannot parse, into equivalent
//! forms it can (tried only after sqlparser rejected the statement):
//!
//! - `x [NOT] BETWEEN SYMMETRIC a AND b` becomes `x [NOT] BETWEEN pgxc_between_symmetric(a) AND b`
//!   (the binder turns the marker into the symmetric test); `BETWEEN ASYMMETRIC` drops the word.
//! - `UPDATE ... SET col[i] = v` becomes `SET col = pgxc_array_set(col, i, v)` (PostgreSQL's
//!   `array_set` on assignment to an array element).

use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;

use super::lexer::{Kind, Token};
use super::{Statement, StmtCtx};

/// The marker function wrapping a symmetric BETWEEN's lower bound.
pub(crate) const BETWEEN_SYMMETRIC: &str = "pgxc_between_symmetric";
/// The function an element assignment `col[i] = v` is rewritten to.
pub(crate) const ARRAY_SET: &str = "pgxc_array_set";

/// One replacement of a byte range of the query string.
struct Edit {
    range: std::ops::Range<usize>,
    text: String,
}

fn is_open(t: &Token) -> bool {
    t.kind == Kind::LParen || (t.kind == Kind::Op && t.value == "[") || t.is_kw("case")
}

fn is_close(t: &Token) -> bool {
    t.kind == Kind::RParen || (t.kind == Kind::Op && t.value == "]") || t.is_kw("end")
}

/// Index of the first token at nesting depth 0 from `from` for which `stop` holds (or `toks.len()`).
fn scan(toks: &[Token], from: usize, stop: impl Fn(&Token) -> bool) -> usize {
    let mut depth = 0i32;
    let mut i = from;
    while i < toks.len() {
        let t = &toks[i];
        if depth == 0 && stop(t) {
            return i;
        }
        if is_open(t) {
            depth += 1;
        } else if is_close(t) {
            depth -= 1;
            if depth < 0 {
                return i;
            }
        }
        i += 1;
    }
    toks.len()
}

fn between_edits(toks: &[Token], edits: &mut Vec<Edit>) {
    for i in 0..toks.len() {
        if !toks[i].is_kw("between") {
            continue;
        }
        let Some(w) = toks.get(i + 1) else { continue };
        if w.is_kw("asymmetric") {
            edits.push(Edit {
                range: w.start..w.end,
                text: String::new(),
            });
        } else if w.is_kw("symmetric") {
            let lo = i + 2;
            let and = scan(toks, lo, |t| t.is_kw("and"));
            if lo >= and || and >= toks.len() {
                continue;
            }
            edits.push(Edit {
                range: w.start..toks[lo].start,
                text: format!("{BETWEEN_SYMMETRIC}("),
            });
            edits.push(Edit {
                range: toks[and - 1].end..toks[and - 1].end,
                text: ")".into(),
            });
        }
    }
}

/// The `SET` keywords starting assignment lists: an UPDATE's (also after a WITH clause) and
/// `ON CONFLICT ... DO UPDATE SET`.
fn assignment_lists(toks: &[Token]) -> Vec<usize> {
    let mut out = Vec::new();
    let main_update = match toks.first() {
        Some(t) if t.is_kw("update") => Some(0),
        Some(t) if t.is_kw("with") => {
            let k = scan(toks, 0, |t| t.is_kw("update"));
            (k < toks.len()).then_some(k)
        }
        _ => None,
    };
    if let Some(u) = main_update {
        if let Some(k) = toks[u..].iter().position(|t| t.is_kw("set")) {
            out.push(u + k);
        }
    }
    for k in 2..toks.len() {
        if toks[k].is_kw("set") && toks[k - 1].is_kw("update") && toks[k - 2].is_kw("do") {
            out.push(k);
        }
    }
    out
}

fn array_set_edits(sql: &str, toks: &[Token], edits: &mut Vec<Edit>) {
    for set in assignment_lists(toks) {
        assignment_edits(sql, toks, set, edits);
    }
}

/// One subscripted assignment `col[idx] = value` of a SET list.
struct ElemAssign {
    /// The column as written, and folded for comparison.
    col: String,
    key: String,
    idx: String,
    value: String,
    /// Byte range of the whole assignment, and of the comma before it (if any).
    range: std::ops::Range<usize>,
    comma: Option<usize>,
}

/// Rewrite the subscripted assignments of the SET list starting after token `set`. Several
/// assignments to elements of one column compose, left to right (PostgreSQL applies them all):
/// `a[1] = x, a[2] = y` becomes `a = pgxc_array_set(pgxc_array_set(a, 1, x), 2, y)`.
fn assignment_edits(sql: &str, toks: &[Token], set: usize, edits: &mut Vec<Edit>) {
    let mut found: Vec<ElemAssign> = Vec::new();
    let mut i = set + 1;
    let mut comma: Option<usize> = None;
    while i < toks.len() {
        // An assignment target: a column name, maybe subscripted.
        let name = &toks[i];
        let subscripted = matches!(name.kind, Kind::Word | Kind::QuotedIdent)
            && toks
                .get(i + 1)
                .is_some_and(|t| t.kind == Kind::Op && t.value == "[");
        let end = scan(toks, i, |t| {
            t.kind == Kind::Comma || t.is_kw("from") || t.is_kw("where") || t.is_kw("returning")
        });
        if subscripted {
            let close = scan(toks, i + 2, |t| t.kind == Kind::Op && t.value == "]");
            let eq = close + 1;
            if close < end
                && toks
                    .get(eq)
                    .is_some_and(|t| t.kind == Kind::Op && t.value == "=")
                && eq + 1 < end
            {
                found.push(ElemAssign {
                    col: sql[name.start..name.end].to_string(),
                    key: if name.kind == Kind::Word {
                        name.value.clone()
                    } else {
                        format!("\"{}", name.value)
                    },
                    idx: sql[toks[i + 2].start..toks[close - 1].end].to_string(),
                    value: sql[toks[eq + 1].start..toks[end - 1].end].to_string(),
                    range: name.start..toks[end - 1].end,
                    comma,
                });
            }
        }
        if end >= toks.len() || toks[end].kind != Kind::Comma {
            break;
        }
        comma = Some(toks[end].start);
        i = end + 1;
    }
    let mut done = vec![false; found.len()];
    for k in 0..found.len() {
        if done[k] {
            continue;
        }
        let mut expr = found[k].col.clone();
        for (m, a) in found.iter().enumerate().skip(k) {
            if a.key != found[k].key {
                continue;
            }
            expr = format!("{ARRAY_SET}({expr}, {}, {})", a.idx, a.value);
            if m != k {
                done[m] = true;
                // Drop the later assignment with the comma before it.
                let start = a.comma.unwrap_or(a.range.start);
                edits.push(Edit {
                    range: start..a.range.end,
                    text: String::new(),
                });
            }
        }
        edits.push(Edit {
            range: found[k].range.clone(),
            text: format!("{} = {expr}", found[k].col),
        });
    }
}

/// The marker a window frame's `EXCLUDE` clause becomes: `pgxc_frame_exclude('current row' |
/// 'group' | 'ties' | 'no others')`, placed first in the window's PARTITION BY (the binder
/// removes it).
pub(crate) const FRAME_EXCLUDE: &str = "pgxc_frame_exclude";

fn exclude_edits(toks: &[Token], edits: &mut Vec<Edit>) {
    for i in 0..toks.len() {
        if !toks[i].is_kw("exclude") {
            continue;
        }
        let what = match (toks.get(i + 1), toks.get(i + 2)) {
            (Some(a), Some(b)) if a.is_kw("current") && b.is_kw("row") => "current row",
            (Some(a), Some(b)) if a.is_kw("no") && b.is_kw("others") => "no others",
            (Some(a), _) if a.is_kw("group") => "group",
            (Some(a), _) if a.is_kw("ties") => "ties",
            _ => continue,
        };
        let n = if what.contains(' ') { 3 } else { 2 };
        // The window specification's opening parenthesis.
        let mut depth = 0i32;
        let mut open = None;
        for k in (0..i).rev() {
            if toks[k].kind == Kind::RParen {
                depth += 1;
            } else if toks[k].kind == Kind::LParen {
                if depth == 0 {
                    open = Some(k);
                    break;
                }
                depth -= 1;
            }
        }
        let Some(open) = open else { continue };
        let marker = format!("{FRAME_EXCLUDE}('{what}')");
        match (toks.get(open + 1), toks.get(open + 2)) {
            (Some(p), Some(b)) if p.is_kw("partition") && b.is_kw("by") => edits.push(Edit {
                range: b.end..b.end,
                text: format!(" {marker},"),
            }),
            _ => edits.push(Edit {
                range: toks[open].end..toks[open].end,
                text: format!(" PARTITION BY {marker} "),
            }),
        }
        edits.push(Edit {
            range: toks[i].start..toks[i + n - 1].end,
            text: String::new(),
        });
    }
}

/// The prefix of the column-list marker a recursive CTE's `SEARCH {DEPTH | BREADTH} FIRST BY c,
/// ... SET col` clause becomes: the CTE gets the extra column `"pgxc_search depth c1,c2 col"`
/// (the executor computes the ordering column).
pub(crate) const CTE_SEARCH: &str = "pgxc_search";

fn search_edits(toks: &[Token], edits: &mut Vec<Edit>) {
    for i in 1..toks.len() {
        if !toks[i].is_kw("search") || toks[i - 1].kind != Kind::RParen {
            continue;
        }
        let mode = match (toks.get(i + 1), toks.get(i + 2), toks.get(i + 3)) {
            (Some(m), Some(f), Some(b)) if f.is_kw("first") && b.is_kw("by") => {
                if m.is_kw("depth") {
                    "depth"
                } else if m.is_kw("breadth") {
                    "breadth"
                } else {
                    continue;
                }
            }
            _ => continue,
        };
        let mut k = i + 4;
        let mut cols = Vec::new();
        while let Some(t) = toks.get(k) {
            if !matches!(t.kind, Kind::Word | Kind::QuotedIdent) {
                break;
            }
            cols.push(t.value.clone());
            k += 1;
            if toks.get(k).is_some_and(|t| t.kind == Kind::Comma) {
                k += 1;
            } else {
                break;
            }
        }
        let (Some(set), Some(col)) = (toks.get(k), toks.get(k + 1)) else {
            continue;
        };
        if cols.is_empty() || !set.is_kw("set") {
            continue;
        }
        // The CTE body's opening parenthesis, then AS, then the column list or the name.
        let mut depth = 0i32;
        let mut open = None;
        for j in (0..i - 1).rev() {
            if toks[j].kind == Kind::RParen {
                depth += 1;
            } else if toks[j].kind == Kind::LParen {
                if depth == 0 {
                    open = Some(j);
                    break;
                }
                depth -= 1;
            }
        }
        let Some(open) = open else { continue };
        let mut a = open;
        while a > 0 && (toks[a - 1].is_kw("materialized") || toks[a - 1].is_kw("not")) {
            a -= 1;
        }
        if a == 0 || !toks[a - 1].is_kw("as") || a < 2 {
            continue;
        }
        let marker = format!("\"{CTE_SEARCH} {mode} {} {}\"", cols.join(","), col.value);
        let before = &toks[a - 2];
        if before.kind == Kind::RParen {
            edits.push(Edit {
                range: before.start..before.start,
                text: format!(", {marker}"),
            });
        } else {
            edits.push(Edit {
                range: before.end..before.end,
                text: format!("({marker})"),
            });
        }
        edits.push(Edit {
            range: toks[i].start..col.end,
            text: String::new(),
        });
    }
}

/// Rewrite the statement and parse the result with sqlparser; `None` when nothing applies or the
/// rewritten text still does not parse (the caller reports the original error).
pub(crate) fn fallback(ctx: &StmtCtx<'_>) -> Option<Statement> {
    let mut edits = Vec::new();
    between_edits(ctx.toks, &mut edits);
    array_set_edits(ctx.sql, ctx.toks, &mut edits);
    exclude_edits(ctx.toks, &mut edits);
    search_edits(ctx.toks, &mut edits);
    if edits.is_empty() {
        return None;
    }
    edits.sort_by_key(|e| (e.range.start, e.range.end));
    let mut text = String::new();
    let mut pos = ctx.start;
    for e in &edits {
        if e.range.start < pos {
            return None;
        }
        text.push_str(&ctx.sql[pos..e.range.start]);
        text.push_str(&e.text);
        pos = e.range.end;
    }
    text.push_str(&ctx.sql[pos..ctx.end]);
    let dialect = PostgreSqlDialect {};
    let mut v = Parser::new(&dialect)
        .try_with_sql(&text)
        .and_then(|mut p| p.parse_statements())
        .ok()?;
    (v.len() == 1).then(|| Statement::Sql(v.remove(0)))
}

#[cfg(test)]
mod tests {
    use crate::parser::{parse, Statement};

    fn text(sql: &str) -> String {
        match parse(sql).unwrap().remove(0) {
            Statement::Sql(s) => s.to_string(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn between_symmetric() {
        let s = text("SELECT 5 BETWEEN SYMMETRIC 10 AND 1, 2 NOT BETWEEN SYMMETRIC (1 + 1) AND 3");
        assert!(
            s.contains("5 BETWEEN pgxc_between_symmetric(10) AND 1"),
            "{s}"
        );
        assert!(
            s.contains("2 NOT BETWEEN pgxc_between_symmetric((1 + 1)) AND 3"),
            "{s}"
        );
        let s = text("SELECT 5 BETWEEN ASYMMETRIC 1 AND 10");
        assert!(s.contains("5 BETWEEN 1 AND 10"), "{s}");
    }

    #[test]
    fn array_element_assignment() {
        let s = text("UPDATE t SET tags[2] = 'z', n = 1 WHERE id = 2");
        assert!(
            s.contains("SET tags = pgxc_array_set(tags, 2, 'z'), n = 1 WHERE"),
            "{s}"
        );
        let s = text(
            "INSERT INTO t VALUES (1) ON CONFLICT (id) DO UPDATE SET a[1] = EXCLUDED.id RETURNING a",
        );
        assert!(
            s.contains("DO UPDATE SET a = pgxc_array_set(a, 1, EXCLUDED.id) RETURNING"),
            "{s}"
        );
        let s = text("UPDATE t SET a[1] = 1, b = 2, a[2] = 3, \"A\"[1] = 4");
        assert!(
            s.contains(
                "SET a = pgxc_array_set(pgxc_array_set(a, 1, 1), 2, 3), b = 2, \"A\" = pgxc_array_set(\"A\", 1, 4)"
            ),
            "{s}"
        );
        let s = text("WITH x AS (SELECT 1) UPDATE t SET a[1 + 1] = (SELECT 2) FROM x");
        assert!(
            s.contains("SET a = pgxc_array_set(a, 1 + 1, (SELECT 2)) FROM x"),
            "{s}"
        );
    }
}

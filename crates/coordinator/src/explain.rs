//! EXPLAIN on a coordinator, in Postgres-XC's shapes (the seed's examples):
//!
//! - a statement shipped whole (fast query shipping, also UPDATE/DELETE/INSERT sent to the
//!   datanodes) is one remote node:
//!   ```text
//!   Data Node Scan on "__REMOTE_FQS_QUERY__"  (cost=0.00..0.00 rows=0 width=0)
//!     Output: t.a, t.b                      -- VERBOSE
//!     Node/s: dn1, dn2
//!     Remote query: SELECT a, b FROM t      -- VERBOSE
//!   ```
//! - a plain aggregate computed partially on the datanodes and combined on the coordinator is an
//!   `Aggregate` over `Data Node Scan on "__REMOTE_GROUP_QUERY__"`;
//! - a statement evaluated on the coordinator is the coordinator's own plan with every table scan
//!   replaced by `Data Node Scan on <table>`, its `Node/s:` and (VERBOSE) the `Remote query:` that
//!   fetches the table's rows.
//!
//! Remote nodes print zero costs, as XC's did. The functions here only shape text; the session
//! decides the route (`crate::session`), the same decision that runs the statement.

/// EXPLAIN's options as a coordinator honours them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExplainOpts {
    /// `COSTS` (default on): print `(cost=...)` on every node.
    pub costs: bool,
    /// `VERBOSE`: print `Output:` and `Remote query:`.
    pub verbose: bool,
    /// `ANALYZE`: not supported on a coordinator (the caller answers 0A000).
    pub analyze: bool,
}

impl ExplainOpts {
    /// The options of `EXPLAIN [ANALYZE] [VERBOSE]` or `EXPLAIN (opt [value], ...)`, as
    /// PostgreSQL reads them (`off`, `false`, `0` switch an option off; unknown ones are ignored).
    pub fn parse(
        analyze: bool,
        verbose: bool,
        options: Option<&Vec<sqlparser::ast::UtilityOption>>,
    ) -> ExplainOpts {
        let mut o = ExplainOpts {
            costs: true,
            verbose,
            analyze,
        };
        for opt in options.into_iter().flatten() {
            let on = match &opt.arg {
                None => true,
                Some(a) => {
                    let v = a.to_string().to_ascii_lowercase();
                    !matches!(v.trim_matches('\''), "off" | "false" | "0")
                }
            };
            match opt.name.value.to_ascii_lowercase().as_str() {
                "costs" => o.costs = on,
                "verbose" => o.verbose = on,
                "analyze" => o.analyze = on,
                _ => {}
            }
        }
        o
    }
}

const ZERO_COST: &str = "  (cost=0.00..0.00 rows=0 width=0)";

fn header(name: &str, o: ExplainOpts) -> String {
    if o.costs {
        format!("{name}{ZERO_COST}")
    } else {
        name.to_string()
    }
}

/// The lines of a statement shipped whole to `nodes`: `output` is the statement's target list
/// (printed with VERBOSE when known), `remote` the statement text the datanodes receive.
pub fn fqs(output: Option<&str>, nodes: &[String], remote: &str, o: ExplainOpts) -> Vec<String> {
    let mut out = vec![header("Data Node Scan on \"__REMOTE_FQS_QUERY__\"", o)];
    if o.verbose {
        if let Some(x) = output {
            out.push(format!("  Output: {x}"));
        }
    }
    out.push(format!("  Node/s: {}", nodes.join(", ")));
    if o.verbose {
        out.push(format!("  Remote query: {remote}"));
    }
    out
}

/// The lines of a plain aggregate run on every node in `nodes` and combined here: `finals` are
/// the coordinator's combining functions per output column (`sum` of counts and sums, `min`,
/// `max`), `output` the per-node target list items.
pub fn combined(
    output: &[String],
    finals: &[&str],
    nodes: &[String],
    remote: &str,
    o: ExplainOpts,
) -> Vec<String> {
    let mut out = vec![header("Aggregate", o)];
    if o.verbose {
        let top: Vec<String> = output
            .iter()
            .zip(finals)
            .map(|(x, f)| format!("pg_catalog.{f}(({x}))"))
            .collect();
        out.push(format!("  Output: {}", top.join(", ")));
    }
    out.push(format!(
        "  ->  {}",
        header("Data Node Scan on \"__REMOTE_GROUP_QUERY__\"", o)
    ));
    if o.verbose {
        out.push(format!("        Output: {}", output.join(", ")));
    }
    out.push(format!("        Node/s: {}", nodes.join(", ")));
    if o.verbose {
        out.push(format!("        Remote query: {remote}"));
    }
    out
}

/// Where a scanned table's rows come from: its datanodes and the query that fetches them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteScan {
    /// The datanodes read.
    pub nodes: Vec<String>,
    /// The query each of them runs.
    pub query: String,
}

/// The scan node of a local EXPLAIN line: `(indent and arrow, table [alias], costs suffix)`.
fn scan_line(line: &str) -> Option<(String, String, String)> {
    let body_at = line.len() - line.trim_start().len();
    let (lead, rest) = line.split_at(body_at);
    let (arrow, rest) = match rest.strip_prefix("->  ") {
        Some(r) => ("->  ", r),
        None => ("", rest),
    };
    let target = if let Some(r) = rest.strip_prefix("Seq Scan on ") {
        r
    } else if rest.starts_with("Index Scan ")
        || rest.starts_with("Index Only Scan ")
        || rest.starts_with("Bitmap Heap Scan ")
    {
        rest.split_once(" on ")?.1
    } else {
        return None;
    };
    let (target, costs) = match target.find("  (") {
        Some(i) => (&target[..i], &target[i..]),
        None => (target, ""),
    };
    Some((
        format!("{lead}{arrow}"),
        target.to_string(),
        costs.to_string(),
    ))
}

/// The coordinator's own plan `local` (EXPLAIN lines of its catalog engine) with every table
/// scan replaced by a `Data Node Scan` of that table: `lookup(table)` says where its rows come
/// from (`None`: a table not on the datanodes, printed as it is). Index conditions become
/// filters (the rows are fetched whole and filtered here).
pub fn remote_scans(
    local: &[String],
    lookup: impl Fn(&str) -> Option<RemoteScan>,
    o: ExplainOpts,
) -> Vec<String> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < local.len() {
        let line = &local[i];
        i += 1;
        let Some((lead, target, costs)) = scan_line(line) else {
            out.push(line.clone());
            continue;
        };
        let table = target.split(' ').next().unwrap_or(&target);
        let Some(remote) = lookup(table) else {
            out.push(line.clone());
            continue;
        };
        let costs = if o.costs && costs.is_empty() {
            ZERO_COST.to_string()
        } else {
            costs
        };
        out.push(format!("{lead}Data Node Scan on {target}{costs}"));
        let pind = " ".repeat(lead.len() + 2);
        // The scan's own properties: the lines indented at its property column.
        let mut output = None;
        let mut filters = Vec::new();
        let mut others = Vec::new();
        while i < local.len() {
            let l = &local[i];
            let Some(p) = l.strip_prefix(&pind) else {
                break;
            };
            if p.starts_with(' ') || p.starts_with("->") {
                break;
            }
            if let Some(x) = p.strip_prefix("Output: ") {
                output = Some(x.to_string());
            } else if let Some(x) = p
                .strip_prefix("Index Cond: ")
                .or_else(|| p.strip_prefix("Filter: "))
            {
                filters.push(x.to_string());
            } else if !p.starts_with("Heap Fetches") && !p.starts_with("Recheck Cond") {
                others.push(p.to_string());
            }
            i += 1;
        }
        if let Some(x) = output {
            out.push(format!("{pind}Output: {x}"));
        }
        out.push(format!("{pind}Node/s: {}", remote.nodes.join(", ")));
        if o.verbose {
            out.push(format!("{pind}Remote query: {}", remote.query));
        }
        match filters.len() {
            0 => {}
            1 => out.push(format!("{pind}Filter: {}", filters[0])),
            _ => out.push(format!("{pind}Filter: ({})", filters.join(" AND "))),
        }
        for p in others {
            out.push(format!("{pind}{p}"));
        }
    }
    out
}

/// The lines of an ORDER BY merged here from the datanodes' sorted streams (XC's remote sort
/// under a coordinator merge, PostgreSQL's `Merge Append` of sorted inputs): with `limited`
/// (LIMIT/OFFSET) a `Limit` on top, then
/// ```text
/// Merge Append
///   Output: val, val2                 -- VERBOSE: the per-node rows' columns (keys last)
///   Sort Key: val2 DESC, val
///   ->  Data Node Scan on tab1 t
///         Output: val, val2           -- VERBOSE
///         Node/s: dn1, dn2
///         Remote query: SELECT val, val2 FROM public.tab1 AS "t" ORDER BY 2 DESC, 1 LIMIT 3
/// ```
/// `target` is the scanned table as EXPLAIN names it (`tab1 t` with an alias).
pub fn merged(
    limited: bool,
    sort_key: &[String],
    output: &[String],
    target: &str,
    scan: &RemoteScan,
    o: ExplainOpts,
) -> Vec<String> {
    let mut out = Vec::new();
    // The Merge Append's property column: under a Limit's arrow, or at the root.
    let ind = if limited { "        " } else { "  " };
    if limited {
        out.push(header("Limit", o));
        if o.verbose {
            out.push(format!("  Output: {}", output.join(", ")));
        }
        out.push(format!("  ->  {}", header("Merge Append", o)));
    } else {
        out.push(header("Merge Append", o));
    }
    if o.verbose {
        out.push(format!("{ind}Output: {}", output.join(", ")));
    }
    out.push(format!("{ind}Sort Key: {}", sort_key.join(", ")));
    out.push(format!(
        "{ind}->  {}",
        header(&format!("Data Node Scan on {target}"), o)
    ));
    let pind = format!("{ind}      ");
    if o.verbose {
        out.push(format!("{pind}Output: {}", output.join(", ")));
    }
    out.push(format!("{pind}Node/s: {}", scan.nodes.join(", ")));
    if o.verbose {
        out.push(format!("{pind}Remote query: {}", scan.query));
    }
    out
}

/// The plan of a remote group query (`Data Node Scan on "__REMOTE_GROUP_QUERY__"` under the
/// coordinator's final step) with its partial columns (`pgxc_g0`, `pgxc_p0`, ...) named by
/// the expressions the datanodes compute, in XC's shape: the scan's `Output: tab1.val2,
/// sum(tab1.val)`, the final step's `Output: tab1.val2, sum((sum(tab1.val)))`.
/// `names` pairs each partial column with its expression.
pub fn name_partials(lines: Vec<String>, names: &[(String, String)]) -> Vec<String> {
    // Longest names first: `pgxc_p1` must not rename the start of `pgxc_p12`.
    let mut names: Vec<&(String, String)> = names.iter().collect();
    names.sort_by_key(|(n, _)| std::cmp::Reverse(n.len()));
    let mut scan_output = false;
    lines
        .into_iter()
        .map(|l| {
            let is_scan_output = scan_output && l.trim_start().starts_with("Output: ");
            if l.contains("Data Node Scan on \"__REMOTE_GROUP_QUERY__\"") {
                scan_output = true;
            } else if is_scan_output || l.trim_start().starts_with("->") {
                scan_output = false;
            }
            if l.trim_start().starts_with("Remote query: ") {
                return l;
            }
            let mut l = l;
            for (n, e) in &names {
                let simple = e
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == '_' || c == '.');
                let with = if is_scan_output || simple {
                    e.clone()
                } else {
                    format!("({e})")
                };
                l = l.replace(n.as_str(), &with);
            }
            l
        })
        .collect()
}

/// `output` (an EXPLAIN target list) with every bare column name of `columns` qualified by
/// `alias`, as XC prints a single table's columns (`tab1.val`): identifiers outside string
/// literals, not already qualified, not function names.
pub fn qualify(output: &str, alias: &str, columns: &[String]) -> String {
    let chars: Vec<char> = output.chars().collect();
    let mut out = String::with_capacity(output.len() + 16);
    let mut i = 0;
    let mut in_str = false;
    while i < chars.len() {
        let c = chars[i];
        if in_str {
            out.push(c);
            if c == '\'' {
                in_str = false;
            }
            i += 1;
            continue;
        }
        if c == '\'' {
            in_str = true;
            out.push(c);
            i += 1;
            continue;
        }
        if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let prev = out.chars().last();
            let next = chars.get(i).copied();
            let is_col = columns.contains(&word)
                && prev != Some('.')
                && prev != Some(':')
                && next != Some('(')
                && next != Some('.');
            if is_col {
                out.push_str(alias);
                out.push('.');
            }
            out.push_str(&word);
            continue;
        }
        out.push(c);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFF: ExplainOpts = ExplainOpts {
        costs: false,
        verbose: false,
        analyze: false,
    };
    const VERBOSE: ExplainOpts = ExplainOpts {
        costs: false,
        verbose: true,
        analyze: false,
    };

    #[test]
    fn fqs_shape() {
        let nodes = vec!["dn1".to_string(), "dn2".to_string()];
        assert_eq!(
            fqs(Some("t.a"), &nodes, "SELECT a FROM t", OFF),
            vec![
                "Data Node Scan on \"__REMOTE_FQS_QUERY__\"",
                "  Node/s: dn1, dn2"
            ]
        );
        assert_eq!(
            fqs(Some("t.a"), &nodes[..1], "SELECT a FROM t", VERBOSE),
            vec![
                "Data Node Scan on \"__REMOTE_FQS_QUERY__\"",
                "  Output: t.a",
                "  Node/s: dn1",
                "  Remote query: SELECT a FROM t"
            ]
        );
        let with_costs = ExplainOpts { costs: true, ..OFF };
        assert_eq!(
            fqs(None, &nodes, "x", with_costs)[0],
            "Data Node Scan on \"__REMOTE_FQS_QUERY__\"  (cost=0.00..0.00 rows=0 width=0)"
        );
    }

    #[test]
    fn scans_become_data_node_scans() {
        let local: Vec<String> = [
            "Nested Loop",
            "  Output: a.x, b.y",
            "  Join Filter: (a.x = b.y)",
            "  ->  Seq Scan on a",
            "        Output: a.x",
            "        Filter: (a.x > 1)",
            "  ->  Index Scan using b_pkey on b",
            "        Output: b.y",
            "        Index Cond: (b.y = 3)",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let lookup = |t: &str| {
            Some(RemoteScan {
                nodes: if t == "a" {
                    vec!["dn1".into(), "dn2".into()]
                } else {
                    vec!["dn1".into()]
                },
                query: format!("SELECT * FROM public.{t}"),
            })
        };
        assert_eq!(
            remote_scans(&local, lookup, VERBOSE),
            vec![
                "Nested Loop",
                "  Output: a.x, b.y",
                "  Join Filter: (a.x = b.y)",
                "  ->  Data Node Scan on a",
                "        Output: a.x",
                "        Node/s: dn1, dn2",
                "        Remote query: SELECT * FROM public.a",
                "        Filter: (a.x > 1)",
                "  ->  Data Node Scan on b",
                "        Output: b.y",
                "        Node/s: dn1",
                "        Remote query: SELECT * FROM public.b",
                "        Filter: (b.y = 3)",
            ]
        );
        let root = vec!["Seq Scan on a  (cost=0.00..1.00 rows=1 width=4)".to_string()];
        assert_eq!(
            remote_scans(&root, lookup, OFF),
            vec![
                "Data Node Scan on a  (cost=0.00..1.00 rows=1 width=4)",
                "  Node/s: dn1, dn2"
            ]
        );
    }

    #[test]
    fn merge_shape() {
        let scan = RemoteScan {
            nodes: vec!["dn1".into(), "dn2".into()],
            query: "SELECT val FROM public.tab1 AS \"t\" ORDER BY 1 DESC".into(),
        };
        let keys = vec!["val DESC".to_string()];
        let output = vec!["val".to_string()];
        assert_eq!(
            merged(false, &keys, &output, "tab1 t", &scan, OFF),
            vec![
                "Merge Append",
                "  Sort Key: val DESC",
                "  ->  Data Node Scan on tab1 t",
                "        Node/s: dn1, dn2",
            ]
        );
        assert_eq!(
            merged(true, &keys, &output, "tab1 t", &scan, VERBOSE),
            vec![
                "Limit",
                "  Output: val",
                "  ->  Merge Append",
                "        Output: val",
                "        Sort Key: val DESC",
                "        ->  Data Node Scan on tab1 t",
                "              Output: val",
                "              Node/s: dn1, dn2",
                "              Remote query: SELECT val FROM public.tab1 AS \"t\" ORDER BY 1 DESC",
            ]
        );
    }

    #[test]
    fn qualify_bare_columns_only() {
        let cols = vec!["val".to_string(), "val2".to_string()];
        assert_eq!(
            qualify("sum(val), val2, t.val, 'val', val::text", "tab1", &cols),
            "sum(tab1.val), tab1.val2, t.val, 'val', tab1.val::text"
        );
    }
}

//! The locator: where a row lives and which datanodes a statement must visit (Postgres-XC's
//! `locator.c`, `GetRelationNodes`).
//!
//! A distributed table's placement is a [`Distribution`] — one `pgxc_class` row: the locator type
//! (`H` hash, `M` modulo, `N` round robin, `R` replicated), the distribution column, and the ordered
//! list of datanodes (`nodeoids`) chosen by `TO NODE (...)` / `TO GROUP g` or, by default, every
//! datanode.
//!
//! **Invariant:** placement is a pure function of (distribution, key value): the same row goes to
//! the same node on every coordinator, in every process, on every platform
//! ([`crate::hash`] is fixed). Round robin is the one exception, by definition; its rows are found by
//! visiting every node.
//!
//! Rules (XC's):
//! - HASH: node = `node_list[hash(key) mod n]` with [`crate::hash::hash_value`] as an unsigned
//!   32-bit number. A NULL key goes to the first node of the list.
//! - MODULO: node = `node_list[key mod n]` (Euclidean remainder, so negative keys are placed too);
//!   only integer columns (int2, int4, int8) can be MODULO keys. A NULL key goes to the first node.
//! - ROUNDROBIN: the caller's counter, advanced per row.
//! - REPLICATION: every node of the list stores every row; writes go to all of them, reads to
//!   one — the preferred node if it is in the list, else the first.

use pgxc_common::{PgError, SqlState};
use pgxc_sql::types::{DataType, Value};
use serde::{Deserialize, Serialize};

use crate::hash::{hash_bpchar, hash_value};

/// A locator type, with `pgxc_class.pclocatortype`'s letters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LocatorType {
    /// `DISTRIBUTE BY HASH(col)` (`'H'`).
    Hash,
    /// `DISTRIBUTE BY MODULO(col)` (`'M'`).
    Modulo,
    /// `DISTRIBUTE BY ROUNDROBIN` (`'N'`).
    RoundRobin,
    /// `DISTRIBUTE BY REPLICATION` (`'R'`).
    Replicated,
}

impl LocatorType {
    /// The `pgxc_class.pclocatortype` letter.
    pub fn letter(self) -> char {
        match self {
            LocatorType::Hash => 'H',
            LocatorType::Modulo => 'M',
            LocatorType::RoundRobin => 'N',
            LocatorType::Replicated => 'R',
        }
    }
}

/// One table's placement: a `pgxc_class` row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Distribution {
    /// The locator type.
    pub kind: LocatorType,
    /// The distribution column: its position in the table's columns (0-based) and type; `None`
    /// for round robin and replicated tables.
    pub key: Option<(usize, DataType)>,
    /// The datanodes holding the table, in `pgxc_class.nodeoids` order (names as in `pgxc_node`).
    /// **Invariant:** not empty, no duplicates.
    pub nodes: Vec<String>,
}

/// Which datanodes a statement visits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Targets {
    /// Exactly these nodes (indexes into [`Distribution::nodes`], ascending, deduplicated).
    Nodes(Vec<usize>),
    /// Every node of the table.
    All,
}

/// Whether values of `ty` can be a HASH distribution key (XC's `IsTypeHashDistributable`).
pub fn hash_distributable(ty: &DataType) -> bool {
    !matches!(
        ty,
        DataType::Json | DataType::Jsonb | DataType::Array(_) | DataType::Unknown
    )
}

/// Whether values of `ty` can be a MODULO distribution key (pgxc: integer types).
pub fn modulo_distributable(ty: &DataType) -> bool {
    matches!(ty, DataType::Int2 | DataType::Int4 | DataType::Int8)
}

/// XC's default distribution for a `CREATE TABLE` without `DISTRIBUTE BY`: hash on the first
/// primary-key column if its type is hashable, else on the first column of a hashable type, else
/// round robin. `columns` are the table's columns in order; `primary_key` the positions of the
/// primary key's columns (or of the first UNIQUE constraint's when there is no primary key, as XC).
/// Returns the locator type and the key column position.
pub fn default_distribution(
    columns: &[(String, DataType)],
    primary_key: Option<&[usize]>,
) -> (LocatorType, Option<usize>) {
    if let Some(pk) = primary_key {
        if let Some(&c) = pk.first() {
            if columns.get(c).is_some_and(|(_, t)| hash_distributable(t)) {
                return (LocatorType::Hash, Some(c));
            }
        }
    }
    match columns.iter().position(|(_, t)| hash_distributable(t)) {
        Some(c) => (LocatorType::Hash, Some(c)),
        None => (LocatorType::RoundRobin, None),
    }
}

impl Distribution {
    /// A distribution, checked: the node list is non-empty without duplicates, HASH/MODULO have a
    /// key of a distributable type, the others have none.
    /// Errors: 42P16 (invalid_table_definition) with XC's wording otherwise.
    pub fn new(
        kind: LocatorType,
        key: Option<(usize, DataType)>,
        nodes: Vec<String>,
    ) -> Result<Distribution, PgError> {
        let bad = |m: String| PgError::new(SqlState::InvalidTableDefinition, m);
        if nodes.is_empty() {
            return Err(bad("a distributed table needs at least one datanode".into()));
        }
        for (i, n) in nodes.iter().enumerate() {
            if nodes[..i].contains(n) {
                return Err(bad(format!("datanode \"{n}\" is listed twice")));
            }
        }
        match (kind, &key) {
            (LocatorType::Hash, Some((_, t))) if !hash_distributable(t) => Err(bad(format!(
                "column of type {} cannot be a HASH distribution column",
                t.name()
            ))),
            (LocatorType::Modulo, Some((_, t))) if !modulo_distributable(t) => Err(bad(format!(
                "column of type {} cannot be a MODULO distribution column",
                t.name()
            ))),
            (LocatorType::Hash | LocatorType::Modulo, None) => {
                Err(bad("HASH and MODULO distributions need a column".into()))
            }
            (LocatorType::RoundRobin | LocatorType::Replicated, Some(_)) => Err(bad(
                "ROUNDROBIN and REPLICATION distributions take no column".into(),
            )),
            _ => Ok(Distribution { kind, key, nodes }),
        }
    }

    /// The node (index into [`Distribution::nodes`]) that stores a row whose distribution column
    /// holds `key`. HASH and MODULO only; `None` for the others.
    /// Errors: 22003 if a MODULO key is not an integer value (cannot happen for a checked column).
    pub fn node_for_key(&self, key: &Value) -> Result<Option<usize>, PgError> {
        let n = self.nodes.len();
        match self.kind {
            LocatorType::Hash => {
                let h = match (key, &self.key) {
                    (Value::Null, _) => return Ok(Some(0)),
                    (Value::Text(s), Some((_, DataType::Char(_)))) => hash_bpchar(s),
                    (v, _) => hash_value(v).ok_or_else(|| {
                        PgError::new(
                            SqlState::FeatureNotSupported,
                            "this value has no distribution hash",
                        )
                    })?,
                };
                Ok(Some(h as usize % n))
            }
            LocatorType::Modulo => {
                let v: i64 = match key {
                    Value::Null => return Ok(Some(0)),
                    Value::Int2(i) => *i as i64,
                    Value::Int4(i) => *i as i64,
                    Value::Int8(i) => *i,
                    _ => {
                        return Err(PgError::new(
                            SqlState::NumericValueOutOfRange,
                            "MODULO distribution needs an integer value",
                        ))
                    }
                };
                Ok(Some(v.rem_euclid(n as i64) as usize))
            }
            LocatorType::RoundRobin | LocatorType::Replicated => Ok(None),
        }
    }

    /// The nodes an INSERT of `row` (the table's full row, columns in table order) writes to.
    /// `round_robin` is the session's counter for ROUNDROBIN tables, advanced by one.
    pub fn nodes_for_insert(
        &self,
        row: &[Value],
        round_robin: &mut u64,
    ) -> Result<Vec<usize>, PgError> {
        match self.kind {
            LocatorType::Replicated => Ok((0..self.nodes.len()).collect()),
            LocatorType::RoundRobin => {
                let i = (*round_robin % self.nodes.len() as u64) as usize;
                *round_robin = round_robin.wrapping_add(1);
                Ok(vec![i])
            }
            LocatorType::Hash | LocatorType::Modulo => {
                let Some((col, _)) = &self.key else {
                    return Err(PgError::new(
                        SqlState::InternalError,
                        "distributed table without a distribution column",
                    ));
                };
                let v = row.get(*col).unwrap_or(&Value::Null);
                Ok(self.node_for_key(v)?.into_iter().collect())
            }
        }
    }

    /// The nodes a statement visits when its WHERE clause restricts the distribution column to
    /// `keys` (`a = c`, `a IN (c1, c2)`, bound parameters already substituted), or `None` when it
    /// does not. Writes to a replicated table visit every node; reads visit one (`preferred` if the
    /// table is on it, else the first).
    pub fn targets(
        &self,
        keys: Option<&[Value]>,
        write: bool,
        preferred: Option<&str>,
    ) -> Result<Targets, PgError> {
        match self.kind {
            LocatorType::Replicated if write => Ok(Targets::All),
            LocatorType::Replicated => {
                let i = preferred
                    .and_then(|p| self.nodes.iter().position(|n| n == p))
                    .unwrap_or(0);
                Ok(Targets::Nodes(vec![i]))
            }
            LocatorType::RoundRobin => Ok(Targets::All),
            LocatorType::Hash | LocatorType::Modulo => match keys {
                None => Ok(Targets::All),
                Some(keys) => {
                    let mut nodes = Vec::new();
                    for k in keys {
                        if let Some(i) = self.node_for_key(k)? {
                            nodes.push(i);
                        }
                    }
                    nodes.sort_unstable();
                    nodes.dedup();
                    Ok(Targets::Nodes(nodes))
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn nodes(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("dn{i}")).collect()
    }

    #[test]
    fn hash_placement_is_postgres_hash_mod_n() {
        let d = Distribution::new(LocatorType::Hash, Some((0, DataType::Int4)), nodes(3)).unwrap();
        // hashint4(1) = -1905060026 → as u32 2389907270 → mod 3 = 2.
        assert_eq!(
            d.node_for_key(&Value::Int4(1)).unwrap(),
            Some(2389907270 % 3)
        );
        assert_eq!(d.node_for_key(&Value::Null).unwrap(), Some(0));
    }

    #[test]
    fn modulo_placement_handles_negative_keys() {
        let d =
            Distribution::new(LocatorType::Modulo, Some((0, DataType::Int8)), nodes(3)).unwrap();
        assert_eq!(d.node_for_key(&Value::Int8(7)).unwrap(), Some(1));
        assert_eq!(d.node_for_key(&Value::Int8(-1)).unwrap(), Some(2));
    }

    #[test]
    fn replicated_reads_prefer_and_writes_go_everywhere() {
        let d = Distribution::new(LocatorType::Replicated, None, nodes(3)).unwrap();
        assert_eq!(d.targets(None, true, None).unwrap(), Targets::All);
        assert_eq!(
            d.targets(None, false, Some("dn3")).unwrap(),
            Targets::Nodes(vec![2])
        );
        assert_eq!(
            d.targets(None, false, Some("elsewhere")).unwrap(),
            Targets::Nodes(vec![0])
        );
    }

    #[test]
    fn checks_reject_bad_definitions() {
        assert!(
            Distribution::new(LocatorType::Hash, Some((0, DataType::Jsonb)), nodes(2)).is_err()
        );
        assert!(
            Distribution::new(LocatorType::Modulo, Some((0, DataType::Text)), nodes(2)).is_err()
        );
        assert!(Distribution::new(LocatorType::Hash, None, nodes(2)).is_err());
        assert!(Distribution::new(LocatorType::Replicated, None, vec![]).is_err());
        assert!(
            Distribution::new(LocatorType::RoundRobin, None, vec!["a".into(), "a".into()]).is_err()
        );
    }

    #[test]
    fn default_distribution_follows_xc() {
        let cols = vec![
            ("doc".to_string(), DataType::Jsonb),
            ("id".to_string(), DataType::Int8),
            ("name".to_string(), DataType::Text),
        ];
        assert_eq!(
            default_distribution(&cols, Some(&[2])),
            (LocatorType::Hash, Some(2))
        );
        assert_eq!(
            default_distribution(&cols, None),
            (LocatorType::Hash, Some(1))
        );
        let only_json = vec![("doc".to_string(), DataType::Json)];
        assert_eq!(
            default_distribution(&only_json, None),
            (LocatorType::RoundRobin, None)
        );
    }

    proptest! {
        /// Pruning by key agrees with where inserts put the row, for every key.
        #[test]
        fn targets_agree_with_insert_placement(k in any::<i64>(), n in 1usize..8, modulo in any::<bool>()) {
            let kind = if modulo { LocatorType::Modulo } else { LocatorType::Hash };
            let d = Distribution::new(kind, Some((1, DataType::Int8)), nodes(n)).unwrap();
            let row = vec![Value::Text("x".into()), Value::Int8(k)];
            let mut rr = 0;
            let placed = d.nodes_for_insert(&row, &mut rr).unwrap();
            prop_assert_eq!(placed.len(), 1);
            prop_assert!(placed[0] < n);
            prop_assert_eq!(d.targets(Some(&[Value::Int8(k)]), false, None).unwrap(), Targets::Nodes(placed));
        }

        /// Round robin spreads rows evenly.
        #[test]
        fn round_robin_is_even(n in 1usize..6, rows in 0usize..60) {
            let d = Distribution::new(LocatorType::RoundRobin, None, nodes(n)).unwrap();
            let mut rr = 0;
            let mut counts = vec![0usize; n];
            for _ in 0..rows {
                for i in d.nodes_for_insert(&[], &mut rr).unwrap() {
                    counts[i] += 1;
                }
            }
            let (min, max) = (counts.iter().min().copied().unwrap_or(0), counts.iter().max().copied().unwrap_or(0));
            prop_assert!(max - min <= 1);
        }
    }
}

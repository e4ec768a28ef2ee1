#!/usr/bin/env python3
"""Write the seed corpus of the `sql_plan` fuzz target: fuzz/corpus/sql_plan/, one SQL text per file.

Usage (from anywhere): python3 fuzz/scripts/make_sql_plan_corpus.py [--max N]   (default N = 300)

Seeds are the hand-written statements below (they use the fuzzing schema of fuzz/harness/sql_plan.rs: tables
t1, t2, view v12) plus SQL taken from the statement/query records of tests/sql/**/*.slt, picked round-robin
over the files (so every area is represented) until N files in all; duplicates are dropped. Each file is named
after the SHA-1 of its content, as libFuzzer names corpus entries. The directory is emptied first, so the
output depends only on the .slt files and this script.
"""

import argparse
import hashlib
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SCHEMA_SEEDS = [
    "SELECT * FROM t1 WHERE id = 1",
    "SELECT name, amount FROM t1 WHERE id IN (1, 3) ORDER BY name DESC LIMIT 1",
    "SELECT t1.name, count(t2.id), sum(t2.price * t2.qty) FROM t1 LEFT JOIN t2 ON t2.t1_id = t1.id "
    "GROUP BY t1.name HAVING count(*) > 0 ORDER BY 1",
    "SELECT * FROM v12 WHERE total > 1",
    "SELECT id % 2, count(*), sum(amount), avg(amount) FROM t1 GROUP BY 1",
    "SELECT doc -> 'a', doc ->> 'b', doc @> '{\"a\": 1}', jsonb_typeof(doc) FROM t1",
    "SELECT tags[1], array_length(tags, 1), 'x' = ANY (tags), vals || 4 FROM t1, t2 WHERE t2.t1_id = t1.id",
    "SELECT id, row_number() OVER (PARTITION BY t1_id ORDER BY price NULLS FIRST), "
    "lag(qty) OVER w FROM t2 WINDOW w AS (ORDER BY id)",
    "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5) SELECT * FROM r JOIN t1 ON t1.id = r.n",
    "SELECT * FROM t1 WHERE EXISTS (SELECT 1 FROM t2 WHERE t2.t1_id = t1.id AND t2.qty > 1)",
    "SELECT name FROM t1 WHERE amount > (SELECT avg(price) FROM t2) UNION SELECT note FROM t2 EXCEPT SELECT ''",
    "SELECT DISTINCT ON (t1_id) t1_id, id FROM t2 ORDER BY t1_id, id DESC",
    "SELECT * FROM t1, LATERAL (SELECT qty FROM t2 WHERE t2.t1_id = t1.id ORDER BY qty LIMIT 1) s",
    "SELECT CASE WHEN flag THEN ts::date ELSE NULL END, ts + interval '1 day', date_trunc('month', ts) FROM t1",
    "SELECT created AT TIME ZONE 'UTC', extract(epoch FROM created), d - 1 FROM t2 WHERE created IS NOT NULL",
    "INSERT INTO t1 VALUES (5, 'delta', 1.005, now(), '{}', ARRAY['q']) RETURNING *",
    "INSERT INTO t1 (id, name) VALUES (1, 'dup') ON CONFLICT (id) DO UPDATE SET name = excluded.name RETURNING id, name",
    "UPDATE t2 SET qty = qty + 1, price = price * 2 WHERE t1_id = 1 RETURNING id, qty",
    "DELETE FROM t1 WHERE id = 3",
    "DELETE FROM t2 USING t1 WHERE t2.t1_id = t1.id AND t1.flag",
    "EXPLAIN SELECT * FROM t1 JOIN t2 ON t1.id = t2.t1_id WHERE t2.t1_id = 2",
    "EXPLAIN (COSTS OFF) SELECT name FROM t1 ORDER BY name",
    "SELECT * FROM t2 WHERE t1_id BETWEEN 1 AND 2 AND note LIKE 'f%' OR vals @> ARRAY[2]",
    "SELECT string_agg(name, ',' ORDER BY name), array_agg(id), jsonb_agg(doc) FROM t1",
    "SELECT count(*) FILTER (WHERE qty > 0), max(created), min(d) FROM t2",
    "SELECT x FROM generate_series(1, 10) x WHERE x NOT IN (SELECT t1_id FROM t2 WHERE t1_id IS NOT NULL)",
    "SELECT id::text || name, length(name), upper(name), substring(name FROM 2 FOR 2) FROM t1 ORDER BY 1",
    "SELECT amount / 0 FROM t1",
    "SELECT * FROM t1 a FULL JOIN t2 b ON a.id = b.t1_id CROSS JOIN (VALUES (1), (2)) v(x)",
    "CREATE TABLE t3 AS SELECT * FROM v12; SELECT * FROM t3",
    "ALTER TABLE t2 ADD COLUMN extra int DEFAULT 7; SELECT extra FROM t2",
    "CREATE INDEX ON t2 (price); SELECT * FROM t2 WHERE price = 1.5",
    "PREPARE p(int) AS SELECT * FROM t1 WHERE id = $1; EXECUTE p(2)",
    "DECLARE c CURSOR FOR SELECT * FROM t2 ORDER BY id; FETCH 2 FROM c",
    "SAVEPOINT s; DELETE FROM t2; ROLLBACK TO s; SELECT count(*) FROM t2",
    "SELECT * FROM t1 ORDER BY id FOR UPDATE",
    "SELECT 1 FROM t1 GROUP BY ROLLUP (name, flag)",
]


def records(path):
    """The SQL text of each statement/query record of one .slt file, in order."""
    out = []
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    i = 0
    while i < len(lines):
        head = lines[i].split()
        i += 1
        if not head or head[0] not in ("statement", "query"):
            continue
        sql = []
        while i < len(lines) and lines[i].strip() != "" and lines[i].strip() != "----":
            sql.append(lines[i])
            i += 1
        if sql:
            out.append("\n".join(sql))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--max", type=int, default=300)
    args = ap.parse_args()
    suite = os.path.join(ROOT, "tests", "sql")
    files = []
    for d, _, names in os.walk(suite):
        files += [os.path.join(d, n) for n in names if n.endswith(".slt")]
    files.sort()
    per_file = [records(p) for p in files]
    seeds, seen = [], set()

    def add(sql):
        if sql not in seen and len(seeds) < args.max:
            seen.add(sql)
            seeds.append(sql)

    for s in SCHEMA_SEEDS:
        add(s)
    # Round-robin, spread evenly through each file (a file's first records are mostly its setup).
    rounds = max((len(r) for r in per_file), default=0)
    order = []
    for j in range(rounds):
        for recs in per_file:
            if recs:
                # The j-th pick of a file walks it with a stride co-prime to its length.
                stride = 7 if len(recs) % 7 else 5 if len(recs) % 5 else 1
                order.append(recs[(j * stride) % len(recs)] if j < len(recs) else None)
    for sql in order:
        if sql is not None:
            add(sql)
    out = os.path.join(ROOT, "fuzz", "corpus", "sql_plan")
    os.makedirs(out, exist_ok=True)
    for n in os.listdir(out):
        os.remove(os.path.join(out, n))
    for sql in seeds:
        data = sql.encode("utf-8")
        with open(os.path.join(out, hashlib.sha1(data).hexdigest()), "wb") as f:
            f.write(data)
    print("%d seeds (%d hand-written, %d from %d .slt files) in %s"
          % (len(seeds), len(SCHEMA_SEEDS), len(seeds) - len(SCHEMA_SEEDS), len(files), os.path.relpath(out, ROOT)))


if __name__ == "__main__":
    sys.exit(main())

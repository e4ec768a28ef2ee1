#!/usr/bin/env python3
"""Fill (or check) the expected results of the sqllogictest files under tests/sql by running them on PostgreSQL 15.

Usage:
    python3 scripts/slt-expected.py [--check] [--runs N] [PATH ...]      (default PATH: tests/sql)

PATH is a .slt file or a directory searched recursively for *.slt. Each file is run, record by record and in
order, on its own connection(s) to a fresh database of a PostgreSQL server:

  * by default a throwaway cluster is made with Debian's PostgreSQL 15 (`apt-get install -y postgresql`):
    initdb in a temporary directory (as the `postgres` user when run as root), started with pg_ctl on a free
    port of 127.0.0.1, stopped and removed at the end;
  * with --host/--port (and --user, --password) an existing server is used instead; the script creates (and
    drops at the end) the database named by --dbname.

The database is created from template0 with UTF8 encoding and the C collation, and every connection starts
with TimeZone=UTC, DateStyle='ISO, MDY', IntervalStyle=postgres and extra_float_digits=1, the session defaults
that the expected results assume.

Without --check the files are rewritten in place: each `query` record gets its type letters (I for integer
types, R for float4/float8/numeric, T for everything else) and its result lines from PostgreSQL's output, each
`statement error` / `query error` record gets PostgreSQL's SQLSTATE as `statement error (XXXXX)`. A record
whose outcome contradicts its kind (a `statement ok` that fails, a `statement error` that succeeds, a `query`
that fails) is reported and left as it is, and the script exits 1.

With --check nothing is written: every record is compared with what the file says (results compared the way
the sqllogictest crate's default validator does: whitespace-normalised lines), differences are printed and the
exit status is 1 when there is any. --runs 2 runs every file twice in the same database, which also checks
that a file cleans up after itself. After every file the script also checks that no table, view, sequence,
function, type or schema the file made is left behind.

COPY FROM STDIN / TO STDOUT cannot be written as sqllogictest records, so such tests are psql scripts
(*.psql): psql runs each one (-X -a, VERBOSITY=sqlstate) and its whole output is the expected result, kept
beside it as *.out (rewritten without --check, compared with --check).

The script needs only python3's standard library (and psql for the *.psql scripts): it speaks PostgreSQL's wire protocol (simple query protocol)
itself, so NULLs, empty strings and SQLSTATEs are seen exactly. Value formatting (the same the pgxc runner uses):
NULL is written `NULL`, an empty string `(empty)`, every other value as PostgreSQL's text output; the columns of
a row are joined by one space.
"""

import argparse
import hashlib
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections import OrderedDict

SESSION_OPTIONS = [
    ("client_encoding", "UTF8"),
    ("TimeZone", "UTC"),
    ("DateStyle", "ISO, MDY"),
    ("IntervalStyle", "postgres"),
    ("extra_float_digits", "1"),
]

INT_OIDS = {20, 21, 23, 26}  # int8, int2, int4, oid
REAL_OIDS = {700, 701, 1700}  # float4, float8, numeric

SQLSTATE_RE = re.compile(r"^\(([0-9A-Z]{5})\)$")


# --------------------------------------------------------------------------------------------- wire protocol


class PgError(Exception):
    def __init__(self, fields):
        self.fields = fields
        self.sqlstate = fields.get("C", "")
        self.message = fields.get("M", "")
        super().__init__("%s: %s (SQLSTATE %s)" % (fields.get("S", "ERROR"), self.message, self.sqlstate))


class Result:
    def __init__(self):
        self.columns = None  # list of (name, type oid) or None when the statement returns no rows
        self.rows = []
        self.tag = None


class PgConn:
    """A minimal client of the PostgreSQL v3 protocol: startup, trust/password/md5 auth, simple queries."""

    def __init__(self, host, port, user, dbname, password=None, timeout=120):
        if host.startswith("/"):
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(timeout)
            self.sock.connect(os.path.join(host, ".s.PGSQL.%d" % port))
        else:
            self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""
        params = [("user", user), ("database", dbname)]
        opts = " ".join("-c %s=%s" % (k, v.replace(" ", "\\ ")) for k, v in SESSION_OPTIONS if k != "client_encoding")
        params += [("client_encoding", "UTF8"), ("options", opts)]
        body = struct.pack("!i", 196608)
        for k, v in params:
            body += k.encode() + b"\0" + v.encode() + b"\0"
        body += b"\0"
        self.sock.sendall(struct.pack("!i", len(body) + 4) + body)
        while True:
            t, data = self._read()
            if t == b"R":
                code = struct.unpack("!i", data[:4])[0]
                if code == 0:
                    continue
                if password is None:
                    raise RuntimeError("the server asks for a password (auth code %d): use --password" % code)
                if code == 3:
                    self._send(b"p", password.encode() + b"\0")
                elif code == 5:
                    salt = data[4:8]
                    inner = hashlib.md5(password.encode() + user.encode()).hexdigest().encode()
                    self._send(b"p", b"md5" + hashlib.md5(inner + salt).hexdigest().encode() + b"\0")
                else:
                    raise RuntimeError("unsupported authentication method %d (use trust, password or md5)" % code)
            elif t == b"E":
                raise PgError(self._fields(data))
            elif t == b"Z":
                break

    def _send(self, t, body):
        self.sock.sendall(t + struct.pack("!i", len(body) + 4) + body)

    def _readn(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise RuntimeError("server closed the connection")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _read(self):
        head = self._readn(5)
        n = struct.unpack("!i", head[1:])[0]
        return head[:1], self._readn(n - 4)

    @staticmethod
    def _fields(data):
        fields = {}
        for part in data.split(b"\0"):
            if part:
                fields[chr(part[0])] = part[1:].decode("utf-8", "replace")
        return fields

    def query(self, sql):
        """Runs sql with the simple query protocol; returns (list of Result, PgError or None)."""
        self._send(b"Q", sql.encode() + b"\0")
        results, err, cur = [], None, None
        while True:
            t, data = self._read()
            if t == b"T":
                cur = Result()
                cur.columns = []
                (n,) = struct.unpack("!h", data[:2])
                pos = 2
                for _ in range(n):
                    end = data.index(b"\0", pos)
                    name = data[pos:end].decode()
                    pos = end + 1
                    _tab, _att, oid, _len, _mod, _fmt = struct.unpack("!ihihih", data[pos : pos + 18])
                    pos += 18
                    cur.columns.append((name, oid))
            elif t == b"D":
                (n,) = struct.unpack("!h", data[:2])
                pos, row = 2, []
                for _ in range(n):
                    (ln,) = struct.unpack("!i", data[pos : pos + 4])
                    pos += 4
                    if ln < 0:
                        row.append(None)
                    else:
                        row.append(data[pos : pos + ln].decode("utf-8"))
                        pos += ln
                cur.rows.append(row)
            elif t == b"C":
                if cur is None:
                    cur = Result()
                cur.tag = data.rstrip(b"\0").decode()
                results.append(cur)
                cur = None
            elif t == b"I":
                results.append(Result())
            elif t == b"E":
                err = PgError(self._fields(data))
            elif t == b"G":  # COPY FROM STDIN: not supported in .slt files
                self._send(b"f", b"COPY FROM STDIN is not supported by slt-expected.py\0")
            elif t == b"Z":
                return results, err
            # N (notice), S (parameter status), A (notification), H/d/c (COPY TO STDOUT data): ignored

    def close(self):
        try:
            self._send(b"X", b"")
            self.sock.close()
        except OSError:
            pass


# ------------------------------------------------------------------------------------------------- slt files


class Record:
    def __init__(self, kind, header_idx, sql_lines, end_idx, connection):
        self.kind = kind  # "statement" or "query"
        self.header_idx = header_idx  # index of the header line
        self.sql = "\n".join(sql_lines)
        self.end_idx = end_idx  # index one past the record's last line
        self.connection = connection
        self.results_idx = None  # index of the first result line (after ----), if any
        self.results = []


def parse_file(lines, path):
    records = []
    i, n = 0, len(lines)
    connection = "default"
    while i < n:
        line = lines[i]
        if line == "" or line.startswith("#"):
            i += 1
            continue
        tokens = line.split()
        if not tokens:
            i += 1
            continue
        if tokens[0] == "connection" and len(tokens) == 2:
            connection = tokens[1]
            i += 1
            continue
        if tokens[0] in ("statement", "query"):
            header = i
            i += 1
            sql = []
            delim = False
            while i < n and lines[i] != "":
                if lines[i] == "----":
                    delim = True
                    i += 1
                    break
                sql.append(lines[i])
                i += 1
            rec = Record(tokens[0], header, sql, i, connection)
            connection = "default"
            if delim:
                if tokens[0] == "statement" or (len(tokens) > 1 and tokens[1] == "error"):
                    raise SystemExit("%s:%d: `----` after a statement or an error record is not supported" % (path, header + 1))
                rec.results_idx = i
                while i < n and lines[i] != "":
                    rec.results.append(lines[i])
                    i += 1
            rec.end_idx = i
            if not sql:
                raise SystemExit("%s:%d: record without SQL" % (path, header + 1))
            records.append(rec)
            continue
        if tokens[0] in ("halt", "hash-threshold", "skipif", "onlyif", "control", "subtest", "sleep", "include", "system", "let"):
            raise SystemExit("%s:%d: `%s` records are not used in this suite" % (path, i + 1, tokens[0]))
        raise SystemExit("%s:%d: cannot parse line: %r" % (path, i + 1, line))
    return records


def fmt_value(v):
    if v is None:
        return "NULL"
    if v == "":
        return "(empty)"
    return v


def normalize(s):
    return " ".join(s.split())


def type_letters(columns):
    out = ""
    for _name, oid in columns:
        out += "I" if oid in INT_OIDS else "R" if oid in REAL_OIDS else "T"
    return out


# ------------------------------------------------------------------------------------------------- running


class Outcome:
    def __init__(self):
        self.problems = []  # (line number, text)
        self.records = 0


def run_file(path, server, check, outcome):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    lines = text.split("\n")
    trailing_newline = text.endswith("\n")
    if trailing_newline:
        lines = lines[:-1]
    records = parse_file(lines, path)
    conns = OrderedDict()
    edits = {}  # header index -> (new header line, new result lines or None)

    def problem(rec, msg):
        outcome.problems.append("%s:%d: %s\n    SQL: %s" % (path, rec.header_idx + 1, msg, rec.sql.replace("\n", "\n         ")))

    try:
        for rec in records:
            outcome.records += 1
            if rec.connection not in conns:
                conns[rec.connection] = server.connect()
            conn = conns[rec.connection]
            results, err = conn.query(rec.sql)
            tokens = lines[rec.header_idx].split()
            if len([r for r in results if r.columns is not None or r.tag]) > 1:
                problem(rec, "a record must hold exactly one SQL statement")
            if len(tokens) >= 2 and tokens[1] == "error":
                expected = " ".join(tokens[2:])
                if err is None:
                    problem(rec, "expected an error, but the statement succeeded")
                    continue
                new_header = "%s error (%s)" % (tokens[0], err.sqlstate)
                if check:
                    m = SQLSTATE_RE.match(expected)
                    if m:
                        if m.group(1) != err.sqlstate:
                            problem(rec, "expected SQLSTATE %s, got %s" % (m.group(1), err))
                    elif expected and not re.search(expected, str(err)):
                        problem(rec, "error %r does not match %r" % (str(err), expected))
                    elif not expected:
                        problem(rec, "error record without an expected SQLSTATE (got %s)" % err)
                else:
                    edits[rec.header_idx] = (new_header, None)
                continue
            if err is not None:
                problem(rec, "unexpected error: %s" % err)
                continue
            if rec.kind == "statement":
                if len(tokens) < 2 or tokens[1] != "ok":
                    problem(rec, "only `statement ok` and `statement error` are used in this suite")
                continue
            # query with results
            res = results[-1] if results else Result()
            if res.columns is None:
                problem(rec, "query returned no result set (use `statement ok`)")
                continue
            rows = [[fmt_value(v) for v in row] for row in res.rows]
            bad = [v for row in rows for v in row if "\n" in v or v.strip() == ""]
            if bad:
                problem(rec, "values with newlines or only whitespace cannot be written in an .slt file: %r" % bad[:3])
                continue
            sort_mode = tokens[2] if len(tokens) > 2 and tokens[2] in ("nosort", "rowsort", "valuesort") else None
            rest = tokens[3:] if sort_mode else tokens[2:]
            if sort_mode == "rowsort":
                rows.sort()
            elif sort_mode == "valuesort":
                rows = sorted([v] for row in rows for v in row)
            actual_lines = [" ".join(row) for row in rows]
            types = type_letters(res.columns)
            header = " ".join(["query", types] + ([sort_mode] if sort_mode else []) + rest)
            if check:
                if len(tokens) < 2 or tokens[1] != types:
                    problem(rec, "column types: file says %r, PostgreSQL gives %r" % (tokens[1] if len(tokens) > 1 else "", types))
                exp = [normalize(l) for l in rec.results]
                act = [normalize(l) for l in actual_lines]
                if exp != act:
                    problem(rec, "results differ\n    expected:\n%s\n    actual:\n%s" % (
                        "\n".join("      " + l for l in rec.results), "\n".join("      " + l for l in actual_lines)))
            else:
                edits[rec.header_idx] = (header, actual_lines)
    finally:
        for c in conns.values():
            c.close()

    leftovers = server.leftovers()
    if leftovers:
        outcome.problems.append("%s: the file leaves behind: %s" % (path, ", ".join(leftovers)))
        server.reset()

    if not check and edits:
        out = []
        recs_by_header = {r.header_idx: r for r in records}
        i = 0
        while i < len(lines):
            if i in edits:
                rec = recs_by_header[i]
                header, results = edits[i]
                out.append(header)
                if results is None:
                    out.extend(lines[i + 1 : rec.end_idx])
                else:
                    sql_end = rec.results_idx - 1 if rec.results_idx is not None else rec.end_idx
                    out.extend(lines[i + 1 : sql_end])
                    out.append("----")
                    out.extend(results)
                i = rec.end_idx
                continue
            out.append(lines[i])
            i += 1
        new_text = "\n".join(out) + ("\n" if trailing_newline else "")
        if new_text != text:
            with open(path, "w", encoding="utf-8") as f:
                f.write(new_text)
    return len(records)


def run_psql_file(path, server, check, outcome, psql):
    """COPY FROM STDIN / TO STDOUT cannot be written as sqllogictest records: such tests are psql scripts
    (*.psql) whose expected output, psql's own echo of the script and its results, is kept beside them in
    *.out (written without --check, compared with --check)."""
    env = dict(os.environ, PGHOST=server.host, PGPORT=str(server.port), PGUSER=server.user,
               PGDATABASE=server.dbname, PGTZ="UTC", PGDATESTYLE="ISO, MDY", PGOPTIONS="-c IntervalStyle=postgres",
               PGCLIENTENCODING="UTF8")
    if server.password:
        env["PGPASSWORD"] = server.password
    with open(path, encoding="utf-8") as f:
        proc = subprocess.run([psql, "-X", "-a", "-q", "-v", "ON_ERROR_STOP=0", "-v", "VERBOSITY=sqlstate"],
                              stdin=f, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    actual = proc.stdout.decode("utf-8")
    out_path = path[: -len(".psql")] + ".out"
    statements = sum(1 for line in open(path, encoding="utf-8") if line.rstrip().endswith(";"))
    if check:
        expected = open(out_path, encoding="utf-8").read() if os.path.exists(out_path) else None
        if expected != actual:
            import difflib
            diff = "".join(difflib.unified_diff((expected or "").splitlines(True), actual.splitlines(True), out_path, "actual"))
            outcome.problems.append("%s: output differs from %s\n%s" % (path, out_path, diff))
    else:
        with open(out_path, "w", encoding="utf-8") as f:
            f.write(actual)
    outcome.records += statements
    leftovers = server.leftovers()
    if leftovers:
        outcome.problems.append("%s: the file leaves behind: %s" % (path, ", ".join(leftovers)))
        server.reset()
    return statements


# ------------------------------------------------------------------------------------------------- servers


LEFTOVERS_SQL = """
SELECT 'relation ' || n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
   AND n.nspname NOT LIKE 'pg_temp%'
UNION ALL
SELECT 'function ' || n.nspname || '.' || p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
UNION ALL
SELECT 'type ' || n.nspname || '.' || t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
   AND n.nspname NOT LIKE 'pg_temp%' AND t.typrelid = 0 AND t.typelem = 0
UNION ALL
SELECT 'schema ' || nspname FROM pg_namespace
 WHERE nspname NOT IN ('pg_catalog', 'information_schema', 'public') AND nspname NOT LIKE 'pg_toast%'
   AND nspname NOT LIKE 'pg_temp%'
ORDER BY 1
"""


class Server:
    def __init__(self, host, port, user, password, dbname, admin_db):
        self.host, self.port, self.user, self.password = host, port, user, password
        self.dbname, self.admin_db = dbname, admin_db

    def connect(self, db=None):
        return PgConn(self.host, self.port, self.user, db or self.dbname, self.password)

    def create_db(self):
        c = self.connect(self.admin_db)
        try:
            for sql in (
                "DROP DATABASE IF EXISTS %s" % self.dbname,
                "CREATE DATABASE %s TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'" % self.dbname,
            ):
                _, err = c.query(sql)
                if err:
                    raise err
            res, _ = c.query("SHOW server_version_num")
            version = int(res[0].rows[0][0])
            if version // 10000 != 15:
                print("warning: the server is PostgreSQL %d, the expected results are PostgreSQL 15's" % (version // 10000), file=sys.stderr)
        finally:
            c.close()

    def drop_db(self):
        c = self.connect(self.admin_db)
        try:
            c.query("DROP DATABASE IF EXISTS %s" % self.dbname)
        finally:
            c.close()

    def leftovers(self):
        c = self.connect()
        try:
            res, err = c.query(LEFTOVERS_SQL)
            if err:
                raise err
            return [r[0] for r in res[0].rows]
        finally:
            c.close()

    def reset(self):
        self.drop_db()
        self.create_db()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Cluster:
    """A throwaway PostgreSQL cluster in a temporary directory."""

    def __init__(self, bindir):
        self.bindir = bindir
        for tool in ("initdb", "pg_ctl"):
            if not os.path.exists(os.path.join(bindir, tool)):
                raise SystemExit("%s/%s not found: install PostgreSQL 15 (Debian: apt-get install -y postgresql) "
                                 "or pass --pg-bin / --host" % (bindir, tool))
        self.dir = tempfile.mkdtemp(prefix="slt-pg-")
        self.as_postgres = os.geteuid() == 0
        if self.as_postgres:
            shutil.chown(self.dir, "postgres", "postgres")
        os.chmod(self.dir, 0o755)
        self.data = os.path.join(self.dir, "data")
        self.port = free_port()

    def _run(self, args):
        if self.as_postgres:
            args = ["runuser", "-u", "postgres", "--"] + args
        subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def start(self):
        self._run([os.path.join(self.bindir, "initdb"), "-D", self.data, "-U", "postgres", "--auth=trust",
                   "--encoding=UTF8", "--locale=C", "--no-sync"])
        opts = "-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c TimeZone=UTC -c lc_messages=C" % (self.port, self.dir)
        self._run([os.path.join(self.bindir, "pg_ctl"), "-D", self.data, "-w", "-l", os.path.join(self.dir, "log"),
                   "-o", opts, "start"])

    def stop(self):
        try:
            self._run([os.path.join(self.bindir, "pg_ctl"), "-D", self.data, "-m", "fast", "-w", "stop"])
        except subprocess.CalledProcessError as e:
            print("pg_ctl stop failed: %s" % e.stderr.decode(errors="replace"), file=sys.stderr)
        shutil.rmtree(self.dir, ignore_errors=True)


# ------------------------------------------------------------------------------------------------- main


def collect(paths):
    files = []
    for p in paths:
        if os.path.isdir(p):
            for root, _dirs, names in os.walk(p):
                files += [os.path.join(root, n) for n in names if n.endswith((".slt", ".psql"))]
        else:
            files.append(p)
    return sorted(files)


def area_of(path, roots):
    parts = os.path.normpath(path).split(os.sep)
    return parts[-2] if len(parts) >= 2 else "."


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("paths", nargs="*", default=["tests/sql"])
    ap.add_argument("--check", action="store_true", help="compare instead of rewriting; exit 1 on any difference")
    ap.add_argument("--runs", type=int, default=1, help="run every file this many times (2 also checks clean-up)")
    ap.add_argument("--psql", default="psql", help="psql client used for the *.psql (COPY) scripts")
    ap.add_argument("--pg-bin", default="/usr/lib/postgresql/15/bin", help="where initdb and pg_ctl are")
    ap.add_argument("--host", help="use this server (host name or socket directory) instead of a throwaway cluster")
    ap.add_argument("--port", type=int, default=5432)
    ap.add_argument("--user", default="postgres")
    ap.add_argument("--password")
    ap.add_argument("--dbname", default="pgxc_slt", help="database to create and run the files in")
    ap.add_argument("--admin-db", default="postgres", help="database to connect to when creating --dbname")
    args = ap.parse_args()

    files = collect(args.paths)
    if not files:
        raise SystemExit("no .slt or .psql files under %s" % " ".join(args.paths))

    cluster = None
    if args.host:
        server = Server(args.host, args.port, args.user, args.password, args.dbname, args.admin_db)
    else:
        cluster = Cluster(args.pg_bin)
        cluster.start()
        server = Server("127.0.0.1", cluster.port, "postgres", None, args.dbname, "postgres")
    started = time.time()
    per_area = OrderedDict()
    outcome = Outcome()
    try:
        server.create_db()
        for run in range(args.runs):
            for path in files:
                before = len(outcome.problems)
                runner = run_psql_file if path.endswith(".psql") else run_file
                extra = (args.psql,) if path.endswith(".psql") else ()
                n = runner(path, server, args.check or run > 0, outcome, *extra)
                if run == 0:
                    area = area_of(path, args.paths)
                    a = per_area.setdefault(area, [0, 0, 0])
                    a[0] += 1
                    a[1] += n
                bad = len(outcome.problems) - before
                if bad:
                    per_area.setdefault(area_of(path, args.paths), [0, 0, 0])[2] += bad
        server.drop_db()
    finally:
        if cluster:
            cluster.stop()

    for p in outcome.problems:
        print(p)
    print()
    print("%-14s %6s %8s %9s" % ("area", "files", "records", "problems"))
    tf = tr = tp = 0
    for area, (f, r, p) in per_area.items():
        print("%-14s %6d %8d %9d" % (area, f, r, p))
        tf, tr, tp = tf + f, tr + r, tp + p
    print("%-14s %6d %8d %9d" % ("total", tf, tr, tp))
    mode = "checked" if args.check else "filled"
    print("%s %d records in %d files (%d run%s) in %.1fs: %d problem%s" % (
        mode, tr, tf, args.runs, "" if args.runs == 1 else "s", time.time() - started, tp, "" if tp == 1 else "s"))
    sys.exit(1 if outcome.problems else 0)


if __name__ == "__main__":
    main()

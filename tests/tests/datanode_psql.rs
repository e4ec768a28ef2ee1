//! `pgxc datanode --standalone` driven by Debian's `psql`: CREATE TABLE, COPY FROM STDIN in text and CSV
//! (a few thousand rows each), aggregates, filtered and ordered queries, UPDATE/DELETE, a transaction block
//! rolled back, a duplicate-key error with `ON_ERROR_STOP` (exit code 3), COPY TO STDOUT, and a restart
//! (SIGKILL) after which the data is still there. Assertions are on psql's exact output.
//!
//! psql is required: CI installs `postgresql-client` (scripts/test-all.sh). Without it the test fails.

use pgxc_tests::{free_port, pgxc_bin, tail, unique_dir};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The running datanode and its directory; dropping it kills the process (printing its log tail when the
/// test fails) and removes the directory.
struct Datanode {
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl Datanode {
    fn start(dir: PathBuf) -> Datanode {
        let mut d = Datanode {
            dir,
            port: free_port(),
            child: None,
        };
        d.spawn();
        d
    }

    fn log(&self) -> PathBuf {
        self.dir.join("datanode.log")
    }

    fn spawn(&mut self) {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log())
            .expect("open log");
        let err = out.try_clone().expect("clone log handle");
        let child = Command::new(pgxc_bin())
            .args(["datanode", "--standalone", "-D"])
            .arg(self.dir.join("data"))
            .args(["--listen", &format!("127.0.0.1:{}", self.port)])
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .expect("spawn pgxc datanode");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            if let Some(Ok(Some(st))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("pgxc datanode exited at start: {st}");
            }
            assert!(
                Instant::now() < deadline,
                "pgxc datanode did not start listening"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL and start again on the same directory and port.
    fn restart(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.spawn();
    }

    /// Run psql with `args` (after the connection options), feeding `stdin`; returns (exit code, stdout,
    /// stderr).
    fn psql(&self, args: &[&str], stdin: &[u8]) -> (i32, String, String) {
        let mut child = Command::new("psql")
            .args(["-X", "-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", "postgres", "-d", "postgres", "-v", "ON_ERROR_STOP=1"])
            .args(args)
            .env("PGCONNECT_TIMEOUT", "10")
            .env_remove("PGPASSWORD")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run psql: {e}"));
        let mut input = child.stdin.take().expect("stdin");
        let data = stdin.to_vec();
        let writer = std::thread::spawn(move || {
            let _ = input.write_all(&data);
        });
        let out = child.wait_with_output().expect("psql output");
        let _ = writer.join();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// psql that must succeed; returns stdout.
    fn ok(&self, args: &[&str], stdin: &[u8]) -> String {
        let (code, out, err) = self.psql(args, stdin);
        assert_eq!(
            code, 0,
            "psql {args:?} failed:\nstdout:\n{out}\nstderr:\n{err}"
        );
        assert_eq!(err, "", "psql {args:?} wrote to stderr");
        out
    }

    /// `psql -A -t -c sql`: unaligned tuples only.
    fn query(&self, sql: &str) -> String {
        self.ok(&["-A", "-t", "-c", sql], b"")
    }
}

impl Drop for Datanode {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "----- tail of the datanode log -----\n{}",
                tail(&self.log(), 4000)
            );
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn require_psql() {
    match Command::new("psql").arg("--version").output() {
        Ok(o) if o.status.success() => {}
        other => panic!(
            "this test needs Debian's psql (apt-get install postgresql-client; scripts/test-all.sh installs it): {other:?}"
        ),
    }
}

#[test]
fn psql_loads_queries_and_survives_a_restart() {
    require_psql();
    let started = Instant::now();
    let mut dn = Datanode::start(unique_dir("datanode-psql"));

    assert_eq!(
        dn.ok(
            &[
                "-c",
                "CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL, price numeric(10,2), note text)",
                "-c",
                "CREATE TABLE people (id int PRIMARY KEY, name text, city text)",
            ],
            b""
        ),
        "CREATE TABLE\nCREATE TABLE\n"
    );

    // COPY FROM STDIN, text format: 3000 rows, with NULLs and escapes.
    let mut text = String::new();
    for i in 1..=3000 {
        let note = if i % 10 == 0 {
            "\\N".to_string()
        } else if i % 7 == 0 {
            format!("tab\\there {i}")
        } else {
            format!("n{i}")
        };
        text.push_str(&format!(
            "{i}\titem {i}\t{}.{:02}\t{note}\n",
            i % 100,
            i % 100
        ));
    }
    text.push_str("\\.\n");
    assert_eq!(
        dn.ok(&["-c", "COPY items FROM STDIN"], text.as_bytes()),
        "COPY 3000\n"
    );

    // \copy, CSV with a header, quoted fields with commas, quotes and newlines: 2000 rows.
    let csv_path = dn.dir.join("people.csv");
    let mut csv = String::from("id,name,city\n");
    for i in 1..=2000 {
        let city = match i % 4 {
            0 => "\"Paris, France\"".to_string(),
            1 => "Oslo".to_string(),
            2 => String::new(), // NULL
            _ => "\"say \"\"hi\"\"\nthere\"".to_string(),
        };
        csv.push_str(&format!("{i},person {i},{city}\n"));
    }
    std::fs::write(&csv_path, csv).expect("write csv");
    let copy_cmd = format!(
        "\\copy people FROM '{}' WITH (FORMAT csv, HEADER true)",
        csv_path.display()
    );
    assert_eq!(dn.ok(&["-c", &copy_cmd], b""), "COPY 2000\n");

    // Aggregates and filtered / ordered queries.
    assert_eq!(
        dn.query("SELECT count(*), sum(id), sum(price), count(note) FROM items"),
        "3000|4501500|149985.00|2700\n"
    );
    assert_eq!(
        dn.query("SELECT city, count(*) FROM people GROUP BY city ORDER BY city NULLS LAST"),
        "Oslo|500\nParis, France|500\nsay \"hi\"\nthere|500\n|500\n"
    );
    assert_eq!(
        dn.ok(
            &[
                "-c",
                "SELECT id, name, price, note FROM items WHERE id IN (3, 10, 11, 2999) ORDER BY price DESC",
            ],
            b""
        ),
        concat!(
            "  id  |   name    | price | note  \n",
            "------+-----------+-------+-------\n",
            " 2999 | item 2999 | 99.99 | n2999\n",
            "   11 | item 11   | 11.11 | n11\n",
            "   10 | item 10   | 10.10 | \n",
            "    3 | item 3    |  3.03 | n3\n",
            "(4 rows)\n",
            "\n"
        )
    );
    assert_eq!(
        dn.query("SELECT note FROM items WHERE id = 7"),
        "tab\there 7\n"
    );

    // UPDATE / DELETE, a transaction block rolled back, COPY inside a committed block.
    assert_eq!(
        dn.ok(
            &[
                "-c",
                "UPDATE items SET price = price + 1 WHERE id <= 100",
                "-c",
                "DELETE FROM people WHERE city IS NULL",
            ],
            b""
        ),
        "UPDATE 100\nDELETE 500\n"
    );
    let script = dn.dir.join("tx.sql");
    std::fs::write(
        &script,
        "BEGIN;\nDELETE FROM items;\nSELECT count(*) FROM items;\nROLLBACK;\n\
         BEGIN;\nCOPY people (id, name) FROM STDIN;\n5001\tlate\n5002\tlater\n\\.\nCOMMIT;\n",
    )
    .expect("write script");
    assert_eq!(
        dn.ok(
            &["-A", "-t", "-f", script.to_str().expect("utf8 path")],
            b""
        ),
        "BEGIN\nDELETE 3000\n0\nROLLBACK\nBEGIN\nCOPY 2\nCOMMIT\n"
    );

    // An error: psql prints PostgreSQL's message and, with ON_ERROR_STOP, exits 3 from a script.
    let bad = dn.dir.join("bad.sql");
    std::fs::write(
        &bad,
        "INSERT INTO items VALUES (3001, 'new', 1, NULL);\nINSERT INTO items VALUES (1, 'dup', 1, NULL);\nSELECT 'not reached';\n",
    )
    .expect("write script");
    let (code, out, err) = dn.psql(&["-f", bad.to_str().expect("utf8 path")], b"");
    assert_eq!(code, 3, "stdout:\n{out}\nstderr:\n{err}");
    assert_eq!(out, "INSERT 0 1\n");
    assert_eq!(
        err,
        format!(
            "psql:{}:2: ERROR:  duplicate key value violates unique constraint \"items_pkey\"\n",
            bad.display()
        )
    );
    // A syntax error reports its position.
    let (code, _, err) = dn.psql(&["-c", "SELECT id FROM items WHERE"], b"");
    assert_eq!(code, 1);
    assert!(
        err.starts_with(
            "ERROR:  syntax error at end of input\nLINE 1: SELECT id FROM items WHERE\n"
        ),
        "{err}"
    );

    // COPY TO STDOUT, text and CSV.
    assert_eq!(
        dn.ok(
            &[
                "-c",
                "COPY (SELECT id, note FROM items WHERE id IN (7, 10) ORDER BY id) TO STDOUT"
            ],
            b""
        ),
        "7\ttab\\there 7\n10\t\\N\n"
    );
    assert_eq!(
        dn.ok(
            &["-c", "COPY (SELECT id, city FROM people WHERE id IN (3, 4)) TO STDOUT WITH (FORMAT csv, HEADER)"],
            b""
        ),
        "id,city\n3,\"say \"\"hi\"\"\nthere\"\n4,\"Paris, France\"\n"
    );

    // Restart (SIGKILL): everything committed is still there.
    dn.restart();
    assert_eq!(
        dn.query("SELECT count(*), sum(id), sum(price), count(note) FROM items"),
        "3001|4504501|150086.00|2700\n"
    );
    assert_eq!(
        dn.query("SELECT count(*), count(city), max(id) FROM people"),
        "1502|1500|5002\n"
    );
    eprintln!("datanode_psql: {:.1?}", started.elapsed());
}

/// A long statement is cancelled: by `statement_timeout`, and by psql's cancel (SIGINT makes psql send a
/// CancelRequest with the backend key it got at startup). Both end with 57014 and the session stays usable.
#[test]
fn statements_can_be_cancelled() {
    require_psql();
    let dn = Datanode::start(unique_dir("cancel"));
    dn.ok(
        &[
            "-c",
            "CREATE TABLE t AS SELECT g AS x FROM generate_series(1, 3000) g",
        ],
        b"",
    );
    let slow = "SELECT count(*) FROM t a, t b WHERE a.x + b.x < 0";
    let started = Instant::now();
    let (code, _, err) = dn.psql(
        &[
            "-v",
            "VERBOSITY=verbose",
            "-c",
            "SET statement_timeout = '300ms'",
            "-c",
            slow,
        ],
        b"",
    );
    assert_ne!(code, 0);
    assert!(err.contains("57014"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the timeout did not stop it"
    );
    // psql's own cancel: run the slow statement, send SIGINT, expect the cancellation error.
    let mut child = Command::new("psql")
        .args(["-X", "-h", "127.0.0.1", "-p", &dn.port.to_string()])
        .args([
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-v",
            "VERBOSITY=verbose",
            "-c",
            slow,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("psql");
    std::thread::sleep(Duration::from_millis(700));
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let started = Instant::now();
    let out = loop {
        if let Ok(Some(_)) = child.try_wait() {
            break child.wait_with_output().expect("output");
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "cancel had no effect"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("57014"), "{err}");
    assert!(dn.ok(&["-c", "SELECT 1"], b"").contains('1'));
}

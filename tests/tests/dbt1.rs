//! A DBT-1-shaped workload (TPC-W's bookstore, as the XC primer's chapter C distributes it) on a pgxc cluster
//! beside PostgreSQL 15 on the same data:
//!
//! - `item` and `author` replicated (rarely written, joined by most queries);
//! - `customer`, `address`, `orders`, `order_line` and `cc_xacts` hash-distributed on the customer id (XC's
//!   "minor modification to the schema": the child tables carry the customer id, so their joins with each
//!   other are on the distribution key);
//! - `shopping_cart` and `shopping_cart_line` hash-distributed on the cart id.
//!
//! A deterministic generator (a seeded splitmix64, no clock) writes one SQL script; it is loaded through
//! Debian's psql into a `pgxc ctl up` cluster (ports 25100..25201) and into a PostgreSQL 15 server this test
//! starts (initdb + pg_ctl from /usr/lib/postgresql/15/bin, as the `postgres` user when run as root; port
//! 25500). Every typical query (point lookups by customer, order history joins on the customer id, best
//! sellers joining order_line with item and author, cart contents, new products, a buy-confirm transaction)
//! runs on both through psql, and the outputs (headers, rows, row counts) must be equal; every query has an
//! ORDER BY that makes its output unique.
//!
//! The EXPLAIN checks (XC's plan shapes: joins with replicated tables and on the distribution key shipped
//! whole as `Data Node Scan on "__REMOTE_FQS_QUERY__"` on the right datanodes; best sellers not shipped
//! whole: a coordinator Sort/Aggregate over one Data Node Scan of the pushed-down join) are a separate
//! test.

use pgxc_tests::{pgxc_bin, tail, unique_dir};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------------------
// The generator.

/// splitmix64: a deterministic stream from a seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in lo..=hi.
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % (hi - lo + 1) as u64) as i64
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.range(0, from.len() as i64 - 1) as usize]
    }

    /// A word of `n` syllables (TPC-W's DigSyl style, letters only).
    fn word(&mut self, n: usize) -> String {
        const SYL: [&str; 10] = ["BA", "OG", "AL", "RI", "RE", "SE", "AT", "UL", "IN", "NG"];
        (0..n).map(|_| self.pick(&SYL)).collect()
    }
}

/// TPC-W's subjects (a subset).
const SUBJECTS: [&str; 8] = [
    "ARTS",
    "BIOGRAPHIES",
    "BUSINESS",
    "CHILDREN",
    "COMPUTERS",
    "HISTORY",
    "SCIENCE",
    "TRAVEL",
];
const CITIES: [&str; 6] = ["Tokyo", "Osaka", "Paris", "Lyon", "Austin", "Boston"];

/// Table sizes.
const AUTHORS: i64 = 40;
const ITEMS: i64 = 160;
const CUSTOMERS: i64 = 120;
const CARTS: i64 = 60;

/// Cents as numeric text: 1234 -> "12.34".
fn money(cents: i64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

fn date(days_since_2000: i64) -> String {
    // A proleptic Gregorian civil date from a day number (Howard Hinnant's algorithm).
    let z = days_since_2000 + 730_425; // days from 0000-03-01 to 2000-01-01
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

fn timestamp(rng: &mut Rng, from_day: i64, to_day: i64) -> String {
    let day = rng.range(from_day, to_day);
    let secs = rng.range(0, 86_399);
    format!(
        "{} {:02}:{:02}:{:02}",
        date(day),
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Rows of one table, inserted in batches of 40 rows per statement.
fn inserts(out: &mut String, table: &str, rows: &[String]) {
    for chunk in rows.chunks(40) {
        let _ = writeln!(
            out,
            "INSERT INTO {table} VALUES\n  {};",
            chunk.join(",\n  ")
        );
    }
}

/// The schema; `xc` adds the DISTRIBUTE BY clauses (PostgreSQL gets the same tables without them).
fn schema(xc: bool) -> String {
    let d = |clause: &str| {
        if xc {
            format!(" DISTRIBUTE BY {clause}")
        } else {
            String::new()
        }
    };
    format!(
        "CREATE TABLE author (a_id int PRIMARY KEY, a_fname varchar(20), a_lname varchar(20), a_mname varchar(20), \
         a_dob date, a_bio text){};
CREATE TABLE item (i_id int PRIMARY KEY, i_title varchar(60), i_a_id int, i_pub_date date, i_publisher varchar(60), \
 i_subject varchar(60), i_desc text, i_related1 int, i_srp numeric(15,2), i_cost numeric(15,2), i_avail date, \
 i_stock int, i_isbn char(13), i_page int, i_backing varchar(15)){};
CREATE TABLE customer (c_id int PRIMARY KEY, c_uname varchar(20), c_passwd varchar(20), c_fname varchar(17), \
 c_lname varchar(17), c_phone varchar(18), c_email varchar(50), c_since date, c_last_visit date, \
 c_discount numeric(5,2), c_balance numeric(15,2), c_ytd_pmt numeric(15,2), c_birthdate date, c_data text){};
CREATE TABLE address (addr_id int, addr_c_id int, addr_street1 varchar(40), addr_city varchar(30), \
 addr_state varchar(20), addr_zip varchar(10), PRIMARY KEY (addr_c_id, addr_id)){};
CREATE TABLE orders (o_id int, o_c_id int, o_date timestamp, o_sub_total numeric(15,2), o_tax numeric(15,2), \
 o_total numeric(15,2), o_ship_type varchar(10), o_ship_date timestamp, o_bill_addr_id int, o_ship_addr_id int, \
 o_status varchar(15), PRIMARY KEY (o_c_id, o_id)){};
CREATE TABLE order_line (ol_id int, ol_o_id int, ol_c_id int, ol_i_id int, ol_qty int, ol_discount numeric(5,2), \
 ol_comments varchar(110), PRIMARY KEY (ol_c_id, ol_o_id, ol_id)){};
CREATE TABLE cc_xacts (cx_o_id int, cx_c_id int, cx_type varchar(10), cx_num varchar(20), cx_name varchar(30), \
 cx_expiry date, cx_xact_amt numeric(15,2), cx_xact_date timestamp, PRIMARY KEY (cx_c_id, cx_o_id)){};
CREATE TABLE shopping_cart (sc_id int PRIMARY KEY, sc_c_id int, sc_date timestamp, sc_sub_total numeric(15,2)){};
CREATE TABLE shopping_cart_line (scl_sc_id int, scl_i_id int, scl_qty int, PRIMARY KEY (scl_sc_id, scl_i_id)){};
",
        d("REPLICATION"),
        d("REPLICATION"),
        d("HASH (c_id)"),
        d("HASH (addr_c_id)"),
        d("HASH (o_c_id)"),
        d("HASH (ol_c_id)"),
        d("HASH (cx_c_id)"),
        d("HASH (sc_id)"),
        d("HASH (scl_sc_id)"),
    )
}

/// The data, as INSERT statements, from `seed`. Money is computed in integer cents, so both servers store
/// exactly the same values.
fn data(seed: u64) -> String {
    let mut r = Rng(seed);
    let mut out = String::new();
    let rows: Vec<String> = (1..=AUTHORS)
        .map(|a| {
            format!(
                "({a}, '{}', '{}', '{}', '{}', '{}')",
                r.word(2),
                r.word(3),
                r.word(1),
                date(-r.range(9000, 30000)),
                r.word(6)
            )
        })
        .collect();
    inserts(&mut out, "author", &rows);
    let mut cost = vec![0i64; ITEMS as usize + 1];
    let rows: Vec<String> = (1..=ITEMS)
        .map(|i| {
            let srp = r.range(500, 9999);
            cost[i as usize] = srp - r.range(0, srp / 2);
            format!(
                "({i}, '{} {}', {}, '{}', '{}', '{}', '{}', {}, {}, {}, '{}', {}, '{:013}', {}, '{}')",
                r.word(2),
                r.word(3),
                r.range(1, AUTHORS),
                date(r.range(-3000, 600)),
                r.word(2),
                r.pick(&SUBJECTS),
                r.word(8),
                r.range(1, ITEMS),
                money(srp),
                money(cost[i as usize]),
                date(r.range(600, 700)),
                r.range(10, 30),
                r.range(0, 9_999_999_999_999),
                r.range(20, 9999),
                r.pick(&["HARDBACK", "PAPERBACK", "AUDIO"]),
            )
        })
        .collect();
    inserts(&mut out, "item", &rows);
    let mut discount = vec![0i64; CUSTOMERS as usize + 1];
    let rows: Vec<String> = (1..=CUSTOMERS)
        .map(|c| {
            discount[c as usize] = r.range(0, 50);
            let uname = r.word(3);
            format!(
                "({c}, '{uname}{c}', '{}', '{}', '{}', '{}-{}', '{}{c}@example.com', '{}', '{}', {}, {}, {}, '{}', '{}')",
                uname.to_lowercase(),
                r.word(2),
                r.word(3),
                r.range(100, 999),
                r.range(1_000_000, 9_999_999),
                uname.to_lowercase(),
                date(r.range(-700, 0)),
                date(r.range(1, 60)),
                money(discount[c as usize]),
                money(r.range(-5000, 5000)),
                money(r.range(0, 90000)),
                date(-r.range(6000, 30000)),
                r.word(10),
            )
        })
        .collect();
    inserts(&mut out, "customer", &rows);
    let rows: Vec<String> = (1..=CUSTOMERS)
        .flat_map(|c| [2 * c - 1, 2 * c].map(|a| (c, a)))
        .map(|(c, a)| {
            format!(
                "({a}, {c}, '{} {} St', '{}', '{}', '{}')",
                r.range(1, 999),
                r.word(2),
                r.pick(&CITIES),
                r.word(1),
                r.range(10000, 99999)
            )
        })
        .collect();
    inserts(&mut out, "address", &rows);
    let (mut orders, mut lines, mut xacts) = (Vec::new(), Vec::new(), Vec::new());
    let mut o_id = 0;
    for c in 1..=CUSTOMERS {
        for _ in 0..r.range(0, 4) {
            o_id += 1;
            let mut sub = 0;
            for ol in 1..=r.range(1, 5) {
                let i = r.range(1, ITEMS);
                let qty = r.range(1, 9);
                let disc = discount[c as usize];
                sub += qty * cost[i as usize] * (100 - disc) / 100;
                lines.push(format!(
                    "({ol}, {o_id}, {c}, {i}, {qty}, {}, '{}')",
                    money(disc),
                    r.word(4)
                ));
            }
            let tax = sub * 825 / 10000;
            let total = sub + tax + 300;
            let when = timestamp(&mut r, 0, 300);
            orders.push(format!(
                "({o_id}, {c}, '{when}', {}, {}, {}, '{}', '{}', {}, {}, '{}')",
                money(sub),
                money(tax),
                money(total),
                r.pick(&["AIR", "UPS", "FEDEX", "SHIP", "COURIER", "MAIL"]),
                timestamp(&mut r, 301, 320),
                2 * c - 1,
                2 * c - r.range(0, 1),
                r.pick(&["PROCESSING", "SHIPPED", "PENDING", "DENIED"]),
            ));
            xacts.push(format!(
                "({o_id}, {c}, '{}', '{}', '{}', '{}', {}, '{when}')",
                r.pick(&["VISA", "MASTERCARD", "DISCOVER", "AMEX", "DINERS"]),
                r.range(1_000_000_000, 9_999_999_999),
                r.word(3),
                date(r.range(400, 2000)),
                money(total),
            ));
        }
    }
    inserts(&mut out, "orders", &orders);
    inserts(&mut out, "order_line", &lines);
    inserts(&mut out, "cc_xacts", &xacts);
    let (mut carts, mut cart_lines) = (Vec::new(), Vec::new());
    for sc in 1..=CARTS {
        let mut items: Vec<i64> = (0..r.range(1, 5)).map(|_| r.range(1, ITEMS)).collect();
        items.sort_unstable();
        items.dedup();
        let mut sub = 0;
        for i in &items {
            let qty = r.range(1, 4);
            sub += qty * cost[*i as usize];
            cart_lines.push(format!("({sc}, {i}, {qty})"));
        }
        carts.push(format!(
            "({sc}, {}, '{}', {})",
            r.range(1, CUSTOMERS),
            timestamp(&mut r, 300, 310),
            money(sub)
        ));
    }
    inserts(&mut out, "shopping_cart", &carts);
    inserts(&mut out, "shopping_cart_line", &cart_lines);
    out
}

/// TPC-W's buy-confirm for cart `sc` (whose subtotal is `sub` cents) and customer `c` in one
/// transaction: the cart becomes order `o` (lines, credit card transaction), the customer's balance is
/// charged, the cart emptied. The application computes the totals, as TPC-W's does.
fn buy_confirm(sc: i64, sub: i64, c: i64, o: i64) -> String {
    let tax = (sub * 825 + 5000) / 10000;
    let total = sub + tax + 300;
    let (sub, tax, total) = (money(sub), money(tax), money(total));
    format!(
        "BEGIN;
INSERT INTO orders VALUES ({o}, {c}, '2000-11-01 10:00:00', {sub}, {tax}, {total}, 'UPS', '2000-11-03 10:00:00', \
 {a}, {a}, 'PENDING');
INSERT INTO order_line SELECT row_number() OVER (ORDER BY scl_i_id), {o}, {c}, scl_i_id, scl_qty, 0.00, 'buy confirm' \
 FROM shopping_cart_line WHERE scl_sc_id = {sc};
INSERT INTO cc_xacts VALUES ({o}, {c}, 'VISA', '4111111111111111', 'TEST', '2003-01-01', {total}, '2000-11-01 10:00:00');
UPDATE customer SET c_balance = c_balance + {total}, c_last_visit = '2000-11-01' WHERE c_id = {c};
DELETE FROM shopping_cart_line WHERE scl_sc_id = {sc};
UPDATE shopping_cart SET sc_sub_total = 0 WHERE sc_id = {sc};
COMMIT;
",
        a = 2 * c - 1
    )
}

/// How XC plans a query (what the EXPLAIN test checks).
#[derive(Clone, Copy, Debug)]
enum Shape {
    /// Shipped whole to the one datanode holding customer `c`'s rows (or cart `c`'s: the same hash).
    FqsOneKey(i64),
    /// Joins on the distribution key and with replicated tables done on every datanode, whatever is
    /// left (ORDER BY, GROUP BY across datanodes) on the coordinator: XC 1.2 ships a query that sorts or
    /// groups whole only when one datanode is involved (SS_NEED_SINGLENODE), so it prints a coordinator
    /// Sort/Aggregate over one `Data Node Scan` on dn1, dn2 and no coordinator join. With `whole_ok`, a
    /// planner that also merges sorted results may ship it whole (`__REMOTE_FQS_QUERY__` on dn1, dn2).
    JoinShipped { whole_ok: bool },
    /// Replicated tables only: shipped whole to one datanode.
    FqsAnyOne,
    /// Must not be shipped whole (aggregates over several distributed tables), but reads through
    /// `Data Node Scan`s.
    NotShipped,
}

/// The typical queries: (name, SQL, XC's plan shape).
fn queries() -> Vec<(&'static str, String, Shape)> {
    let mut q = Vec::new();
    for c in [7i64, 42, 101] {
        q.push((
            "customer by id",
            format!(
                "SELECT c_id, c_uname, c_fname, c_lname, c_email, c_discount, c_balance, c_since FROM customer \
                 WHERE c_id = {c} ORDER BY c_id"
            ),
            Shape::FqsOneKey(c),
        ));
        q.push((
            "customer with addresses",
            format!(
                "SELECT c.c_id, c.c_lname, a.addr_id, a.addr_street1, a.addr_city, a.addr_zip FROM customer c \
                 JOIN address a ON a.addr_c_id = c.c_id WHERE c.c_id = {c} ORDER BY a.addr_id"
            ),
            Shape::FqsOneKey(c),
        ));
        q.push((
            "order history",
            format!(
                "SELECT o.o_id, o.o_date, o.o_total, o.o_status, ol.ol_id, i.i_title, a.a_lname, ol.ol_qty \
                 FROM orders o JOIN order_line ol ON ol.ol_c_id = o.o_c_id AND ol.ol_o_id = o.o_id \
                 JOIN item i ON i.i_id = ol.ol_i_id JOIN author a ON a.a_id = i.i_a_id \
                 WHERE o.o_c_id = {c} ORDER BY o.o_id DESC, ol.ol_id"
            ),
            Shape::FqsOneKey(c),
        ));
        q.push((
            "orders with payment",
            format!(
                "SELECT o.o_id, o.o_total, x.cx_type, x.cx_xact_amt, o.o_total = x.cx_xact_amt AS paid \
                 FROM orders o JOIN cc_xacts x ON x.cx_c_id = o.o_c_id AND x.cx_o_id = o.o_id \
                 WHERE o.o_c_id = {c} ORDER BY o.o_id"
            ),
            Shape::FqsOneKey(c),
        ));
    }
    for sc in [3i64, 17, 44] {
        q.push((
            "cart contents",
            format!(
                "SELECT sc.sc_id, sc.sc_sub_total, l.scl_i_id, i.i_title, i.i_cost, l.scl_qty, \
                 i.i_cost * l.scl_qty AS line_total FROM shopping_cart sc \
                 JOIN shopping_cart_line l ON l.scl_sc_id = sc.sc_id JOIN item i ON i.i_id = l.scl_i_id \
                 WHERE sc.sc_id = {sc} ORDER BY l.scl_i_id"
            ),
            Shape::FqsOneKey(sc),
        ));
    }
    q.push((
        "customer login by user name",
        "SELECT c_id, c_uname, c_passwd, c_fname FROM customer WHERE c_uname LIKE '%77' ORDER BY c_id".into(),
        Shape::JoinShipped { whole_ok: true },
    ));
    q.push((
        "orders per customer",
        "SELECT c.c_id, count(o.o_id) AS n_orders, sum(o.o_total) AS spent, max(o.o_date) AS last_order \
         FROM customer c JOIN orders o ON o.o_c_id = c.c_id GROUP BY c.c_id ORDER BY c.c_id"
            .into(),
        Shape::JoinShipped { whole_ok: true },
    ));
    q.push((
        "order lines per order",
        "SELECT o.o_c_id, o.o_id, count(*) AS n_lines, sum(ol.ol_qty) AS qty FROM orders o \
         JOIN order_line ol ON ol.ol_c_id = o.o_c_id AND ol.ol_o_id = o.o_id \
         WHERE o.o_c_id BETWEEN 20 AND 60 GROUP BY o.o_c_id, o.o_id ORDER BY o.o_c_id, o.o_id"
            .into(),
        Shape::JoinShipped { whole_ok: true },
    ));
    for subject in ["ARTS", "COMPUTERS", "HISTORY"] {
        q.push((
            "best sellers",
            format!(
                "SELECT i.i_id, i.i_title, a.a_fname, a.a_lname, sum(ol.ol_qty) AS qty FROM order_line ol \
                 JOIN item i ON i.i_id = ol.ol_i_id JOIN author a ON a.a_id = i.i_a_id \
                 WHERE i.i_subject = '{subject}' AND ol.ol_o_id > 50 \
                 GROUP BY i.i_id, i.i_title, a.a_fname, a.a_lname ORDER BY qty DESC, i.i_id LIMIT 10"
            ),
            Shape::JoinShipped { whole_ok: false },
        ));
        q.push((
            "new products",
            format!(
                "SELECT i.i_id, i.i_title, i.i_pub_date, a.a_fname, a.a_lname FROM item i \
                 JOIN author a ON a.a_id = i.i_a_id WHERE i.i_subject = '{subject}' \
                 ORDER BY i.i_pub_date DESC, i.i_title, i.i_id LIMIT 15"
            ),
            Shape::FqsAnyOne,
        ));
    }
    q.push((
        "search by author",
        "SELECT a.a_lname, a.a_fname, i.i_id, i.i_title, i.i_srp FROM author a JOIN item i ON i.i_a_id = a.a_id \
         WHERE a.a_lname LIKE 'BA%' ORDER BY a.a_lname, i.i_title, i.i_id"
            .into(),
        Shape::FqsAnyOne,
    ));
    q.push((
        "sales by subject",
        "SELECT i.i_subject, count(DISTINCT ol.ol_c_id) AS buyers, sum(ol.ol_qty) AS qty, \
         sum(ol.ol_qty * i.i_cost) AS revenue FROM order_line ol JOIN item i ON i.i_id = ol.ol_i_id \
         GROUP BY i.i_subject ORDER BY i.i_subject"
            .into(),
        Shape::JoinShipped { whole_ok: false },
    ));
    q.push((
        "table sizes",
        "SELECT (SELECT count(*) FROM customer) AS customers, (SELECT count(*) FROM address) AS addresses, \
         (SELECT count(*) FROM orders) AS orders, (SELECT count(*) FROM order_line) AS lines, \
         (SELECT sum(cx_xact_amt) FROM cc_xacts) AS paid, (SELECT count(*) FROM shopping_cart_line) AS cart_lines \
         ORDER BY 1"
            .into(),
        Shape::NotShipped,
    ));
    q
}

// ---------------------------------------------------------------------------------------------------------
// The two servers.

/// `pgxc ctl up` on `base` (GTM base.., proxy base+10, datanodes base+20.., coordinators base+100..) in a
/// temp directory; dropping it stops the cluster (SIGTERM, as Ctrl-C) and removes the directory.
struct Cluster {
    dir: PathBuf,
    child: Child,
    port: u16,
}

impl Cluster {
    fn start(base: u16) -> Cluster {
        let dir = unique_dir("dbt1-pgxc");
        let log = std::fs::File::create(dir.join("up.log")).expect("log");
        let child = Command::new(pgxc_bin())
            .args(["ctl", "up", "--data"])
            .arg(dir.join("data"))
            .args(["--base-port", &base.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().expect("clone")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn pgxc ctl up");
        let mut c = Cluster {
            dir,
            child,
            port: base + 100,
        };
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let text = std::fs::read_to_string(c.dir.join("up.log")).unwrap_or_default();
            if text.contains("Press Ctrl-C") {
                return c;
            }
            if let Ok(Some(st)) = c.child.try_wait() {
                panic!("pgxc ctl up exited ({st}):\n{text}");
            }
            assert!(
                Instant::now() < deadline,
                "cluster not ready in 120 s:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            for n in ["up.log", "data/cn1.log", "data/dn1.log", "data/dn2.log"] {
                eprintln!("--- {n}\n{}", tail(&self.dir.join(n), 3000));
            }
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// A PostgreSQL 15 server on `port` in a temp directory (run as `postgres` when we are root: initdb
/// refuses root); dropping it stops it (`pg_ctl stop -m immediate`) and removes the directory.
struct Postgres {
    dir: PathBuf,
    port: u16,
}

fn as_postgres(cmd: &str, args: &[&str]) -> Command {
    let exe = format!("{PG_BIN}/{cmd}");
    if nix_is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", &exe]).args(args);
        c
    } else {
        let mut c = Command::new(exe);
        c.args(args);
        c
    }
}

fn nix_is_root() -> bool {
    // /proc/self/status: "Uid:\t<real>\t<effective>...".
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

impl Postgres {
    fn start(port: u16) -> Postgres {
        assert!(
            Path::new(PG_BIN).join("initdb").is_file(),
            "PostgreSQL 15 is required (apt-get install postgresql)"
        );
        let dir = unique_dir("dbt1-pg15");
        if nix_is_root() {
            let st = Command::new("chown")
                .arg("postgres")
                .arg(&dir)
                .status()
                .expect("chown");
            assert!(st.success(), "chown postgres {}", dir.display());
        }
        let data = dir.join("data");
        let out = as_postgres(
            "initdb",
            &[
                "-D",
                &data.display().to_string(),
                "-A",
                "trust",
                "-U",
                "postgres",
            ],
        )
        .output()
        .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let opts = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            dir.display()
        );
        let out = as_postgres(
            "pg_ctl",
            &[
                "-D",
                &data.display().to_string(),
                "-l",
                &dir.join("log").display().to_string(),
                "-o",
                &opts,
                "-w",
                "start",
            ],
        )
        .output()
        .expect("run pg_ctl");
        let pg = Postgres { dir, port };
        assert!(
            out.status.success(),
            "pg_ctl start: {}{}",
            String::from_utf8_lossy(&out.stderr),
            tail(&pg.dir.join("log"), 2000)
        );
        // Our server answered, not another one on the same port.
        assert_eq!(
            psql(port, "SHOW port").trim(),
            format!("port\n{port}\n(1 row)")
        );
        pg
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.dir.join("data").display().to_string();
        let _ = as_postgres("pg_ctl", &["-D", &data, "-m", "immediate", "stop"]).output();
        if std::thread::panicking() {
            eprintln!("--- PostgreSQL log\n{}", tail(&self.dir.join("log"), 2000));
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Run a script through Debian's psql (unaligned, headers on, stop at the first error); returns stdout.
fn psql(port: u16, script: &str) -> String {
    let mut child = Command::new("psql")
        .args(["-X", "-q", "-A", "-h", "127.0.0.1", "-p", &port.to_string()])
        .args([
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-v",
            "ON_ERROR_STOP=1",
            "-f",
            "-",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("psql is installed (apt-get install postgresql-client)");
    let mut stdin = child.stdin.take().expect("stdin");
    let script = script.to_string();
    let writer = std::thread::spawn(move || stdin.write_all(script.as_bytes()));
    let out = child.wait_with_output().expect("psql runs");
    let _ = writer.join();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "psql on port {port} failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        tail_str(&stdout, 2000)
    );
    stdout
}

fn tail_str(s: &str, n: usize) -> &str {
    let mut start = s.len().saturating_sub(n);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

/// Run every query in one psql session, each preceded by a marker line; returns (name, output) pairs.
fn run_queries(port: u16, queries: &[(&str, String, Shape)]) -> Vec<(String, String)> {
    let mut script = String::new();
    for (k, (name, sql, _)) in queries.iter().enumerate() {
        let _ = writeln!(script, "\\echo '#### {k} {name}'\n{sql};");
    }
    let out = psql(port, &script);
    out.split("#### ")
        .skip(1)
        .map(|block| {
            let (head, body) = block.split_once('\n').unwrap_or((block, ""));
            (head.to_string(), body.to_string())
        })
        .collect()
}

const SEED: u64 = 0xDB71;

#[test]
fn dbt1_queries_match_postgresql() {
    let script = data(SEED);
    // The generator is deterministic: the same seed gives the same script.
    assert_eq!(script, data(SEED));
    assert_ne!(script, data(SEED + 1));

    let pg = Postgres::start(25500);
    let xc = Cluster::start(25100);
    psql(pg.port, &schema(false));
    psql(xc.port, &schema(true));
    // Placement as the primer's chapter C gives it.
    let placement = psql(
        xc.port,
        "SELECT pcrelname, pclocatortype, pcattname, nodes FROM pgxc.pgxc_class ORDER BY pcrelname",
    );
    for (table, how) in [
        ("author", "R|"),
        ("item", "R|"),
        ("customer", "H|c_id"),
        ("address", "H|addr_c_id"),
        ("orders", "H|o_c_id"),
        ("order_line", "H|ol_c_id"),
        ("cc_xacts", "H|cx_c_id"),
        ("shopping_cart", "H|sc_id"),
        ("shopping_cart_line", "H|scl_sc_id"),
    ] {
        let line = format!("public.{table}|{how}|dn1,dn2");
        assert!(
            placement.lines().any(|l| l == line),
            "no {line:?} in\n{placement}"
        );
    }
    psql(pg.port, &script);
    let t = Instant::now();
    psql(xc.port, &script);
    eprintln!(
        "loaded {} bytes of INSERTs into pgxc in {:?}",
        script.len(),
        t.elapsed()
    );

    let queries = queries();
    let compare = |phase: &str| {
        let want = run_queries(pg.port, &queries);
        let got = run_queries(xc.port, &queries);
        assert_eq!(
            want.len(),
            queries.len(),
            "{phase}: PostgreSQL answered {} queries",
            want.len()
        );
        assert_eq!(
            got.len(),
            queries.len(),
            "{phase}: pgxc answered {} queries",
            got.len()
        );
        for ((name, w), (_, g)) in want.iter().zip(&got) {
            if phase == "after load" {
                assert!(
                    w.lines().count() >= 3,
                    "{phase}: {name}: no rows on PostgreSQL:\n{w}"
                );
            }
            assert_eq!(
                g, w,
                "{phase}: query {name} differs (left pgxc, right PostgreSQL)"
            );
        }
    };
    let t = Instant::now();
    compare("after load");
    eprintln!("{} queries on both in {:?}", queries.len(), t.elapsed());

    // Buy-confirm transactions through the cluster and on PostgreSQL, then everything again.
    let mut buys = String::new();
    for (k, (sc, c)) in [(3i64, 7i64), (17, 42), (44, 101)].into_iter().enumerate() {
        let q = format!("SELECT sc_sub_total FROM shopping_cart WHERE sc_id = {sc}");
        let sub = psql(pg.port, &q);
        assert_eq!(psql(xc.port, &q), sub);
        let cents: i64 = sub
            .lines()
            .nth(1)
            .and_then(|v| v.replace('.', "").parse().ok())
            .unwrap_or_else(|| panic!("cart {sc}: {sub}"));
        buys.push_str(&buy_confirm(sc, cents, c, 10_000 + k as i64));
    }
    psql(pg.port, &buys);
    psql(xc.port, &buys);
    let check = "SELECT o_id, o_c_id, o_sub_total, o_total, (SELECT count(*) FROM order_line l \
                 WHERE l.ol_c_id = o.o_c_id AND l.ol_o_id = o.o_id) AS lines FROM orders o WHERE o_id >= 10000 \
                 ORDER BY o_id";
    let after = psql(pg.port, check);
    assert_eq!(after.lines().count(), 5, "three orders bought:\n{after}");
    assert_eq!(psql(xc.port, check), after);
    compare("after buy confirm");
}

/// The datanode holding `key`'s rows of `table` (by `EXECUTE DIRECT` on each).
fn holder(port: u16, table: &str, column: &str, key: i64) -> String {
    let mut found = Vec::new();
    for dn in ["dn1", "dn2"] {
        let out = psql(
            port,
            &format!("EXECUTE DIRECT ON ({dn}) 'SELECT count(*) AS n FROM {table} WHERE {column} = {key}'"),
        );
        if out.lines().nth(1) != Some("0") {
            found.push(dn.to_string());
        }
    }
    assert_eq!(found.len(), 1, "{table} {column} = {key} on {found:?}");
    found.remove(0)
}

/// Why `plan` (EXPLAIN (COSTS OFF) output, header line first) is not the plan XC gives a query of
/// `shape`; `None` when it is. `holder` names the datanode holding a key's rows.
fn plan_mismatch(plan: &str, shape: Shape, holder: impl Fn(i64) -> String) -> Option<String> {
    let lines: Vec<&str> = plan.lines().skip(1).collect();
    let top = lines.first().copied().unwrap_or("").trim();
    let nodes: Vec<String> = lines
        .iter()
        .find_map(|l| l.trim().strip_prefix("Node/s: "))
        .map(|n| n.split(", ").map(str::to_string).collect())
        .unwrap_or_default();
    let fqs = "Data Node Scan on \"__REMOTE_FQS_QUERY__\"";
    match shape {
        Shape::FqsOneKey(k) => {
            if top != fqs {
                return Some(format!("not shipped whole (top node {top:?})"));
            }
            let want = holder(k);
            (nodes != [want.clone()])
                .then(|| format!("shipped to {nodes:?}, the rows are on {want}"))
        }
        Shape::FqsAnyOne => {
            if top != fqs {
                return Some(format!("not shipped whole (top node {top:?})"));
            }
            (nodes.len() != 1).then(|| format!("shipped to {nodes:?}, one datanode expected"))
        }
        Shape::JoinShipped { whole_ok } => {
            if nodes != ["dn1", "dn2"] {
                return Some(format!(
                    "first remote scan on {nodes:?}, dn1 and dn2 expected"
                ));
            }
            if whole_ok && top == fqs {
                return None;
            }
            if top == fqs {
                return Some("shipped whole, but it sorts or groups across datanodes".into());
            }
            let scans = plan.matches("Data Node Scan").count();
            if scans != 1 {
                return Some(format!("{scans} remote scans: the join is not shipped"));
            }
            ["Nested Loop", "Hash Join", "Merge Join"]
                .into_iter()
                .find(|j| plan.contains(j))
                .map(|j| format!("{j} on the coordinator"))
        }
        Shape::NotShipped => {
            if top == fqs {
                Some("shipped whole, but it aggregates across datanodes".into())
            } else {
                (!plan.contains("Data Node Scan")).then(|| "no Data Node Scan".into())
            }
        }
    }
}

/// Every query's EXPLAIN has XC's shape, except "table sizes": its scalar subqueries are evaluated by
/// the coordinator's engine, whose EXPLAIN does not print InitPlans yet (it shows `Result`), so there
/// is no `Data Node Scan` line to check.
#[test]
fn dbt1_explain_ships_joins_whole() {
    let xc = Cluster::start(25300);
    psql(xc.port, &schema(true));
    psql(xc.port, &data(SEED));
    let mut wrong = Vec::new();
    for (name, sql, shape) in queries() {
        if name == "table sizes" {
            continue;
        }
        let plan = psql(xc.port, &format!("EXPLAIN (COSTS OFF) {sql}"));
        let holder = |k| {
            if sql.contains("shopping_cart") {
                holder(xc.port, "shopping_cart", "sc_id", k)
            } else {
                holder(xc.port, "customer", "c_id", k)
            }
        };
        if let Some(why) = plan_mismatch(&plan, shape, holder) {
            wrong.push(format!("{name} ({shape:?}): {why}\n{plan}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} plans are not XC's:\n{}",
        wrong.len(),
        queries().len() - 1,
        wrong.join("\n")
    );
}

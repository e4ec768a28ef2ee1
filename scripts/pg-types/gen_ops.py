import sys
sys.path.insert(0, '/tmp/pgt/gen')
exec(open('/tmp/pgt/gen/gen.py').read().split("print(\"// @generated")[0])
ops = []
def op(kind, a, b, sql):
    ops.append((kind, a, b, sql))
nums = [("1.5","2.25"),("1.50","2"),("1","3"),("10","4"),("2","3"),("100000","3"),("1","7.00000"),("123456789","0.001"),("-7","2"),("7.5","2"),("-7","3"),("1","0"),("0","0"),("Infinity","Infinity"),("5","Infinity"),("NaN","0"),("-Infinity","2"),("99999999999999999999","0.0000000001"),("0.001","1000"),("12345.6789","-0.12"),("1e-20","3"),("9999","9999"),("0.5","0.25"),("Infinity","0"),("5","-Infinity")]
for a,b in nums:
    for o in ["+","-","*","/","%"]:
        op("num"+o, a, b, "select %s::numeric %s %s::numeric" % (lit(a), o, lit(b)))
for a,s in [("2.5","0"),("-2.5","0"),("1234.5678","-2"),("1234.5678","2"),("0.5","0"),("-0.5","0"),("9.995","2"),("NaN","2"),("123.456","5")]:
    op("round", a, s, "select round(%s::numeric, %s)" % (lit(a), s))
    op("trunc", a, s, "select trunc(%s::numeric, %s)" % (lit(a), s))
for a in ["2","100","0.0001","12345678901234567890","0","1.21","-1","3.000000"]:
    op("sqrt", a, "", "select sqrt(%s::numeric)" % lit(a))
for a in ["-1.5","1.5","2","-0.1","NaN"]:
    op("ceil", a, "", "select ceil(%s::numeric)" % lit(a)); op("floor", a, "", "select floor(%s::numeric)" % lit(a))
tss = ["2024-01-31 12:34:56.789","2024-02-29 00:00:00","2023-03-31 10:00:00","2000-01-01 00:00:00","0044-03-15 00:00:00 BC","2024-12-31 23:59:59.999999", "1999-12-31 12:00:00"]
ivs = ["1 month","-1 month","1 year","1 day","25 hours","1 mon 1 day 1 hour","-1 days +02:00","13 months","1.5 days","100 years -3 days"]
for t in tss:
    for i in ivs:
        op("ts+iv", t, i, "select %s::timestamp + %s::interval" % (lit(t), lit(i)))
        op("ts-iv", t, i, "select %s::timestamp - %s::interval" % (lit(t), lit(i)))
pairs = [("2024-03-01","2024-01-31 12:00"),("2024-01-31 12:00","2024-03-01"),("2024-01-01","2023-01-01"),("2000-01-01 00:00:01","1999-12-31 23:59:59.5"),("2024-02-29 10:00","2023-02-28 11:30"),("1999-12-31","2024-06-15 08:30:00"),("2024-05-31","2024-04-30"), ("2024-03-31","2024-02-29 23:00")]
for a,b in pairs:
    op("ts-ts", a, b, "select %s::timestamp - %s::timestamp" % (lit(a), lit(b)))
    op("age", a, b, "select age(%s::timestamp, %s::timestamp)" % (lit(a), lit(b)))
for d,n in [("2024-01-31","1"),("2024-02-28","1"),("2024-01-01","-1"),("2000-01-01","366"),("infinity","5"),("5874897-12-31","1")]:
    op("date+int", d, n, "select %s::date + %s" % (lit(d), n))
for a,b in [("2024-03-01","2024-01-01"),("2000-01-01","2024-01-01"),("infinity","2024-01-01")]:
    op("date-date", a, b, "select %s::date - %s::date" % (lit(a), lit(b)))
fields = ["microseconds","milliseconds","second","minute","hour","day","week","month","quarter","year","decade","century","millennium","dow","isodow","doy","epoch","isoyear","julian","timezone","foo"]
for f in fields:
    for t in ["2024-01-31 12:34:56.789","0044-03-15 12:00:00 BC","2021-01-03 00:00:00","2000-12-31 23:59:59", "infinity"]:
        op("extract_ts", f, t, "select extract(%s from %s::timestamp)" % (f, lit(t)))
    for t in ["2024-01-31 12:34:56.789+00"]:
        op("extract_tstz", f, t, "select extract(%s from %s::timestamptz)" % (f, lit(t)))
    for d in ["2024-01-31","2021-01-03","0001-01-01 BC", "infinity"]:
        op("extract_date", f, d, "select extract(%s from %s::date)" % (f, lit(d)))
    for i in ["1 year 2 mons 3 days 04:05:06.789","-1 years -2 mons","100 days 49:00:00", "1.5 months"]:
        op("extract_iv", f, i, "select extract(%s from %s::interval)" % (f, lit(i)))
    for t in ["12:34:56.789"]:
        op("extract_time", f, t, "select extract(%s from %s::time)" % (f, lit(t)))
for f in ["microseconds","milliseconds","second","minute","hour","day","week","month","quarter","year","decade","century","millennium","foo"]:
    for t in ["2024-05-31 12:34:56.789123","0044-03-15 12:00:00 BC","2021-01-03 10:00:00","2001-01-01","1999-12-31 23:59:59"]:
        op("date_trunc", f, t, "select date_trunc(%s, %s::timestamp)" % (lit(f), lit(t)))
    op("date_trunc_iv", f, "1234 years 5 mons 6 days 07:08:09.123456", "select date_trunc(%s, %s::interval)" % (lit(f), lit("1234 years 5 mons 6 days 07:08:09.123456")))
for i in ["50 hours","-50 hours","1 day -1 hour","-1 day 1 hour","35 days","-35 days","1 mon -1 day","1 mon -50 hours","-1 mon 35 days 26:00"]:
    for f in ["justify_hours","justify_days","justify_interval"]:
        op(f, i, "", "select %s(%s::interval)" % (f, lit(i)))
for i in ["1 mon","1 year 2 mons 3 days 04:05:06","1 day","-1 mon -1 day","01:00:00","2 mons 5 days"]:
    for f in ["0.5","1.5","3","-2","0.333","1e-7","0"]:
        op("iv*f", i, f, "select %s::interval * %s" % (lit(i), f))
    op("iv/f", i, "3", "select %s::interval / 3" % lit(i))
    op("iv/f", i, "0", "select %s::interval / 0" % lit(i))
    op("iv+iv", i, "1 mon -2 days 03:00", "select %s::interval + %s::interval" % (lit(i), lit("1 mon -2 days 03:00")))
    op("iv-iv", i, "1 mon -2 days 03:00", "select %s::interval - %s::interval" % (lit(i), lit("1 mon -2 days 03:00")))
print("pub const OPS: &[(&str, &str, &str, &str)] = &[")
for kind, a, b, sql in ops:
    r = pg(sql)
    print("    (%s, %s, %s, %s)," % (rs(kind), rs(a), rs(b), rs(r)))
print("];")

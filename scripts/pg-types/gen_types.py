exec(open('/tmp/pgt/gen/gen.py').read().split("io = []")[0])
names = ["int","int4","integer","bigint","int8","smallint","int2","real","float4","float","float8","double precision","decimal","numeric","numeric(10,2)","numeric(10)","decimal(5,1)","varchar","varchar(10)","character varying(10)","char","char(5)","character(3)","bpchar(2)","text","bool","boolean","bytea","date","time","timestamp","timestamptz","timestamp with time zone","timestamp without time zone","time without time zone","interval","uuid","json","jsonb","int[]","text[]","int8[]","varchar(10)[]","_int4","float(24)","float(25)","numeric(1001)","varchar(0)","foo","float(54)","numeric(5,-1)","numeric[]","bool[]","timestamptz[]","jsonb[]","bytea[]"]
print("pub const TYPE_NAMES: &[(&str, &str)] = &[")
for n in names:
    r = pg("select format_type(%s::regtype, -1) || '|' || %s::regtype::oid || '|' || (select typlen from pg_type where oid = %s::regtype)" % (lit(n), lit(n), lit(n)))
    # typmod: use a table to get format_type with typmod
    if not r.startswith("E"):
        r2 = pg("create temp table t (c %s); select format_type(atttypid, atttypmod) || '|' || atttypmod from pg_attribute where attrelid = 't'::regclass and attname = 'c'" % n)
        r2 = r2.splitlines()[-1] if not r2.startswith("E") else r2
        r = r2 + "|" + r.split("|",1)[1]
    else:
        r2 = pg("create temp table t (c %s)" % n)
        r = r2 if r2.startswith("E") else r
    print("    (%s, %s)," % (rs(n), rs(r)))
print("];")
tys = ["bool","int2","int4","int8","float4","float8","numeric","text","varchar","bpchar","bytea","date","time","timestamp","timestamptz","interval","uuid","json","jsonb"]
print("pub const PG_CAST: &[(&str, &str, &str)] = &[")
for a in tys:
    for b in tys:
        if a == b: continue
        r = pg("select castcontext from pg_cast where castsource = %s::regtype and casttarget = %s::regtype" % (lit(a), lit(b)))
        if r == "":
            # I/O conversion casts: to string types assignment, from string types explicit
            r = "a" if b in ("text","varchar","bpchar") else ("e" if a in ("text","varchar","bpchar") else "-")
        print("    (%s, %s, %s)," % (rs(a), rs(b), rs(r)))
print("];")

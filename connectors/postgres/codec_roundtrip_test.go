package postgres_test

import (
	"context"
	"testing"

	"github.com/ferrydb/ferry/flow"
)

const everythingDDL = `
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy', 'it''s "complicated"');
CREATE DOMAIN posint AS integer CHECK (VALUE > 0);
CREATE SCHEMA shop;
CREATE TABLE shop.everything (
	id int PRIMARY KEY,
	i2 smallint, i4 integer, i8 bigint,
	n numeric(38,10), nu numeric,
	f4 real, f8 double precision,
	b boolean,
	t text, vc varchar(20), ch char(5),
	by bytea,
	j json, jb jsonb,
	u uuid,
	d date, tm time, ttz timetz, ts timestamp, tstz timestamptz, ts3 timestamp(3),
	iv interval,
	ia int[], ta text[], na numeric[], tsa timestamptz[], ua uuid[],
	m mood, ma mood[],
	dom posint,
	ip inet, cid cidr, mac macaddr,
	mon money,
	pt point, bits bit varying(8), ir int4range,
	big text,
	gen bigint GENERATED ALWAYS AS (i4::bigint * 2 + length(t)) STORED
);
INSERT INTO shop.everything (id) VALUES (1);
INSERT INTO shop.everything VALUES (2,
	7, 42, 1234567890123, 3.1415926535, 123.456,
	1.5, 2.25, true,
	'hello', 'varchar', 'ab',
	'\x0001ff', '{"a": 1}', '{"b": [1, 2]}',
	'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
	'2024-02-29', '13:04:05.123456', '13:04:05.123456+05:30', '2024-02-29 13:04:05.123456', '2024-02-29 13:04:05.123456+01', '2024-02-29 13:04:05.123',
	'1 year 2 mons 3 days 04:05:06.789',
	'{1,2,3}', '{a,b}', '{1.50,2}', '{"2024-01-01 00:00:00+00"}', '{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}',
	'happy', '{sad,happy}',
	5,
	'192.168.0.1/24', '10.0.0.0/8', '08:00:2b:01:02:03',
	'1234.56',
	'(1.5,-2)', B'101', '[1,10)',
	NULL);
INSERT INTO shop.everything VALUES (3,
	-32768, 2147483647, -9223372036854775808, 9999999999999999999999999999.9999999999, 'NaN',
	'NaN', '-Infinity', false,
	E'emoji 🚢, quotes '' " and tab\t newline\n backslash \\ end', 'ünïcødé', 'x',
	'\x00ff00', '{"a": [1, 2.50, {"b": null}],  "a": 2}', '{"deep": {"er": [{"est": true}, null, 1e3]}}',
	'00000000-0000-0000-0000-000000000000',
	'4714-11-24 BC', '24:00:00', '00:00:00-15:59', '294276-12-31 23:59:59.999999', 'infinity', '0044-03-15 12:00:00 BC',
	'-1 year -2 mons +3 days -04:05:06.000001',
	'{1,NULL,-3}', '{"a,b","",NULL,"\"q\"","NULL","back\\slash"}', '{NaN,-0.00001,NULL}', '{infinity,NULL}', '{}',
	'it''s "complicated"', '{happy,NULL}',
	2147483647,
	'::ffff:1.2.3.4/120', '2001:db8::/32', 'ff:ff:ff:ff:ff:ff',
	'-92233720368547758.08',
	'(1e-300,-1e300)', B'', 'empty',
	NULL);
INSERT INTO shop.everything (id, d, ts, tstz, f8, f4, n, iv, t, i8) VALUES
	(4, 'infinity', '-infinity', '2000-01-01 00:00:00.000001+14', 1e-300, 3.4028235e38, -0.0000000001, '-178000000 years', '', 0),
	(5, '5874897-12-31', '1999-12-31 23:59:59.999999', '-infinity', -0.0, 1.17549435e-38, 0, '0', 'toast row', 1);
UPDATE shop.everything SET big = (SELECT string_agg(md5(g::text || random()::text), '') FROM generate_series(1, 3000) g) WHERE id IN (2, 5);
-- Only types ferry writes with binary COPY.
CREATE TABLE shop.scalars AS SELECT id, i2, i4, i8, n, nu, f4, f8, b, t, vc, ch, by, j, jb, u, d, tm, ttz, ts, tstz, ts3, iv
	FROM shop.everything;
ALTER TABLE shop.scalars ADD PRIMARY KEY (id);
INSERT INTO shop.scalars (id, nu, n) SELECT 100 + row_number() OVER (), v::numeric, v::numeric(38,10)
	FROM unnest(ARRAY['0.0001', '10000', '100000000', '1.10', '-12345678.87654321', '0.000', '1e-20', '-0', '99990000.00009999', '0.5']) v;
UPDATE shop.scalars SET nu = 'Infinity' WHERE id = 1;
UPDATE shop.scalars SET nu = '-Infinity', n = NULL WHERE id = 4;
`

func TestEveryTypeCopiesAndReplicatesExactly(t *testing.T) {
	p := newPair(t)
	src := p.srv.Connect(t, p.src)
	dst := p.srv.Connect(t, p.dst)
	mustExec(t, src, everythingDDL)
	dir := t.TempDir()
	cfg := flow.Config{Name: "types", Source: p.srcURL(), Destination: p.dstURL(), StateDir: dir, Until: "caught-up", PartitionRows: 2}
	if err := runFlow(t, cfg); err != nil {
		t.Fatal(err)
	}
	sameTable(t, src, dst, "shop.everything", "id")
	sameTable(t, src, dst, "shop.scalars", "id")

	// Changes after the copy: inserts of every value, updates (one leaving
	// the TOAST column unchanged, one changing it, one moving the key) and
	// a delete.
	mustExec(t, src, `
		INSERT INTO shop.everything SELECT id + 10, i2, i4, i8, n, nu, f4, f8, b, t, vc, ch, by, j, jb, u, d, tm, ttz, ts, tstz, ts3, iv,
			ia, ta, na, tsa, ua, m, ma, dom, ip, cid, mac, mon, pt, bits, ir, big FROM shop.everything WHERE id <= 5;
		UPDATE shop.everything SET i8 = 77, t = 'changed' WHERE id = 5;
		UPDATE shop.everything SET big = big || 'more', ta = '{x}' WHERE id = 2;
		UPDATE shop.everything SET id = 100 WHERE id = 3;
		DELETE FROM shop.everything WHERE id = 4;
		UPDATE shop.everything SET m = 'ok', ma = '{ok}', iv = '1 day', mon = '-0.01' WHERE id = 13;`)
	if err := runFlow(t, cfg); err != nil {
		t.Fatal(err)
	}
	sameTable(t, src, dst, "shop.everything", "id")
	if n := count(t, dst, `SELECT count(*) FROM shop.everything WHERE id = 5 AND length(big) > 90000`); n != 1 {
		t.Fatal("the unchanged TOAST value was not kept")
	}
	// The destination's types are the source's.
	var srcTypes, dstTypes string
	q := `SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod), ', ' ORDER BY attnum) FROM pg_attribute
		WHERE attrelid = 'shop.everything'::regclass AND attnum > 0 AND NOT attisdropped`
	if err := src.QueryRow(context.Background(), q).Scan(&srcTypes); err != nil {
		t.Fatal(err)
	}
	if err := dst.QueryRow(context.Background(), q).Scan(&dstTypes); err != nil {
		t.Fatal(err)
	}
	if srcTypes != dstTypes {
		t.Fatalf("column types differ:\nsource      %s\ndestination %s", srcTypes, dstTypes)
	}
}

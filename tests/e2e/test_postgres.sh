#!/bin/bash
# The postgres component against a real PostgreSQL cluster: one database
# (custom and plain formats), every database (one object each, and the
# globals), as the postgres system user; each object reloads with
# pg_restore or psql alone into a database equal to the source (tables,
# rows, a checksum of the rows, functions, views); the component's restore
# does the same into the original and into another database, and brings a
# dropped role back from the globals; a dump that fails fails its site
# only and stores nothing.
. "$(dirname "$0")/lib.sh"
. "$ROOT/tests/support/dbtest.sh"

start_server postgres "$T/pg"
# the test's own connections: TCP from 127.0.0.1, trusted
export PGHOST=127.0.0.1 PGPORT=$PG_PORT PGUSER=postgres
q() { psql -X -w -q -v ON_ERROR_STOP=1 "$@"; }

# Tables with their row counts and a checksum of their rows in order, then
# functions and views: what must survive a dump and a reload.
fingerprint() {
	for t in $(q -d "$1" -At -c "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"); do
		printf '%s %s\n' "$t" "$(q -d "$1" -At -c \
			"SELECT count(*), md5(coalesce(string_agg(r::text, '|' ORDER BY r::text), '')) FROM \"$t\" r")"
	done
	q -d "$1" -At -c "SELECT proname FROM pg_proc WHERE pronamespace = 'public'::regnamespace ORDER BY 1;
		SELECT viewname FROM pg_views WHERE schemaname = 'public' ORDER BY 1"
}

q >"$T/sql.log" 2>&1 <<'SQL' || not_ok "make the source databases" "$(cat "$T/sql.log")"
CREATE ROLE reporting NOLOGIN;
CREATE ROLE auditor NOLOGIN;
CREATE ROLE limited LOGIN;
CREATE DATABASE shop;
\c shop
CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL, price numeric(10,2), photo bytea);
INSERT INTO items (name, price, photo) VALUES
  (E'café ☕ 🐘 "quoted" \'single\' back\\slash', 9.99, '\x00275c0a0d1aff'::bytea || sha256('x'));
INSERT INTO items (name, price, photo)
  SELECT 'item ' || n || ' ñandú', n / 7.0, sha512(n::text::bytea) FROM generate_series(1, 2000) n;
CREATE TABLE audit (id serial PRIMARY KEY, item_id int NOT NULL);
CREATE FUNCTION items_audit() RETURNS trigger LANGUAGE plpgsql AS
  $$ BEGIN INSERT INTO audit (item_id) VALUES (NEW.id); RETURN NEW; END $$;
CREATE TRIGGER items_audit AFTER INSERT ON items FOR EACH ROW EXECUTE FUNCTION items_audit();
INSERT INTO items (name) VALUES ('after the trigger');
CREATE VIEW cheap AS SELECT id, name FROM items WHERE price < 10;
GRANT SELECT ON items TO reporting;
CREATE DATABASE blog;
\c blog
CREATE TABLE posts (id int PRIMARY KEY, title text, body text);
INSERT INTO posts VALUES (1, 'Hello', 'Wörld 🌍'), (2, 'Second', repeat('x', 100000));
SQL
check "the source databases are made" test "$(q -d shop -At -c 'SELECT count(*) FROM items')" = 2002

cat > "$T/cfg/vakap.lua" <<LUA
storage = dir "backups"
LUA
cat > "$T/cfg/sites.d/db.lua" <<LUA
site "one" {
  host = "local",
  postgres { database = "shop", as_user = "postgres", host = "$PG_SOCKET_DIR", port = $PG_PORT },
}
site "plain" {
  host = "local",
  postgres { database = "shop", format = "plain", user = "postgres", host = "127.0.0.1", port = $PG_PORT },
}
site "every" {
  host = "local",
  postgres { all = true, as_user = "postgres", host = "$PG_SOCKET_DIR", port = $PG_PORT },
}
site "bad" {
  host = "local",
  postgres { database = "nosuch", user = "postgres", host = "127.0.0.1", port = $PG_PORT },
}
LUA
B=$T/cfg/backups

run check one plain every
expect_code "check passes where the clients connect" 0
run check bad
expect_code "check fails for a database that does not exist" 1
contains "check says why" 'database "nosuch" does not exist' "$OUT"
cat > "$T/cfg/sites.d/limited.lua" <<LUA
site "limited" {
  host = "local",
  postgres { database = "shop", user = "limited", host = "127.0.0.1", port = $PG_PORT },
}
LUA
run check limited
expect_code "check fails for a dump user who connects but cannot read the tables" 1
contains "check names what was denied" "permission denied" "$(printf '%s\n' "$OUT" | grep '^limited')"
rm "$T/cfg/sites.d/limited.lua"

run backup
expect_code "backup exits 1: one site failed" 1
contains "the failed dump shows pg_dump's message" 'database "nosuch" does not exist' "$(printf '%s\n' "$OUT" | grep '^bad')"
contains "only that site failed" "4 sites, 3 ok, 1 failed (bad)" "$OUT"
check "the failed dump stored nothing" test -z "$(find "$B/bad/postgres" -type f 2>/dev/null)"

# custom format: already compressed, stored as it is, read by pg_restore
obj=$(ls "$B"/one/postgres/*.dump 2>/dev/null | head -1)
check "a custom dump is stored as .dump, not compressed again" test -f "$obj"
check "its manifest says no compression" test "$(json_get "${obj%.dump}.json" 'd["compression"]')" = none
check "as_user: the dump ran through sudo as postgres" \
	test "$(json_get "${obj%.dump}.json" '" ".join(d["source"]["command"][:6])')" = "sudo -n -u postgres -- pg_dump"
q -c "CREATE DATABASE shop_custom"
check "the object reloads with pg_restore alone" pg_restore -w -d shop_custom "$obj"
same_db "the reloaded copy has the tables, rows, checksums, functions and views" shop shop_custom
check "unicode text and bytes survive" test "$(q -d shop_custom -At -c 'SELECT md5(name) || md5(photo) FROM items WHERE id = 1')" = \
	"$(q -d shop -At -c 'SELECT md5(name) || md5(photo) FROM items WHERE id = 1')"

# plain format: SQL, compressed by vakap
obj=$(ls "$B"/plain/postgres/*.sql.zst 2>/dev/null | head -1)
check "a plain dump is stored as .sql.zst" test -f "$obj"
q -c "CREATE DATABASE shop_plain"
check "the object reloads with psql alone" sh -c "zstd -dc '$obj' | psql -X -w -q -v ON_ERROR_STOP=1 -d shop_plain >/dev/null"
same_db "the reloaded copy equals the source" shop shop_plain

# every database: one object per database, and the globals
parts=$(cd "$B/every/postgres" 2>/dev/null && ls -d */ | tr -d / | tr '\n' ' ')
check "all = true stores each database that takes connections, and the globals" test "$parts" = "_globals blog postgres shop "
for db in shop blog; do
	o=$(ls "$B"/every/postgres/$db/*.dump 2>/dev/null | head -1)
	check "$db: its manifest names the database" test "$(json_get "${o%.dump}.json" 'd["part"]["database"]')" = $db
	q -c "CREATE DATABASE ${db}_every"
	check "$db: the object reloads with pg_restore alone" pg_restore -w -d ${db}_every "$o"
	same_db "$db: the reloaded copy equals the source" $db ${db}_every
done
g=$(ls "$B"/every/postgres/_globals/*.sql.zst 2>/dev/null | head -1)
check "the globals are a pg_dumpall --globals-only" \
	test "$(json_get "${g%.sql.zst}.json" 'd["source"]["command"][-1]')" = --globals-only
contains "the globals hold the roles" "CREATE ROLE reporting;" "$(zstd -dc "$g")"

run status one plain every
expect_code "status is 0 after the backups" 0
contains "status shows the globals of all = true" "postgres/_globals" "$(printf '%s\n' "$OUT" | grep '^every')"
contains "status shows each database of all = true" "postgres/shop" "$(printf '%s\n' "$OUT" | grep '^every')"

# the component's restore, through the test op
restore() { restore_latest postgres "$@"; } # restore SITE [PART] [TARGET]
before=$(fingerprint shop)
q -d shop -c "DELETE FROM items WHERE id > 10; DROP VIEW cheap; CREATE TABLE extra (x int)"
restore one
expect_code "restore of a custom dump into the original database succeeds" 0
check "the original database is back (an added table stays)" \
	test "$(fingerprint shop | grep -v '^extra ')" = "$before"
restore one "" shop_new
expect_code "restore into a database that does not exist succeeds" 0
same_db "it was created, and equals the source" shop_custom shop_new
q -d shop -c "DELETE FROM items WHERE id > 10; DROP TABLE extra"
restore plain
expect_code "restore of a plain dump into the original database succeeds" 0
check "the original database is back as it was" test "$(fingerprint shop)" = "$before"
restore plain "" shop_plain_new
expect_code "restore of a plain dump into a new database succeeds" 0
same_db "it equals the source" shop shop_plain_new
restore every blog blog_target
expect_code "restore of one database of all = true into a target succeeds" 0
same_db "the target equals the source" blog blog_target
q -c "DROP ROLE auditor"
restore every _globals
expect_code "restore of the globals succeeds, the roles that exist kept" 0
check "the dropped role is back" test "$(q -At -c "SELECT count(*) FROM pg_roles WHERE rolname = 'auditor'")" = 1

run verify one plain every
expect_code "verify of the custom, plain and globals dumps exits 0" 0
contains "a custom archive's table of contents is listed" "table of contents listed" "$OUT"
contains "a plain dump's completion line is found" "complete" "$OUT"
# Over SSH: every database and the globals dumped on the site's host,
# reloaded here with pg_restore alone, and restored through the host.
start_sshd
backup_remote "postgres { all = true, as_user = \"postgres\", host = \"$PG_SOCKET_DIR\", port = $PG_PORT }"
for db in shop blog; do
	o=$(ls "$B"/remote/postgres/$db/*.dump 2>/dev/null | head -1)
	q -c "CREATE DATABASE ${db}_ssh"
	check "over SSH, $db: the object reloads with pg_restore alone" pg_restore -w -d ${db}_ssh "$o"
	same_db "over SSH, $db: the reloaded copy equals the source" $db ${db}_ssh
done
check "over SSH, the globals are stored" test -n "$(ls "$B"/remote/postgres/_globals/*.sql.zst 2>/dev/null)"
run restore remote postgres/blog --into-host --target blog_ssh_restored
expect_code "restore over SSH into another database succeeds" 0
same_db "the database restored over SSH equals the source" blog blog_ssh_restored

finish

#!/bin/bash
# The mysql component against a real MariaDB server: one database, every
# database (one object each), as another system user, with a password in
# a defaults file; each object reloads with the mysql client alone into a
# database equal to the source (tables, rows, checksums, triggers,
# routines, events); the component's restore does the same into the
# original and into another database; a dump that fails fails its site
# only and stores nothing.
. "$(dirname "$0")/lib.sh"
. "$ROOT/tests/support/dbtest.sh"

start_server mariadb "$T/mariadb"
S=$MARIADB_SOCKET
sql() { mariadb --no-defaults --socket="$S" --default-character-set=utf8mb4 -N -B "$@"; }

# Tables with their row counts and checksums, then triggers, routines and
# events: what must survive a dump and a reload.  fingerprint DB [SKIP]:
# the table SKIP left out.
fingerprint() {
	db=$1
	skip=${2:-}
	for t in $(sql -e "SELECT table_name FROM information_schema.tables WHERE table_schema = '$db' ORDER BY 1"); do
		[ "$t" = "$skip" ] && continue
		printf '%s %s %s\n' "$t" "$(sql -e "SELECT COUNT(*) FROM \`$db\`.\`$t\`")" \
			"$(sql -e "CHECKSUM TABLE \`$db\`.\`$t\`" | cut -f2)"
	done
	sql -e "SELECT trigger_name FROM information_schema.triggers WHERE trigger_schema = '$db' ORDER BY 1;
		SELECT routine_name FROM information_schema.routines WHERE routine_schema = '$db' ORDER BY 1;
		SELECT event_name FROM information_schema.events WHERE event_schema = '$db' ORDER BY 1"
}

sql >"$T/sql.log" 2>&1 <<'SQL' || not_ok "make the source databases" "$(cat "$T/sql.log")"
CREATE DATABASE shop CHARACTER SET utf8mb4;
USE shop;
CREATE TABLE items (
  id INT PRIMARY KEY AUTO_INCREMENT,
  name VARCHAR(200) NOT NULL,
  price DECIMAL(10,2),
  photo BLOB
) CHARACTER SET utf8mb4;
CREATE TABLE audit (id INT PRIMARY KEY AUTO_INCREMENT, item_id INT NOT NULL);
CREATE TABLE cache (k VARCHAR(20), v TEXT);
CREATE TRIGGER items_audit AFTER INSERT ON items FOR EACH ROW INSERT INTO audit (item_id) VALUES (NEW.id);
CREATE PROCEDURE item_count(OUT n INT) SELECT COUNT(*) INTO n FROM items;
CREATE EVENT nightly ON SCHEDULE EVERY 1 DAY DISABLE DO DELETE FROM cache;
INSERT INTO items (name, price, photo) VALUES ('café ☕ 🐘 "quoted" \'single\' back\\slash', 9.99,
  CONCAT(CHAR(0, 39, 92, 10, 13, 26, 255), UNHEX(SHA2('x', 256))));
INSERT INTO items (name, price, photo)
  SELECT CONCAT('item ', seq, ' ñandú'), seq / 7, UNHEX(SHA2(seq, 512)) FROM seq_1_to_2000;
INSERT INTO cache VALUES ('k', 'left out of the dump');
CREATE DATABASE blog;
CREATE TABLE blog.posts (id INT PRIMARY KEY, title TEXT, body MEDIUMTEXT) CHARACTER SET utf8mb4;
INSERT INTO blog.posts VALUES (1, 'Hello', 'Wörld 🌍'), (2, 'Second', REPEAT('x', 100000));
CREATE USER backup@localhost IDENTIFIED BY 'Xy7-s3cret-Q';
GRANT ALL ON *.* TO backup@localhost;
CREATE USER mysql@localhost IDENTIFIED VIA unix_socket;
GRANT SELECT, LOCK TABLES, SHOW VIEW, TRIGGER, EVENT ON blog.* TO mysql@localhost;
CREATE USER limited@localhost IDENTIFIED BY 'L1m-pw';
GRANT SELECT ON shop.* TO limited@localhost;
SQL
check "the source databases are made" test "$(sql -e 'SELECT COUNT(*) FROM shop.audit')" = 2001

cat > "$T/backup.cnf" <<CNF
[client]
user = backup
password = Xy7-s3cret-Q
socket = $S
CNF
chmod 600 "$T/backup.cnf"
printf '[client]\nuser = limited\npassword = L1m-pw\nsocket = %s\n' "$S" > "$T/limited.cnf"
chmod 600 "$T/limited.cnf"

cat > "$T/cfg/vakap.lua" <<LUA
storage = dir "backups"
retention = { last = 1 }
LUA
cat > "$T/cfg/sites.d/db.lua" <<LUA
site "one" {
  host = "local",
  mysql { database = "shop", socket = "$S", ignore_tables = { "cache" }, options = { "--skip-comments" } },
}
site "every" {
  host = "local",
  mysql { all = true, defaults_file = "$T/backup.cnf" },
}
site "other-user" {
  host = "local",
  mysql { database = "blog", as_user = "mysql", socket = "$S" },
}
site "bad" {
  host = "local",
  mysql { database = "nosuch", socket = "$S" },
}
LUA
B=$T/cfg/backups

run check one every other-user
expect_code "check passes where the clients connect" 0
run check bad
expect_code "check fails for a database that does not exist" 1
contains "check says why" "Unknown database 'nosuch'" "$OUT"
cat > "$T/cfg/sites.d/limited.lua" <<LUA
site "limited" {
  host = "local",
  mysql { database = "shop", defaults_file = "$T/limited.cnf" },
}
LUA
run check limited
expect_code "check fails for a dump user who connects but lacks what the dump needs" 1
contains "check names what was denied" "Access denied" "$(printf '%s\n' "$OUT" | grep '^limited')"
run backup limited
expect_code "as backup would" 1
rm "$T/cfg/sites.d/limited.lua"

run backup
expect_code "backup exits 1: one site failed" 1
contains "the failed dump shows mysqldump's message" "Unknown database 'nosuch'" "$(printf '%s\n' "$OUT" | grep '^bad')"
contains "only that site failed" "4 sites, 3 ok, 1 failed (bad)" "$OUT"
check "the failed dump stored nothing" test -z "$(find "$B/bad/mysql" -type f 2>/dev/null)"

# one database: SITE/mysql/STAMP.sql.zst, reloaded with the mysql client
obj=$(ls "$B"/one/mysql/*.sql.zst 2>/dev/null | head -1)
check "one database is one object" test -f "$obj"
man=${obj%.sql.zst}.json
check "the manifest records the dump's command" \
	test "$(json_get "$man" '" ".join(d["source"]["command"][:3])')" = "mysqldump --socket=$S --single-transaction"
check "the options are added after the defaults" \
	test "$(json_get "$man" 'd["source"]["command"].index("--skip-comments") > d["source"]["command"].index("--hex-blob")')" = True
lacks "--skip-comments took effect" "Dump completed" "$(zstd -dc "$obj")"
sql -e "CREATE DATABASE shop_copy"
check "the object reloads with mysql alone" sh -c "zstd -dc '$obj' | mariadb --no-defaults --socket='$S' shop_copy"
same_db "the reloaded copy has the tables, rows, checksums, triggers, routines and events" shop shop_copy cache
check "the ignored table was left out" test -z "$(sql -e "SHOW TABLES FROM shop_copy LIKE 'cache'")"
check "unicode text survives byte for byte" test "$(sql -e 'SELECT HEX(name) FROM shop_copy.items WHERE id = 1')" = \
	"$(sql -e 'SELECT HEX(name) FROM shop.items WHERE id = 1')"

# every database: one object per database, system schemas left out
parts=$(cd "$B/every/mysql" 2>/dev/null && ls -d */ | tr -d / | tr '\n' ' ')
check "all = true stores one folder per database, system schemas left out" test "$parts" = "blog shop "
for db in shop blog; do
	o=$(ls "$B"/every/mysql/$db/*.sql.zst 2>/dev/null | head -1)
	check "$db: its manifest names the database" test "$(json_get "${o%.sql.zst}.json" 'd["part"]["database"]')" = $db
	sql -e "CREATE DATABASE ${db}_every"
	check "$db: the object reloads with mysql alone" sh -c "zstd -dc '$o' | mariadb --no-defaults --socket='$S' ${db}_every"
	same_db "$db: the reloaded copy equals the source" $db ${db}_every
done
o=$(ls "$B"/every/mysql/shop/*.json | head -1)
check "the defaults file is the dump's first argument" \
	test "$(json_get "$o" 'd["source"]["command"][1]')" = "--defaults-extra-file=$T/backup.cnf"
check "the password is nowhere in storage (never on a command line)" test -z "$(grep -rl 'Xy7-s3cret-Q' "$B")"
lacks "the password is not in the output" "Xy7-s3cret-Q" "$OUT$ERR"

# as another system user, through sudo
o=$(ls "$B"/other-user/mysql/*.sql.zst 2>/dev/null | head -1)
check "as_user: the dump ran through sudo as mysql" \
	test "$(json_get "${o%.sql.zst}.json" '" ".join(d["source"]["command"][:6])')" = "sudo -n -u mysql -- mysqldump"
sql -e "CREATE DATABASE blog_as"
check "as_user: the object reloads" sh -c "zstd -dc '$o' | mariadb --no-defaults --socket='$S' blog_as"
same_db "as_user: the reloaded copy equals the source" blog blog_as

# a second backup of every database: each part is hinted its previous size
sleep 1
run backup every
expect_code "a second backup of every database succeeds" 0
check "each database now has two backups" test "$(ls "$B"/every/mysql/{shop,blog}/*.json | wc -l)" = 4
check "the databases made since are found too" test -f "$(ls "$B"/every/mysql/shop_copy/*.json | head -1)"
run rotate every
expect_code "rotate succeeds" 0
contains "rotate treats each database on its own" "mysql/shop     keep 1, forgot 1" "$OUT"
check "rotate kept the newest backup of each database" test "$(ls "$B"/every/mysql/{shop,blog}/*.json | wc -l)" = 2
run verify every
expect_code "verify of every database's dump exits 0" 0
contains "it finds mysqldump's completion line" "complete" "$OUT"

run status one every other-user
expect_code "status is 0 after the backups" 0
contains "status shows each database of all = true" "mysql/blog" "$(printf '%s\n' "$OUT" | grep '^every')"
contains "status shows each database of all = true (2)" "mysql/shop" "$(printf '%s\n' "$OUT" | grep '^every')"

# the component's restore, through the test op
restore() { restore_latest mysql "$@"; } # restore SITE [PART] [TARGET]
before=$(fingerprint shop)
sql -e "DELETE FROM shop.items WHERE id > 10; DROP PROCEDURE shop.item_count; DROP TRIGGER shop.items_audit"
restore one
expect_code "restore into the original database succeeds" 0
check "the original database is back as it was" test "$(fingerprint shop)" = "$before"
restore one "" shop_new
expect_code "restore into a new database succeeds" 0
same_db "the new database equals the source" shop shop_new cache
restore every blog blog_target
expect_code "restore of one database of all = true into a target succeeds" 0
same_db "the target equals the source" blog blog_target
restore every blog
expect_code "restore of one database of all = true into its own database succeeds" 0
same_db "it is unchanged" blog blog_target

# A database dropped from an all = true server: once its last backup is
# stale, status calls it gone and does not count it (the last backup,
# which succeeded, did not find it); rotate --forget-gone removes it.
cat > "$T/cfg/sites.d/db.lua" <<LUA
site "drops" {
  host = "local",
  mysql { all = true, defaults_file = "$T/backup.cnf" },
}
LUA
sql -e "CREATE DATABASE doomed; CREATE TABLE doomed.t (x INT); INSERT INTO doomed.t VALUES (1)"
VAKAP_NOW=$(( $(date +%s) - 3 * 86400 )) run backup drops
expect_code "a backup three days ago, with the database doomed" 0
sql -e "DROP DATABASE doomed"
run backup drops
expect_code "a backup now, without it" 0
run status drops
expect_code "status exits 0: the dropped database is gone, not stale" 0
contains "it says gone" "GONE" "$(printf '%s\n' "$OUT" | grep 'mysql/doomed')"
run rotate drops
check "rotate keeps the gone database's last backup" test -n "$(ls "$B/drops/mysql/doomed/" 2>/dev/null)"
run rotate --forget-gone drops
contains "rotate --forget-gone forgets it" "gone: every backup" "$(printf '%s\n' "$OUT" | grep 'mysql/doomed')"
check "and it is removed" test -z "$(ls "$B/drops/mysql/doomed/" 2>/dev/null)"
check "the other databases keep their backups" test -n "$(ls "$B/drops/mysql/shop/"*.json 2>/dev/null)"
run status drops
expect_code "status is clean" 0
lacks "and no longer lists it" "doomed" "$OUT"

# Over SSH: every database dumped on the site's host, reloaded here with
# the mysql client alone, and restored through the host by vakap.
start_sshd
backup_remote "mysql { all = true, socket = \"$S\" }"
for db in shop blog; do
	o=$(ls "$B"/remote/mysql/$db/*.sql.zst 2>/dev/null | head -1)
	sql -e "CREATE DATABASE ${db}_ssh"
	check "over SSH, $db: the object reloads with mysql alone" sh -c "zstd -dc '$o' | mariadb --no-defaults --socket='$S' ${db}_ssh"
	same_db "over SSH, $db: the reloaded copy equals the source" $db ${db}_ssh
done
run restore remote mysql/shop --into-host --target shop_ssh_restored
expect_code "restore over SSH into another database succeeds" 0
same_db "the database restored over SSH equals the source" shop shop_ssh_restored

finish

#!/bin/bash
# The shipped examples, run as an operator would, so that they cannot
# rot: sites.d/example.lua loads; examples/custom-component backs up,
# verifies and restores an SQLite database through its own component;
# examples/custom-op clears a cache (and with -n only counts it);
# examples/s3-ssh backs up over a real sshd into a real S3 server
# (moto_server) from a real MariaDB, read back with boto3, gpg, zstd, tar.
# Each example is copied with its absolute paths (/srv, /var/www,
# /etc/vakap) moved under the test's directory, and nothing else changed.
. "$(dirname "$0")/lib.sh"
. "$ROOT/tests/support/dbtest.sh"
E=$ROOT/examples

# copy_example NAME: examples/NAME into $T/NAME, its paths under $T
copy_example() {
	cp -r "$E/$1" "$T/$1"
	find "$T/$1" -name '*.lua' -exec sed -i \
		-e "s#\"/srv/#\"$T/srv/#g" -e "s#\"/var/www/#\"$T/www/#g" \
		-e "s#\"/etc/vakap/#\"$T/etc/#g" {} +
}
# in_example NAME ARGS...: vakap in the copy of example NAME
in_example() {
	ex=$1
	shift
	run_in "$T/$ex" "$@"
}

# ---- sites.d/example.lua: the commented example site loads as it is
cat > "$T/cfg/vakap.lua" <<LUA
storage = dir "$T/unused"
sites = "$ROOT/sites.d"
LUA
run --json list
expect_code "sites.d/example.lua loads" 0
check "it declares its three sites" test "$(printf '%s' "$OUT" | json_get - 'len(d["sites"])')" = 3

# ---- examples/custom-component: an sqlite component of the operator's
copy_example custom-component
mkdir -p "$T/srv/notes"
sqlite3 "$T/srv/notes/notes.db" "CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT);
  INSERT INTO notes(body) VALUES ('first'), ('l''été'), ('third');"
in_example custom-component check
expect_code "custom-component: check passes" 0
in_example custom-component backup
expect_code "custom-component: backup succeeds" 0
dump=$(ls "$T/custom-component/backups/notes/db/"*.sql.zst 2>/dev/null | head -1)
check "the stored dump reloads with zstd and sqlite3 alone" sh -c \
	"zstd -dc '$dump' | sqlite3 '$T/byhand.db' && test \"\$(sqlite3 '$T/byhand.db' 'SELECT body FROM notes WHERE id = 2')\" = \"l'été\""
in_example custom-component verify
expect_code "custom-component: verify runs the component's inspect" 0
in_example custom-component restore notes db --into-host --target "$T/copy.db"
expect_code "custom-component: restore into a new database" 0
check "the restored database has the rows" test \
	"$(sqlite3 "$T/copy.db" 'SELECT group_concat(body, ",") FROM notes')" = "first,l'été,third"
printf 'CREATE TABLE cut(x);\nINSERT INTO cut VALUES(1);\n' > "$T/cut.sql"
sed -i "s#\"sqlite3\", \"-readonly\", self.options.path, \".dump\"#\"cat\", \"$T/cut.sql\"#" \
	"$T/custom-component/components.d/sqlite.lua"
in_example custom-component backup
in_example custom-component verify
expect_code "custom-component: a dump without its COMMIT; fails verify" 1
contains "and says why" "cut short" "$OUT$ERR"

# ---- examples/custom-op: cache-clear, planned and run
copy_example custom-op
mkdir -p "$T/srv/blog/var/cache/pages" "$T/srv/blog/posts"
for f in a b c; do printf 'x\n' > "$T/srv/blog/var/cache/pages/$f.html"; done
printf 'keep\n' > "$T/srv/blog/posts/hello.md"
in_example custom-op --json -n run cache-clear
expect_code "custom-op: a dry run succeeds" 0
check "it says how many files would go" test "$(printf '%s' "$OUT" | json_get - 'd["sites"][0]["result"]["would_remove"]')" = 3
check "and removes nothing" test -f "$T/srv/blog/var/cache/pages/a.html"
in_example custom-op --json run cache-clear
expect_code "custom-op: cache-clear succeeds" 0
check "it says how many files went" test "$(printf '%s' "$OUT" | json_get - 'd["sites"][0]["result"]["removed"]')" = 3
check "the cache is empty" test -z "$(ls -A "$T/srv/blog/var/cache")"
check "the rest of the site is left alone" test -f "$T/srv/blog/posts/hello.md"
rm -rf "$T/srv/blog/var/cache"
in_example custom-op run cache-clear
expect_code "custom-op: a site without its cache fails" 1
contains "naming the directory" "var/cache is not a directory" "$OUT$ERR"

# ---- examples/s3-ssh: sshd, S3 and MariaDB, all real, on loopback
copy_example s3-ssh
start_server mariadb "$T/db"
start_sshd
S=$ROOT/tests/support
if ! python3 "$S/moto_s3.py" start "$T/moto" --bucket acme-backups > "$T/moto.env" 2> "$T/moto.err"; then
	not_ok "start moto_server" "$(cat "$T/moto.err" "$T/moto/moto.log" 2>/dev/null)"
	finish
	exit 1
fi
STOPS="python3 '$S/moto_s3.py' stop '$T/moto'; gpgconf --kill all 2>/dev/null; $STOPS"
trap 'eval "$STOPS"; rm -rf "$T"' EXIT
export AWS_ENDPOINT_URL=$(sed -n 's/^endpoint=//p' "$T/moto.env")
export AWS_ACCESS_KEY_ID=$(sed -n 's/^access_key=//p' "$T/moto.env")
export AWS_SECRET_ACCESS_KEY=secret-$RANDOM
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_REGION AWS_DEFAULT_REGION AWS_CONFIG_FILE AWS_SHARED_CREDENTIALS_FILE
s3tool() { python3 "$S/s3tool.py" "$AWS_ENDPOINT_URL" "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" acme-backups "$@"; }
# the backup team's key, in the keyring gpg finds by default (~/.gnupg)
mkdir -m 700 "$HOME/.gnupg"
gpg --batch --quiet --passphrase '' --quick-gen-key 'Backups <backups@acme.example>' default default never 2>/dev/null
port=${SSH_HOST##*:}
cat >> "$HOME/.ssh/config" <<EOF
Host web1.acme.example
  HostName 127.0.0.1
  Port $port
  User root
EOF
mkdir -p "$T/www/shop/wp-content/uploads/2026/11/cache" "$T/etc"
printf 'a photo\n' > "$T/www/shop/wp-content/uploads/2026/11/photo.jpg"
printf 'cached\n' > "$T/www/shop/wp-content/uploads/2026/11/cache/page.html"
printf '[client]\nuser = root\nsocket = %s\n' "$MARIADB_SOCKET" > "$T/etc/shop.cnf"
chmod 600 "$T/etc/shop.cnf"
mariadb --socket="$MARIADB_SOCKET" -e "CREATE DATABASE shop; CREATE TABLE shop.orders (id INT PRIMARY KEY, item TEXT);
  INSERT INTO shop.orders VALUES (1, 'tea'), (2, 'coffee');"

in_example s3-ssh hostkeys --accept-new shop
expect_code "s3-ssh: the host's key is recorded" 0
in_example s3-ssh backup
expect_code "s3-ssh: backup succeeds" 0
s3tool keys vakap/shop/ > "$T/keys.json"
tarkey=$(json_get "$T/keys.json" '[k for k in d if k.endswith(".tar.zst.gpg")][0]')
sqlkey=$(json_get "$T/keys.json" '[k for k in d if k.endswith(".sql.zst.gpg")][0]')
s3tool get "$tarkey" "$T/files.gpg" >/dev/null
s3tool get "$sqlkey" "$T/db.gpg" >/dev/null
check "the files, read back with boto3, gpg, zstd and tar, have the photo and not the cache" sh -c \
	"gpg --batch -q -d '$T/files.gpg' | zstd -dc | tar -t > '$T/list' && grep -q 'photo.jpg' '$T/list' && ! grep -q 'page.html' '$T/list'"
check "the dump, read back with boto3, gpg and zstd, reloads with mariadb" sh -c \
	"mariadb --socket='$MARIADB_SOCKET' -e 'CREATE DATABASE copy' && gpg --batch -q -d '$T/db.gpg' | zstd -dc | mariadb --socket='$MARIADB_SOCKET' copy && test \"\$(mariadb --socket='$MARIADB_SOCKET' -N -e 'SELECT group_concat(item ORDER BY id) FROM copy.orders')\" = tea,coffee"
in_example s3-ssh status
expect_code "s3-ssh: status is fresh" 0

finish

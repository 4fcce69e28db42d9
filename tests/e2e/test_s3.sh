#!/bin/bash
# vakap on s3 storage, end to end against real moto_servers on loopback:
# backup (single and multipart objects, encrypted),
# read back by an independent client (boto3) and plain gpg and zstd;
# status, check (incomplete uploads listed and aborted), url; a wrong
# secret; a failed site and an interrupted run leave nothing behind.
# moto checking signatures rejects correctly signed listings whose prefix
# holds a '/' (every listing vakap makes), so the main flow runs against a
# moto that accepts any keys, and a second one that checks them takes a
# backup with the right secret and refuses the wrong one.
. "$(dirname "$0")/lib.sh"
S=$ROOT/tests/support
M=$T/moto
A=$T/moto-auth
mkdir -p "$M" "$A"
if ! python3 "$S/moto_s3.py" start "$M" > "$T/moto.env" 2> "$T/moto.err" ||
	! python3 "$S/moto_s3.py" start "$A" --auth > "$T/auth.env" 2>> "$T/moto.err"; then
	not_ok "start moto_server" "$(cat "$T/moto.err" "$M/moto.log" "$A/moto.log" 2>/dev/null)"
	python3 "$S/moto_s3.py" stop "$M"
	python3 "$S/moto_s3.py" stop "$A"
	finish
	exit 1
fi
sh "$S/gpgkeys.sh" "$T/k" >/dev/null 2>&1 || not_ok "make the test keys"
. "$T/k/keys.sh"
G=$T/k/gnupg
trap 'python3 "$S/faultproxy.py" stop "$T/proxy" 2>/dev/null; python3 "$S/moto_s3.py" stop "$M"; python3 "$S/moto_s3.py" stop "$A"; gpgconf --homedir "$G" --kill all 2>/dev/null; rm -rf "$T"' EXIT
endpoint=$(sed -n 's/^endpoint=//p' "$T/moto.env")
bucket=$(sed -n 's/^bucket=//p' "$T/moto.env")
access_key=$(sed -n 's/^access_key=//p' "$T/moto.env")
# this moto takes any keys: a secret of our own, to look for in the output
secret_key=secret-$RANDOM$RANDOM-never-printed
# credentials from the environment only: no ~/.aws of the machine
export HOME=$T AWS_ACCESS_KEY_ID=$access_key AWS_SECRET_ACCESS_KEY=$secret_key
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_REGION AWS_DEFAULT_REGION AWS_CONFIG_FILE AWS_SHARED_CREDENTIALS_FILE
s3tool() { python3 "$S/s3tool.py" "$endpoint" "$access_key" "$secret_key" "$bucket" "$@"; }

mkdir -p "$T/www/up/sub"
printf 'hello\n' > "$T/www/up/sub/a.txt"
head -c 12000000 /dev/urandom > "$T/big.bin"
printf 'CREATE TABLE t (x int);\n' > "$T/dump.sql"

cat > "$T/cfg/vakap.lua" <<LUA
storage = s3 { bucket = "$bucket", prefix = "backups/", endpoint = "$endpoint", region = "us-east-1",
  retry_base_ms = 50 }
encrypt = gpg { recipients = { "$alice" }, homedir = "$G" }
LUA
cat > "$T/cfg/sites.d/s.lua" <<LUA
site "shop" {
  host = "local",
  files { name = "uploads", path = "$T/www/up" },
  command { name = "db", run = { "cat", "$T/dump.sql" }, ext = "sql" },
  command { name = "big", run = { "cat", "$T/big.bin" }, ext = "bin", compressed = true },
}
site "broken" {
  host = "local",
  command { run = { "sh", "-c", "head -c 6000000 /dev/urandom; echo 'dump failed' >&2; exit 5" }, compressed = true },
}
LUA

run backup
expect_code "backup exits 1: one site failed" 1
contains "the failed site says why" "exited with status 5: dump failed" "$OUT"
keys=$(s3tool keys backups/)
contains "the db dump is stored under the prefix" "backups/shop/db/" "$keys"
contains "the multipart object is stored" ".bin.gpg" "$keys"
lacks "no data of the failed site is stored" "backups/broken/command/" "$keys"
check "no multipart upload is left behind" test "$(s3tool uploads backups/)" = "[]"

db=$(json_get - "[k for k in d if k.startswith('backups/shop/db/') and k.endswith('.sql.zst.gpg')][0]" <<< "$keys")
s3tool get "$db" "$T/db.gpg" >/dev/null
gpg --homedir "$G" --batch --quiet --decrypt "$T/db.gpg" 2>/dev/null | zstd -dc > "$T/db.out"
check "boto3 + gpg + zstd give the dump back" cmp "$T/dump.sql" "$T/db.out"
big=$(json_get - "[k for k in d if k.startswith('backups/shop/big/') and k.endswith('.bin.gpg')][0]" <<< "$keys")
s3tool get "$big" "$T/big.gpg" >/dev/null
gpg --homedir "$G" --batch --quiet --decrypt "$T/big.gpg" 2>/dev/null > "$T/big.out"
check "the 12 MB multipart object decrypts to the same bytes" cmp "$T/big.bin" "$T/big.out"
s3tool get "${big%.bin.gpg}.json" "$T/big.json" >/dev/null
check "its manifest's sha256 is the object's" \
	test "$(json_get "$T/big.json" "d['sha256']")" = "$(json_get - "d['sha256']" <<< "$(s3tool sha "$big")")"
up=$(json_get - "[k for k in d if k.startswith('backups/shop/uploads/') and k.endswith('.tar.zst.gpg')][0]" <<< "$keys")
s3tool get "$up" "$T/up.gpg" >/dev/null
names=$(gpg --homedir "$G" --batch --quiet --decrypt "$T/up.gpg" 2>/dev/null | zstd -dc | tar -t)
contains "the files component is a tar of the directory" "sub/a.txt" "$names"

run status
expect_code "status exits 1: the failed site has no backup" 1
contains "status shows the multipart backup ok" "big" "$OUT"
contains "status says the failed site is missing" "MISSING" "$OUT"
run status shop
expect_code "status of the good site exits 0" 0

run url shop db
expect_code "url exits 0" 0
curl -sf -o "$T/via-url" "$OUT"
check "the link downloads the object" cmp "$T/db.gpg" "$T/via-url"
contains "the link is signed and expires in an hour" "X-Amz-Expires=3600" "$OUT"
lacks "the link does not carry the secret" "$secret_key" "$OUT"
run url shop db --at 2001-01-01
expect_code "url of a time before any backup exits 1" 1
contains "and says so" "no backup of shop/db at or before 2001-01-01T00:00:00Z" "$ERR"

# moto dates every multipart upload 2010-11-10, so this one is "old"
s3tool start-upload "backups/shop/db/20200101T000000Z.sql.zst.gpg" >/dev/null
run check shop
expect_code "check exits 1 while an upload older than a day is left" 1
contains "check finds the bucket reachable and writable" "ok (reachable, writable)" "$OUT"
contains "check lists an upload older than a day" "storage: upload of backups/shop/db/20200101T000000Z.sql.zst.gpg started" "$OUT"
contains "and says how to clean it" "vakap check --abort-uploads removes it" "$OUT"
run check --abort-uploads shop
contains "check --abort-uploads aborts it" ": aborted" "$OUT"
expect_code "and then passes" 0
check "no multipart upload is left" test "$(s3tool uploads backups/)" = "[]"

# Against the moto that checks signatures: the right secret stores, a
# wrong one is refused with the server's 403, and is never printed.
auth_endpoint=$(sed -n 's/^endpoint=//p' "$T/auth.env")
auth_key=$(sed -n 's/^access_key=//p' "$T/auth.env")
auth_secret=$(sed -n 's/^secret_key=//p' "$T/auth.env")
sed -i "s|$endpoint|$auth_endpoint|" "$T/cfg/vakap.lua"
AWS_ACCESS_KEY_ID=$auth_key AWS_SECRET_ACCESS_KEY=$auth_secret run backup shop
expect_code "signed with the right secret, the backup is stored" 0
AWS_ACCESS_KEY_ID=$auth_key AWS_SECRET_ACCESS_KEY=wrong-$auth_secret run backup shop
expect_code "a wrong secret fails the backup" 1
contains "with the server's 403" "403" "$OUT"
lacks "the secret is not in the output" "$auth_secret" "$OUT$ERR"
sed -i "s|$auth_endpoint|$endpoint|" "$T/cfg/vakap.lua"

# rotate on s3: backups at faked times, a leftover data object
cat > "$T/cfg/sites.d/s.lua" <<LUA
site "rot" {
  host = "local",
  command { name = "db", run = { "printf", "dump" }, ext = "sql", retention = { daily = 2 } },
}
LUA
for t in 2026-11-01T02:00:00Z 2026-11-02T02:00:00Z 2026-11-02T09:00:00Z 2026-11-03T02:00:00Z; do
	VAKAP_NOW=$(date -u -d "$t" +%s) run -q backup rot
done
printf 'partial' > "$T/partial"
s3tool put backups/rot/db/20261101T030000Z.sql.zst.gpg "$T/partial" >/dev/null
VAKAP_NOW=$(( $(date +%s) + 2 * 86400 )) run rotate rot
expect_code "rotate on s3 exits 0" 0
contains "it keeps 2 and forgets 2, and removes the leftover" "keep 2, forgot 2, 1 leftover data objects" "$OUT"
left=$(s3tool keys backups/rot/db/)
check "exactly the survivors remain in the bucket" test "$left" = '["backups/rot/db/20261102T090000Z.json", "backups/rot/db/20261102T090000Z.sql.zst.gpg", "backups/rot/db/20261103T020000Z.json", "backups/rot/db/20261103T020000Z.sql.zst.gpg"]'
run restore rot db --to "$T/rot.sql"
check "a survivor restores from s3" test "$(cat "$T/rot.sql")" = dump
run verify rot
expect_code "and verifies" 0

# Interrupted mid-upload: the multipart upload is aborted, nothing stays.
cat > "$T/cfg/sites.d/s.lua" <<LUA
site "slow" {
  host = "local",
  command { run = { "sh", "-c", "head -c 11000000 /dev/urandom; sleep 30" }, compressed = true },
}
LUA
(cd "$T/cfg" && exec "$VAKAP" backup) > "$T/out" 2> "$T/err" &
pid=$!
for _ in $(seq 1 100); do
	[ "$(s3tool uploads backups/slow/)" != "[]" ] && break
	sleep 0.1
done
sleep 1
kill -TERM "$pid"
RC=0
wait "$pid" || RC=$?
check "an interrupted backup exits 130" test "$RC" = 130
check "its multipart upload is aborted" test "$(s3tool uploads backups/slow/)" = "[]"
check "no object of it exists, only the record of its run" test \
	"$(s3tool keys backups/slow/ | json_get - '[k for k in d if "/_ops/" not in k]')" = "[]"
run status slow
expect_code "status exits 1 after the interrupted run" 1
contains "and says the run did not end well" "op:backup" "$(printf '%s\n' "$OUT" | grep -E 'INTERRUPTED|FAILED')"

# Answers lost after the server acted, through the fault proxy: the data's
# single PUT, the manifest's PUT, a multipart upload's Complete.  Each
# backup succeeds, its manifest and data are there and read back whole
# with boto3, gpg and zstd, and nothing is left over.
if purl=$(python3 "$S/faultproxy.py" start "$T/proxy" "$endpoint" 2>"$T/proxy.err"); then
	purl=${purl#endpoint=}
	sed -i "s#endpoint = \"$endpoint\"#endpoint = \"$purl\"#" "$T/cfg/vakap.lua"
	cat > "$T/cfg/sites.d/s.lua" <<LUA
site "lost" {
  host = "local",
  command { name = "db", run = { "cat", "$T/dump.sql" }, ext = "sql" },
  command { name = "big", run = { "cat", "$T/big.bin" }, ext = "bin", compressed = true },
}
LUA
	lose() { # lose METHOD MATCH: the next such request's answer is lost
		printf '[{"method": "%s", "match": "%s", "fault": "lose", "times": 1}%s]' "$1" "$2" \
			"${3:+, {\"method\": \"$1\", \"match\": \"$2\", \"fault\": \"$3\", \"times\": 1\}}" > "$T/proxy/rules.json"
	}
	for what in "PUT .sql.zst.gpg" "PUT Z.json" "POST uploadId nosuchupload"; do
		set -- $what
		lose "$1" "$2" "${3:-}"
		run backup lost
		expect_code "a lost answer ($1 ~ $2) is resolved, the backup succeeds" 0
		check "the proxy did lose it" grep -q '"fault": "lose"' "$T/proxy/log.jsonl"
		rm -f "$T/proxy/log.jsonl"
	done
	keys=$(s3tool keys backups/lost/)
	check "every backup has its manifest and its data" test \
		"$(json_get - 'len([k for k in d if k.endswith(".json") and "/_ops/" not in k]) == 6 and len([k for k in d if k.endswith(".gpg")]) == 6' <<< "$keys")" = True
	for k in $(json_get - '" ".join(k for k in d if k.endswith(".sql.zst.gpg"))' <<< "$keys"); do
		s3tool get "$k" "$T/lost.gpg" >/dev/null
		gpg --homedir "$G" --batch --quiet --decrypt "$T/lost.gpg" 2>/dev/null | zstd -dc > "$T/lost.out"
		check "boto3 + gpg + zstd give $k back whole" cmp "$T/dump.sql" "$T/lost.out"
	done
	check "no multipart upload is left" test "$(s3tool uploads backups/lost/)" = "[]"
	run status lost
	expect_code "status is ok after the lost answers" 0
else
	not_ok "start the fault proxy" "$(cat "$T/proxy.err")"
fi

# A key in the bucket that vakap could not have written (../ in it):
# listings pass over it, so nothing reads, deletes or reports on it.
printf 'planted\n' > "$T/planted"
s3tool put "backups/lost/db/../20200101T000000Z.sql.zst" "$T/planted" >/dev/null
run status lost
expect_code "status passes over a key with ../ in it" 0
grep -q '^retention' "$T/cfg/vakap.lua" || printf 'retention = { last = 5 }\n' >> "$T/cfg/vakap.lua"
VAKAP_NOW=$(( $(date +%s) + 2 * 86400 )) run -n rotate --explain lost
expect_code "rotate exits 0" 0
lacks "and so does rotate, with no internal file in any message" "lua/vakap/" "$OUT$ERR"
lacks "nor the planted key among its leftovers" "20200101T000000Z" "$OUT$ERR"
check "the planted object is left alone" test "$(s3tool keys backups/lost/db/.. | json_get - 'len(d)')" -ge 1

finish

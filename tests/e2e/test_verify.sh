#!/bin/bash
# verify: the newest backups downloaded and checked to their last byte
# (digest, signature, decryption, decompression, a tar read through, a
# dump's completion line); the outcome recorded beside each backup and
# shown by status, which fails a component whose newest backup is bad.
. "$(dirname "$0")/lib.sh"
test_keys

mkdir -p "$T/www/sub"
printf 'page\n' > "$T/www/sub/index.html"
cat > "$T/cfg/vakap.lua" <<LUA
storage = dir "backups"
encrypt = gpg { recipients = { "$alice" }, homedir = "$G" }
retention = { last = 1 }
LUA
cat > "$T/cfg/sites.d/s.lua" <<LUA
site "shop" {
  host = "local",
  files { name = "www", path = "$T/www" },
  command { name = "db", run = { "printf", "dump" }, ext = "sql" },
}
LUA
VAKAP_NOW=$(( $(date +%s) - 7200 )) run backup
run backup
expect_code "two backups" 0

run verify
expect_code "verify of good backups exits 0" 0
contains "it reads the tar through" "entries" "$OUT"
contains "both components are verified" "shop                 db" "$OUT"
B=$T/cfg/backups
check "the outcome is recorded beside the newest backup" test "$(ls "$B"/shop/www/*.verify-ok.json | wc -l)" = 1
# status takes a verification's time from its record's mtime in the
# listing: run it on that clock, so that "0s ago" does not depend on a
# second turning
VAKAP_NOW=$(stat -c %Y "$(ls "$B"/shop/www/*.verify-ok.json)") run status
expect_code "status is ok" 0
contains "status shows the verification" "ok 0s ago" "$OUT"

run verify --all
check "--all verifies every backup" test "$(ls "$B"/shop/www/*.verify-ok.json | wc -l)" = 2

# one byte changed in the newest www object
data=$(ls "$B"/shop/www/*.tar.zst.gpg | tail -1)
python3 - "$data" <<'PY'
import sys
p = sys.argv[1]; b = bytearray(open(p, "rb").read()); b[len(b) // 2] ^= 1; open(p, "wb").write(b)
PY
run verify
expect_code "verify of a tampered backup exits 1" 1
contains "it says the digest does not match" "sha256 mismatch" "$OUT"
check "the failure replaces the earlier success" test -n "$(ls "$B"/shop/www/*.verify-failed.json 2>/dev/null)"
check "for that backup only" test "$(ls "$B"/shop/www/*.verify-ok.json | wc -l)" = 1
run status
expect_code "status exits 1 when the newest backup failed verification" 1
contains "status says so" "BAD" "$OUT"
contains "and counts it" "1 failed verification" "$OUT"

run rotate
expect_code "rotate keeps the last" 0
check "a forgotten backup's verification record goes with it" \
	test "$(ls "$B"/shop/www/ | grep -c verify)" = 1

run snapshots shop
expect_code "snapshots exits 0" 0
contains "snapshots lists a backup with its compression and encryption" "zstd   gpg, 1 recipient" "$OUT"
contains "and its verification" "gpg, 1 recipient   -                failed" "$OUT"
run --json snapshots shop www
check "snapshots --json gives each backup's recipients" \
	test "$(json_get - "d['sites'][0]['result']['backups'][0]['recipients'] == ['$alice']" <<< "$OUT")" = True
run snapshots shop nosuch
expect_code "snapshots of a component without backups fails" 1
contains "naming the ones there are" "there are backups of: db, www" "$OUT"

finish

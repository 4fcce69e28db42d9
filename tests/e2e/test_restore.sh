#!/bin/bash
# restore: the plaintext to a file, and into the host (a directory over
# its original and beside it, a command's restore), from encrypted and
# signed backups; --at picks by time; a changed byte in storage stops the
# restore before anything is written or replaced.
. "$(dirname "$0")/lib.sh"
test_keys

W=$T/www
mkdir -p "$W/a/b"
printf 'one\n' > "$W/a/b/one.txt"
printf 'caf\xc3\xa9\n' > "$W/café.txt"
printf 'v1 dump\n' > "$T/dump.sql"
cat > "$T/cfg/vakap.lua" <<LUA
storage = dir "backups"
encrypt = gpg { recipients = { "$alice" }, sign = "$signer", homedir = "$G",
  passphrase_file = "$T/k/passphrase" }
LUA
cat > "$T/cfg/sites.d/s.lua" <<LUA
site "shop" {
  host = "local",
  files { name = "www", path = "$W" },
  command { name = "db", run = { "cat", "$T/dump.sql" }, ext = "sql",
            restore = { "sh", "-c", "cat > '$T/reloaded.sql'" } },
}
LUA

VAKAP_NOW=$(date -u -d 2026-11-01T00:00:00Z +%s) run backup
expect_code "first backup" 0
printf 'v2 dump\n' > "$T/dump.sql"
printf 'changed\n' > "$W/a/b/one.txt"
run backup
expect_code "second backup" 0

run restore shop db --to "$T/out.sql"
expect_code "restore --to exits 0" 0
check "the newest plaintext is written" test "$(cat "$T/out.sql")" = "v2 dump"
run restore shop db --at 2026-11-02 --to "$T/old.sql"
check "--at picks the newest backup at or before it" test "$(cat "$T/old.sql")" = "v1 dump"
run restore shop db --to "$T/out.sql"
expect_code "an existing file is not replaced" 1
contains "and the message says how" "exists: remove it, or give --force" "$OUT"
run restore shop db --at 2026-10-01 --to "$T/none.sql"
expect_code "no backup that old exits 1" 1
contains "and says so" "no backup of db at or before 2026-10-01T00:00:00Z" "$OUT"

run restore shop www --into-host --target "$T/copy"
expect_code "restore --into-host --target exits 0" 0
check "the directory is restored beside the original" diff -r "$W" "$T/copy"
run restore shop www --at 2026-11-02 --into-host
expect_code "restore over the original" 0
check "the original is back as it was at the first backup" test "$(cat "$W/a/b/one.txt")" = "one"
run restore shop db --into-host
check "a command's restore reads the plaintext" test "$(cat "$T/reloaded.sql" 2>/dev/null)" = "v2 dump"

# a manifest that names another signer: the manifest's own signature
# no longer checks out
m=$(ls "$T"/cfg/backups/shop/db/*.json | tail -1)
sed -i "s/$signer/$bob/" "$m"
run restore shop db --to "$T/resigned.sql"
expect_code "a backup whose manifest was changed after it was signed does not restore" 1
contains "the message says the manifest was changed" "was changed after it was signed" "$OUT"
check "and no file is left" test ! -e "$T/resigned.sql"

# one byte changed in storage
data=$(ls "$T"/cfg/backups/shop/www/*.tar.zst.gpg | tail -1)
python3 - "$data" <<'PY'
import sys
p = sys.argv[1]; b = bytearray(open(p, "rb").read()); b[len(b) // 2] ^= 1; open(p, "wb").write(b)
PY
printf 'current\n' > "$W/a/b/one.txt"
run restore shop www --into-host
expect_code "a tampered backup does not restore" 1
contains "the message says the digest changed" "sha256 mismatch" "$OUT"
check "nothing was replaced" test "$(cat "$W/a/b/one.txt")" = "current"
run restore shop www --to "$T/www.tar"
expect_code "nor to a file" 1
check "and no file is left" test ! -e "$T/www.tar" -a ! -e "$T/www.tar.vakap-tmp"

finish

#!/bin/bash
# Someone who can write to the storage but does not hold the signing key
# cannot make vakap restore or verify their data.  With signing configured
# (sign = ..., or signers = { ... } on a host that only restores), every
# manifest and every object must carry a good signature by a configured
# signer, whatever the stored manifest says.  Each forgery below is made
# with gpg, sed and cp alone; each is refused by verify, restore --to and
# restore --into-host, and nothing is written.  Also: a manifest whose data
# object is gone is "broken" in status and a clear error in restore.
. "$(dirname "$0")/lib.sh"
test_keys
pgp() { gpg --homedir "$G" --batch --quiet --trust-model always --pinentry-mode loopback --passphrase '' "$@"; }

printf 'the real dump\n' > "$T/dump.sql"
cat > "$T/cfg/vakap.lua" <<LUA
storage = dir "backups"
encrypt = gpg { recipients = { "$alice" }, sign = "$signer", homedir = "$G",
  passphrase_file = "$T/k/passphrase" }
LUA
cat > "$T/cfg/sites.d/s.lua" <<LUA
site "shop" {
  host = "local",
  command { name = "db", run = { "cat", "$T/dump.sql" }, ext = "sql",
            restore = { "sh", "-c", "cat > '$T/reloaded.sql'" } },
}
LUA
run backup
expect_code "a signed backup" 0
B=$T/cfg/backups/shop/db
data=$(ls "$B"/*.sql.zst.gpg | head -1)
manifest=${data%.sql.zst.gpg}.json
cp "$data" "$T/data.orig"
cp "$manifest" "$T/manifest.orig"
pgp --decrypt "$manifest" > "$T/manifest.plain" 2>/dev/null
run verify shop
expect_code "the genuine backup verifies" 0
run check shop
expect_code "check passes with the signing key's passphrase at hand" 0
contains "and says the key signs" "the signing key signs" "$OUT"
printf 'wrong words\n' > "$T/wrong"
sed "s#$T/k/passphrase#$T/wrong#" "$T/cfg/vakap.lua" > "$T/cfg/wrong.lua"
gpgconf --homedir "$G" --kill gpg-agent # nothing cached
run -c wrong.lua check shop
expect_code "check fails, as backup would, with a wrong passphrase" 1
contains "naming the passphrase" "passphrase" "$OUT"

# refused NAME WHAT: verify, restore --to and restore --into-host all fail
# with WHAT in their message, and nothing is written; then the genuine
# objects are put back
refused() {
	rm -f "$T/reloaded.sql" "$T/out.sql"
	run verify shop
	expect_code "$1: verify fails" 1
	contains "$1: verify says why" "$2" "$OUT"
	run restore shop db --to "$T/out.sql"
	expect_code "$1: restore --to fails" 1
	contains "$1: restore says why" "$2" "$OUT"
	check "$1: no file is written" test ! -e "$T/out.sql"
	run restore shop db --into-host
	expect_code "$1: restore --into-host fails" 1
	check "$1: nothing reaches the host" test ! -e "$T/reloaded.sql"
	cp "$T/data.orig" "$data"
	cp "$T/manifest.orig" "$manifest"
	find "$B" -name '*.verify-*' -delete
}

# 1. the manifest stripped of its signature, as plain JSON
cp "$T/manifest.plain" "$manifest"
refused "an unsigned manifest" "is not signed, and signing is configured"

# 2. the manifest's signer removed, re-signed by another key of the keyring
sed "s/\"signer\":\"$signer\"/\"signer\":null/" "$T/manifest.plain" > "$T/m.json"
pgp --local-user "$bob" --clearsign -o - "$T/m.json" > "$manifest"
refused "a manifest signed by another key" "is not signed by a trusted signer"

# 3. a plaintext object put in place, its manifest saying "no encryption",
#    signed by another key
printf 'forged rows\n' | zstd -q > "$data.plain"
mv "$data.plain" "$data"
sum=$(sha256sum < "$data" | cut -d' ' -f1)
size=$(stat -c %s "$data")
python3 - "$T/manifest.plain" "$T/m.json" "$sum" "$size" <<'PY'
import json, sys
m = json.loads(open(sys.argv[1]).read())
m["encryption"] = None
m["sha256"], m["size"] = sys.argv[3], int(sys.argv[4])
open(sys.argv[2], "w").write(json.dumps(m) + "\n")
PY
pgp --local-user "$bob" --clearsign -o - "$T/m.json" > "$manifest"
refused "a plaintext object under a manifest signed by another key" "is not signed by a trusted signer"

# 4. the same under the genuine signed manifest: its sha256 no longer matches
printf 'forged rows\n' | zstd -q | pgp -e -r "$alice" -u "$bob" --sign > "$data"
refused "an object re-encrypted and signed by another key" "sha256 mismatch"

# 5. a host that only restores: no signing key, signers = { its fingerprint }
cat > "$T/cfg/vakap.lua" <<LUA
storage = dir "backups"
encrypt = gpg { recipients = { "$alice" }, signers = { "$signer" }, homedir = "$G" }
LUA
run restore shop db --to "$T/out.sql"
expect_code "a restore-only host restores the genuine backup" 0
check "and gets the real dump" test "$(cat "$T/out.sql")" = "the real dump"
rm -f "$T/out.sql"
pgp --local-user "$bob" --clearsign -o - "$T/m.json" > "$manifest"
refused "on a restore-only host, a manifest signed by another key" "is not signed by a trusted signer"

# 6. a manifest whose data object is gone
rm "$data"
run status shop
expect_code "status exits 1 for a backup whose data is gone" 1
contains "and calls it broken" "BROKEN" "$OUT"
run restore shop db --to "$T/out.sql"
expect_code "restore fails" 1
contains "with a clear message" "its data object is missing" "$OUT"
lacks "and no traceback" "stack traceback" "$OUT$ERR"

finish

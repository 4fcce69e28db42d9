#!/bin/bash
# Encrypted backups, checked with plain gpg: what vakap stores decrypts to
# the original bytes (empty, small, and a 300 MiB stream), signatures
# verify, a site can use its own keys or none; and any recipient that
# cannot be used fails its site before its data is read, storing nothing.
. "$(dirname "$0")/lib.sh"

test_keys
pgp() { gpg --homedir "$G" --batch --quiet --trust-model always "$@"; }

head -c 314572800 /dev/urandom > "$T/big.bin"
printf 'CREATE TABLE t (x int);\nINSERT INTO t VALUES (1);\n' > "$T/dump.sql"

cat > "$T/cfg/vakap.lua" <<LUA
storage = dir "backups"
encrypt = gpg { recipients = { "alice@test.invalid", "$bob" }, sign = "$signer",
  homedir = "$G", passphrase_file = "$T/k/passphrase" }
LUA
cat > "$T/cfg/sites.d/good.lua" <<LUA
site "shop" {
  host = "local",
  command { name = "db", run = { "cat", "$T/dump.sql" }, ext = "sql" },
  command { name = "empty", run = { "true" }, ext = "txt", allow_empty = true },
  command { name = "big", run = { "cat", "$T/big.bin" }, ext = "bin", compressed = true },
}
site "own" {
  host = "local",
  encrypt = gpg { recipients = { "$carol" }, homedir = "$G" },
  command { name = "db", run = { "cat", "$T/dump.sql" }, ext = "sql" },
}
site "plain" {
  host = "local", encrypt = false,
  command { name = "db", run = { "cat", "$T/dump.sql" }, ext = "sql" },
}
LUA

run backup
expect_code "backup of encrypted sites succeeds" 0
B=$T/cfg/backups

db=$(ls "$B"/shop/db/*.sql.zst.gpg 2>/dev/null | head -1)
check "the object name ends in .sql.zst.gpg" test -f "$db"
pgp --decrypt "$db" 2>/dev/null | zstd -dc > "$T/db.out"
check "gpg --decrypt | zstd -d gives the dump back" cmp "$T/dump.sql" "$T/db.out"
signed_manifest=${db%.sql.zst.gpg}.json
mstatus=$(pgp --status-fd 1 --verify "$signed_manifest" 2>/dev/null)
contains "the manifest is cleartext-signed: gpg --verify accepts it, made by the signing key" "VALIDSIG $signer" "$mstatus"
manifest=$T/manifest.json
pgp --decrypt "$signed_manifest" > "$manifest" 2>/dev/null
check "the manifest records the recipients' fingerprints and the signer" \
	test "$(json_get "$manifest" "d['encryption'] == {'type': 'gpg', 'recipients': ['$alice', '$bob'], 'signer': '$signer'}")" = True
check "the manifest's sha256 is the stored object's" \
	test "$(json_get "$manifest" "d['sha256']")" = "$(sha256sum < "$db" | cut -d' ' -f1)"
status=$(pgp --decrypt --unwrap "$db" 2>/dev/null | pgp --status-fd 1 --verify 2>/dev/null)
contains "gpg --verify accepts the signature, made by the signing key" "VALIDSIG $signer" "$status"
listing=$(pgp --list-packets "$db" 2>&1)
contains "it is encrypted to both recipients" "pubkey enc packet" "$listing"
check "gpg's own compression is off for a compressed stream" \
	sh -c "pgp() { gpg --homedir '$G' --batch --quiet \"\$@\"; }; ! pgp --list-packets '$db' 2>/dev/null | grep -q 'compressed packet'"

empty=$(ls "$B"/shop/empty/*.txt.zst.gpg 2>/dev/null | head -1)
check "an empty stream is stored encrypted" test -s "$empty"
check "and decrypts to nothing" test "$(pgp --decrypt "$empty" 2>/dev/null | zstd -dc | wc -c)" = 0

big=$(ls "$B"/shop/big/*.bin.gpg 2>/dev/null | head -1)
check "a 300 MiB stream already compressed is stored as .bin.gpg" test -f "$big"
pgp --decrypt "$big" 2>/dev/null > "$T/big.out"
check "and decrypts to the same 300 MiB" cmp "$T/big.bin" "$T/big.out"
rm -f "$T/big.out"

own=$(ls "$B"/own/db/*.gpg 2>/dev/null | head -1)
check "a site's own encrypt replaces the settings'" \
	test "$(json_get "${own%.sql.zst.gpg}.json" "d['encryption']['recipients']")" = "['$carol']"
RC=0
pgp --decrypt "$own" >/dev/null 2>&1 || RC=$?
check "encrypted to a key whose secret is not here, it cannot be read here" test "$RC" != 0
plain=$(ls "$B"/plain/db/ 2>/dev/null | tr '\n' ' ')
contains "encrypt = false stores the site unencrypted" ".sql.zst " "$plain"
lacks "nothing of it ends in .gpg" ".gpg" "$plain"

# Fail closed: each bad recipient fails its site before the command runs.
for bad in "nobody@test.invalid" "$expired" "$revoked"; do
	rm -rf "$B" "$T/ran"
	cat > "$T/cfg/vakap.lua" <<LUA
storage = dir "backups"
encrypt = gpg { recipients = { "$alice", "$bad" }, homedir = "$G" }
LUA
	cat > "$T/cfg/sites.d/good.lua" <<LUA
site "shop" {
  host = "local",
  command { name = "db", run = { "sh", "-c", "touch '$T/ran'; cat '$T/dump.sql'" }, ext = "sql" },
}
LUA
	run backup
	expect_code "a bad recipient ($bad) fails the backup" 1
	contains "the message names the key ($bad)" "gpg: recipient '$bad'" "$OUT"
	check "no data was read from the site ($bad)" test ! -e "$T/ran"
	check "nothing was stored ($bad)" test -z "$(find "$B" -type f ! -path '*/_ops/*' 2>/dev/null)"
	case $bad in
	"$expired") contains "an expired key is called expired" "cannot be used: expired" "$OUT" ;;
	"$revoked") contains "a revoked key is called revoked" "cannot be used: revoked" "$OUT" ;;
	esac
done

# check: every key with its expiry, a warning within 30 days
cat > "$T/cfg/vakap.lua" <<LUA
storage = dir "backups"
encrypt = gpg { recipients = { "$alice", "$soon" }, sign = "$signer", homedir = "$G" }
LUA
run check
expect_code "check passes with keys that expire soon" 0
contains "check shows a recipient and that it never expires" "gpg recipient  ok      $alice (Alice <alice@test.invalid>), expires never" "$OUT"
contains "check warns of the key expiring within 30 days" "gpg recipient  warn    gpg: recipient '$soon' (" "$OUT"
contains "check shows the signing key" "gpg signer     ok      $signer (Signer <signer@test.invalid>)" "$OUT"
cat > "$T/cfg/vakap.lua" <<LUA
storage = dir "backups"
encrypt = gpg { recipients = { "$revoked" }, homedir = "$G" }
LUA
run check
expect_code "check fails with a revoked recipient" 1
contains "check says why" "gpg recipient  FAILED  gpg: recipient '$revoked'" "$OUT"

finish

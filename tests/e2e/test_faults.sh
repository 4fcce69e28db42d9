#!/bin/bash
# Faults injected on purpose, and what vakap's word is worth after each,
# checked with ls, find and status's exit code: a run killed with SIGKILL
# (its leftovers reported by check and removed by rotate a day later; the
# run shown as interrupted); a full disk (a small tmpfs); a clock far ahead
# (status says so; later backups are stamped by the clock); a command that
# writes nothing (refused unless allowed).
. "$(dirname "$0")/lib.sh"
S=$T/cfg/backups
DAY=86400

cat > "$T/cfg/vakap.lua" <<'LUA'
storage = dir "backups"
retention = { last = 2 }
LUA
site() {
	cat > "$T/cfg/sites.d/s.lua" <<LUA
site "shop" {
  host = "local",
  command { name = "db", run = { "sh", "-c", "$1" }, ext = "sql", compressed = true },
}
LUA
}

# ---- SIGKILL mid-backup: a temporary file, a run that never ended
site "head -c 3000000 /dev/urandom; sleep 30"
(cd "$T/cfg" && exec "$VAKAP" backup) > "$T/out" 2> "$T/err" &
pid=$!
for _ in $(seq 1 100); do
	[ -n "$(find "$S/shop/db" -name '.tmp-*' -size +1k 2>/dev/null)" ] && break
	sleep 0.1
done
workers=$(pgrep -P "$pid")
pkill -KILL -P "$pid" 2>/dev/null
kill -KILL "$pid"
wait "$pid" 2>/dev/null
for _ in $(seq 1 50); do # until the workers are gone (bounded)
	alive=
	for w in $workers; do kill -0 "$w" 2>/dev/null && alive=1; done
	[ -z "$alive" ] && break
	sleep 0.1
done
pkill -f "sleep 30" 2>/dev/null
tmp=$(find "$S/shop/db" -name '.tmp-*')
check "a killed run leaves its temporary file" test -n "$tmp"
check "and no manifest" test -z "$(find "$S/shop/db" -name '*.json')"
run status shop
expect_code "status exits 1 after a killed run" 1
contains "and says the backup run was interrupted" "INTERRUPTED" "$(printf '%s\n' "$OUT" | grep op:backup)"
run check shop
expect_code "check does not count a temporary file under a day old" 0
VAKAP_NOW=$(( $(date +%s) + 2 * DAY )) run check shop
expect_code "a day later, check exits 1 for it" 1
contains "and says rotate removes it" "1 unfinished write, over a day old: vakap rotate removes them" "$OUT"
VAKAP_NOW=$(( $(date +%s) + 2 * DAY )) run rotate shop
expect_code "rotate exits 0" 0
check "and removes the temporary file" test ! -e "$tmp"
VAKAP_NOW=$(( $(date +%s) + 2 * DAY )) run check shop
expect_code "then check passes" 0

# ---- a full disk: the storage on a 1 MiB tmpfs
mkdir -p "$T/small"
if mount -t tmpfs -o size=1m tmpfs "$T/small" 2>/dev/null; then
	trap 'umount "$T/small" 2>/dev/null; rm -rf "$T"' EXIT
	sed -i "s#^storage = .*#storage = dir \"$T/small\"#" "$T/cfg/vakap.lua"
	site "head -c 3000000 /dev/urandom"
	run backup shop
	expect_code "a backup onto a full disk fails" 1
	contains "saying the disk is full" "No space left on device" "$OUT"
	check "it leaves no manifest and no temporary file, only the record of the run" \
		test -z "$(find "$T/small" -type f -not -path '*/_ops/*')"
	run status shop
	expect_code "status exits 1" 1
	sed -i "s#^storage = .*#storage = dir \"backups\"#" "$T/cfg/vakap.lua"
else
	not_ok "mount a 1 MiB tmpfs (needs root)"
fi

# ---- a clock far ahead, once
site "echo dump"
VAKAP_NOW=$(( $(date +%s) + 30 * DAY )) run backup shop
expect_code "a backup with the clock 30 days ahead" 0
run status shop
expect_code "status exits 1 for a backup dated in the future" 1
contains "and names it" "FUTURE" "$OUT"
run backup shop
expect_code "the next backup, on a right clock" 0
stamps=$(ls "$S/shop/db" | grep -c "^$(date -u +%Y%m%d)T.*\.json$")
check "is stamped by the clock, not after the future one" test "$stamps" = 1

# ---- a command that writes nothing
rm -rf "$S/shop"
site "true"
run backup shop
expect_code "an empty backup is refused" 1
contains "saying so, and how to allow it" "wrote nothing: an empty backup is not stored; if that is normal for 'db', set allow_empty = true" "$OUT"
check "nothing is stored" test -z "$(find "$S/shop" -name '*.sql*' 2>/dev/null)"
run status shop
expect_code "status exits 1" 1

# ---- the record of an op no longer configured: shown apart, retired by rotate
mkdir -p "$S/shop/_ops"
printf '{"ok":false,"error":"gone","time":"2026-01-01T00:00:00Z"}' > "$S/shop/_ops/oldop.failed.json"
site "echo dump"
run backup shop
run status shop
expect_code "a failed run of an op no longer configured does not fail status" 0
contains "it is shown apart" "FAILED (not configured)" "$(printf '%s\n' "$OUT" | grep op:oldop)"
run rotate shop
contains "rotate retires its record" "retired the records of ops no longer configured: oldop" "$OUT"
check "which is gone" test ! -e "$S/shop/_ops/oldop.failed.json"

# ---- a secret in vakap's environment never reaches a command it starts
rm -rf "$S/shop"
site "env"
AWS_SECRET_ACCESS_KEY=never-$RANDOM-inherited AWS_SESSION_TOKEN=token-never-inherited \
	DB_PASSWORD=never-either HOOK_API_TOKEN=nor-this run backup shop
expect_code "a backup of a command's environment" 0
envout=$(cat "$S"/shop/db/*.sql)
contains "the command ran" "PATH=" "$envout"
lacks "it did not get AWS_SECRET_ACCESS_KEY" "AWS_SECRET_ACCESS_KEY" "$envout"
lacks "nor AWS_SESSION_TOKEN" "AWS_SESSION_TOKEN" "$envout"
lacks "nor a variable named like a password" "DB_PASSWORD" "$envout"
lacks "nor one named like a token" "HOOK_API_TOKEN" "$envout"

finish

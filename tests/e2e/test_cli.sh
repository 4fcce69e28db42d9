#!/bin/bash
# The command line: usage and configuration errors (exit 2, file and
# line), --help, list, check, dry runs, and status exit codes for fresh,
# stale, missing and unreadable storage.
. "$(dirname "$0")/lib.sh"

mkdir -p "$T/data"
printf 'hello\n' > "$T/data/f"
cat > "$T/cfg/vakap.lua" <<LUA
storage = dir "$T/store"
stale_after = "2h"
LUA
cat > "$T/cfg/sites.d/a.lua" <<LUA
site "alpha" {
  host = "local", tags = { "prod" },
  files { path = "$T/data" },
}
site "beta" {
  host = "local",
  command { name = "dump", run = { "echo", "beta" }, ext = "sql" },
}
LUA

run --help
expect_code "--help exits 0" 0
contains "--help lists the commands" "backup" "$OUT"
for c in list run backup status ops check; do
	run $c --help
	expect_code "$c --help exits 0" 0
done
run frobnicate
expect_code "an unknown command exits 2" 2
run backup --bogus
expect_code "an unknown option exits 2" 2
contains "usage errors start with vakap:" "vakap: " "$ERR"

run list
expect_code "list exits 0" 0
contains "list shows host, tags and components" "alpha                local                    prod                 files" "$OUT"
run --json list host:local -x beta
check "list --json with filters" test "$(printf '%s' "$OUT" | json_get - '[s["name"] for s in d["sites"]]')" = "['alpha']"

run -n backup
expect_code "backup -n exits 0" 0
contains "backup -n names what it would back up" "would back up files: $T/data" "$OUT"
check "backup -n writes nothing" test ! -e "$T/store"

run status
expect_code "status with no storage yet cannot tell: exit 2" 2
contains "status says why it cannot tell" "does not exist" "$OUT"

run check
expect_code "check passes on a good setup" 0
contains "check reports the storage writable" "writable" "$OUT"
contains "check reports each component" "alpha                files          ok" "$OUT"

now=$(date +%s)
VAKAP_NOW=$((now - 4 * 3600)) run backup
expect_code "a backup four hours ago" 0
run status
expect_code "status exits 1 when backups are stale" 1
contains "status marks them stale" "STALE" "$OUT"
run status --stale-after 5h
expect_code "--stale-after overrides the config" 0
run backup beta
run status beta
expect_code "status of a fresh site exits 0" 0
contains "status shows the age" "ok       " "$OUT"

# configuration errors: exit 2, file and line, nothing run
cat > "$T/cfg/sites.d/b.lua" <<'LUA'
site "gamma" {
  host = "local",
  files { pth = "/srv" },
}
LUA
run backup
expect_code "an unknown option is a configuration error" 2
contains "the error names file and line and suggests" "sites.d/b.lua:3: files: unknown option 'pth' (did you mean 'path'?)" "$ERR"
cat > "$T/cfg/sites.d/b.lua" <<'LUA'
site "alpha" { host = "local" }
LUA
run list
expect_code "a duplicate site is a configuration error" 2
contains "both places are named" "sites.d/b.lua:1: site 'alpha' is already defined at sites.d/a.lua:1" "$ERR"
printf 'site "x" {\n  host = "local",\n  mysqll { },\n}\n' > "$T/cfg/sites.d/b.lua"
run list
contains "an unknown component names file and line" "sites.d/b.lua:3: unknown name 'mysqll'" "$ERR"
printf 'site "x" { host = "local" ' > "$T/cfg/sites.d/b.lua"
run list
expect_code "a syntax error exits 2" 2
contains "a syntax error names the file" "sites.d/b.lua:1:" "$ERR"
rm "$T/cfg/sites.d/b.lua"
printf 'storag = dir "/x"\n' >> "$T/cfg/vakap.lua"
run list
contains "an unknown setting names file and line" "vakap.lua:3: unknown setting 'storag' (did you mean 'storage'?)" "$ERR"
lacks "no traceback without -v" "stack traceback" "$ERR"
run -v list
contains "-v adds the traceback" "stack traceback" "$ERR"

run -c "$T/nope.lua" list
expect_code "a missing -c file exits 2" 2
contains "a missing -c file is named" "nope.lua" "$ERR"

# unreadable storage: status cannot tell
cat > "$T/cfg/vakap.lua" <<LUA
storage = dir "$T/data/f/not-a-dir"
LUA
run status
expect_code "status on unusable storage exits 2" 2
run check
expect_code "check on unusable storage exits 1" 1

finish

#!/bin/bash
# An interrupted run (SIGTERM, Ctrl-C) leaves nothing that looks complete:
# no manifest, no object, no temporary file; and live progress is shown on
# a terminal, never when output is not one.
. "$(dirname "$0")/lib.sh"

cat > "$T/cfg/vakap.lua" <<LUA
storage = dir "$T/store"
LUA
cat > "$T/cfg/sites.d/s.lua" <<'LUA'
site "slow" {
  host = "local",
  command { run = { "sh", "-c", "head -c 20000000 /dev/urandom; sleep 30; echo never" } },
}
site "quick" {
  host = "local",
  command { run = { "echo", "quick" } },
}
LUA

(cd "$T/cfg" && exec "$VAKAP" backup > "$T/out" 2> "$T/err") &
pid=$!
# wait (bounded) until the slow site has started writing
for _ in $(seq 1 100); do
	[ -n "$(find "$T/store/slow" -name '.tmp-*' 2>/dev/null)" ] && break
	sleep 0.1
done
check "the slow backup is in flight" test -n "$(find "$T/store/slow" -name '.tmp-*' 2>/dev/null)"
kill -TERM $pid
RC=0
timeout 20 tail --pid=$pid -f /dev/null || RC=timeout
wait $pid || RC=$?
check "vakap stops within the bound after SIGTERM" test "$RC" != timeout
check "an interrupted run exits 130" test "$RC" = 130
check "the interrupted site is reported" grep -q '^slow .*interrupted' "$T/out"
check "no manifest for the interrupted component" test -z "$(find "$T/store/slow" -name '*.json' -not -path '*/_ops/*')"
check "no data object and no temporary file" test -z "$(find "$T/store/slow/command" -type f 2>/dev/null)"
check "no stray process is left" test -z "$(pgrep -f 'sleep 30; echo never')"

# progress: on a terminal (script gives one), and not in a pipe
sed -i 's/sleep 30; echo never/sleep 1/' "$T/cfg/sites.d/s.lua"
(cd "$T/cfg" && script -qec "$VAKAP backup" /dev/null) > "$T/tty" 2>&1
check "a terminal shows live progress" grep -q 'backup: [0-9]*/2 done' "$T/tty"
run backup
lacks "a pipe shows no progress" "done," "$OUT$ERR"
run --json backup
lacks "--json shows no progress" "done," "$ERR"

finish

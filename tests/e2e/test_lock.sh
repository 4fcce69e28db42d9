#!/bin/bash
# One run at a time per site: a second backup of a site being backed up
# fails at once naming the holder, or waits with --wait; the first is not
# disturbed; a holder killed with SIGKILL holds nothing; status takes no
# lock.
. "$(dirname "$0")/lib.sh"

cat > "$T/cfg/vakap.lua" <<LUA
storage = dir "backups"
lock_dir = "locks"
LUA
cat > "$T/cfg/sites.d/s.lua" <<LUA
site "slow" {
  host = "local",
  command { run = { "sh", "-c", "echo start; sleep 3; echo end" }, ext = "txt" },
}
site "other" {
  host = "local",
  command { run = { "echo", "other" }, ext = "txt" },
}
LUA

start_slow() {
	(cd "$T/cfg" && exec "$VAKAP" backup slow) > "$T/first.out" 2>&1 &
	first=$!
	for _ in $(seq 1 50); do
		[ -n "$(ls "$T/cfg/locks" 2>/dev/null)" ] && break
		sleep 0.1
	done
	sleep 0.3
}

start_slow
run backup
expect_code "a second backup while the first runs exits 1" 1
contains "it says another run holds the site, and who" "another vakap run is working on this site" "$OUT"
contains "naming its process" "(pid " "$OUT"
contains "the other site is backed up meanwhile" "1 ok, 1 failed (slow)" "$OUT"
run status
contains "status takes no lock: it answers while the site is held" "slow" "$OUT"
RC=0
wait "$first" || RC=$?
check "the first backup finishes undisturbed" test "$RC" = 0
check "and stored its backup" test "$(ls "$T/cfg/backups/slow/command/" | grep -c json)" = 1

start_slow
run --wait 20s backup slow
expect_code "with --wait, the second waits for the first and succeeds" 0
wait "$first"
check "both are stored" test "$(ls "$T/cfg/backups/slow/command/" | grep -c json)" = 3

start_slow
kill -KILL "$first"
{ wait "$first"; } 2>/dev/null
sleep 0.5 # its worker follows it (PDEATHSIG); the command's sh never had the lock
run backup slow
expect_code "a holder killed with SIGKILL holds nothing: the next run works" 0

finish

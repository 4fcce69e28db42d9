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

# A lock directory another local user could have planted, as /tmp allows:
# vakap refuses it, and never writes through a link.
printf 'precious\n' > "$T/victim"
rm -rf "$T/cfg/locks"
mkdir "$T/elsewhere"
ln -s "$T/elsewhere" "$T/cfg/locks"
run backup other
expect_code "a lock directory that is a link is refused" 1
contains "saying why" "locks is not a directory of its own (a link, or another file)" "$OUT"
rm "$T/cfg/locks"
mkdir -m 700 "$T/cfg/locks"
chown nobody "$T/cfg/locks"
run backup other
expect_code "a lock directory of another user is refused" 1
contains "saying whose it is" "belongs to another user" "$OUT"
chown "$(id -u)" "$T/cfg/locks"
chmod 777 "$T/cfg/locks"
run backup other
expect_code "a lock directory others may write to is refused" 1
contains "saying so" "may be written by others (mode 777)" "$OUT"
chmod 700 "$T/cfg/locks"
run backup other
expect_code "the lock directory is fine again" 0
lockfile=$(ls "$T/cfg/locks" | grep '^other-')
rm "$T/cfg/locks/$lockfile"
ln -s "$T/victim" "$T/cfg/locks/$lockfile"
run backup other
expect_code "a lock file that is a link is refused" 1
contains "saying so" "cannot open the lock" "$OUT"
check "and the file it points to is untouched" test "$(cat "$T/victim")" = precious

finish

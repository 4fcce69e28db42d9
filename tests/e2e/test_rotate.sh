#!/bin/bash
# rotate on dir storage: backups made at faked times (VAKAP_NOW), then
# exactly the survivors the policy names; -n and --explain change nothing;
# a data object left without a manifest is removed once a day old; an
# empty policy is refused when the configuration loads.
. "$(dirname "$0")/lib.sh"

cat > "$T/cfg/vakap.lua" <<LUA
storage = dir "backups"
retention = { daily = 3, weekly = 2 }
LUA
cat > "$T/cfg/sites.d/s.lua" <<LUA
site "shop" {
  host = "local",
  command { name = "db", run = { "printf", "dump" }, ext = "sql" },
  command { name = "logs", run = { "printf", "log" }, ext = "txt", retention = { last = 1 } },
}
LUA

# one backup a day at 02:00 from Monday 2026-11-02 to Saturday 2026-11-21,
# and a second one on the 21st
for day in 02 03 04 05 06 07 08 09 10 11 12 13 14 15 16 17 18 19 20 21; do
	VAKAP_NOW=$(date -u -d "2026-11-${day}T02:00:00Z" +%s) run -q backup
	[ "$RC" = 0 ] || not_ok "backup on 2026-11-$day" "$OUT $ERR"
done
VAKAP_NOW=$(date -u -d "2026-11-21T14:00:00Z" +%s) run -q backup
B=$T/cfg/backups
check "21 backups of db to begin with" test "$(ls "$B"/shop/db/*.json | wc -l)" = 21

# a failed run's data object, two days old, and a fresh one
printf 'partial' > "$B/shop/db/20261101T020000Z.sql.zst"
touch -d "2026-11-01T02:00:00Z" "$B/shop/db/20261101T020000Z.sql.zst"
printf 'partial' > "$B/shop/db/20261121T150000Z.sql.zst"
export VAKAP_NOW=$(date -u -d "2026-11-21T16:00:00Z" +%s)
touch -d "@$VAKAP_NOW" "$B/shop/db/20261121T150000Z.sql.zst"

before=$(cd "$B" && find . -type f | sort)
run rotate -n --explain
expect_code "rotate -n exits 0" 0
contains "-n says what would go" "shop                 db             keep 4, would forget 17, 1 leftover data objects" "$OUT"
contains "--explain gives the rules that keep a backup" "20261121T140000Z  keep    daily, weekly" "$OUT"
contains "--explain names what no rule keeps" "20261121T020000Z  forget  no rule keeps it" "$OUT"
contains "--explain names the leftover data" "shop/db/20261101T020000Z.sql.zst  remove" "$OUT"
check "rotate -n deletes nothing" test "$(cd "$B" && find . -type f | sort)" = "$before"

run rotate
expect_code "rotate exits 0" 0
contains "rotate says what went" "keep 4, forgot 17, 1 leftover data objects" "$OUT"
left=$(cd "$B/shop/db" && ls | tr '\n' ' ')
# daily 3: the 21st (14:00), 20th, 19th; weekly 2: W47 (the 21st) and W46 (Sunday the 15th)
check "exactly the survivors the policy names" test "$left" = "20261115T020000Z.json 20261115T020000Z.sql.zst 20261119T020000Z.json 20261119T020000Z.sql.zst 20261120T020000Z.json 20261120T020000Z.sql.zst 20261121T140000Z.json 20261121T140000Z.sql.zst 20261121T150000Z.sql.zst "
check "a component's own policy wins: logs keeps its last" \
	test "$(cd "$B/shop/logs" && ls | tr '\n' ' ')" = "20261121T140000Z.json 20261121T140000Z.txt.zst "
run status shop
expect_code "status is still fresh after rotate" 0

cat > "$T/cfg/vakap.lua" <<LUA
storage = dir "backups"
retention = { daily = 0 }
LUA
run rotate
expect_code "an empty policy is a configuration error" 2
contains "and says so at its line" "vakap.lua:2: setting 'retention': the retention policy keeps nothing" "$ERR"
cat > "$T/cfg/vakap.lua" <<LUA
storage = dir "backups"
retention = { dayly = 3 }
LUA
run rotate
contains "a misspelt rule is named" "unknown option 'dayly' (did you mean 'daily'?)" "$ERR"
cat > "$T/cfg/vakap.lua" <<LUA
storage = dir "backups"
LUA
run rotate
expect_code "no policy at all fails the site" 1
contains "and says where to set one" "no retention policy" "$OUT"
check "and deletes nothing" test -f "$B/shop/db/20261121T140000Z.json"

finish

#!/bin/bash
# Back up an inventory on this machine into dir storage, then check with
# standard tools alone (zstd, tar, sha256sum) that what was stored is what
# was there; a failing command fails its site only, and leaves nothing.
. "$(dirname "$0")/lib.sh"

W=$T/www/acme
mkdir -p "$W/a/b/c" "$W/with space" "$W/ñandú" "$W/cache/deep" "$T/elsewhere/sub"
printf 'deep\n' > "$W/a/b/c/deep.txt"
printf 'spaced\n' > "$W/with space/file name.txt"
printf 'non-ascii\n' > "$W/ñandú/café ☕.txt"
: > "$W/empty.txt"
printf 'log\n' > "$W/debug.log"
printf 'log\n' > "$W/a/b/trace.log"
printf 'cached\n' > "$W/cache/deep/page.html"
printf 'linked\n' > "$T/elsewhere/sub/inside.txt"
ln -s "$T/elsewhere" "$W/linked"
head -c 3000000 /dev/urandom > "$W/a/random.bin"

cat > "$T/cfg/vakap.lua" <<LUA
storage = dir "backups"
jobs = 3
LUA
cat > "$T/cfg/sites.d/inventory.lua" <<LUA
site "acme" {
  host = "local", tags = { "web" },
  files { path = "$W", exclude = { "*.log", "cache/" } },
  command { name = "db", run = { "sh", "-c", "printf 'line1\\\\nline2\\\\n'" }, ext = "sql" },
}
site "broken" {
  host = "local",
  command { run = { "sh", "-c", "head -c 300000 /dev/urandom; echo 'dump failed: disk on fire' >&2; exit 7" } },
}
site "other" {
  host = "local",
  command { run = { "printf", "%s", "other data" }, ext = "txt" },
}
LUA

run backup
expect_code "backup exits 1 when a site failed" 1
contains "the failure names the command and its status" "exited with status 7" "$OUT"
contains "the failure shows the command's stderr" "disk on fire" "$OUT"
contains "the summary names the failed site" "1 failed (broken)" "$OUT"

B=$T/cfg/backups
tarobj=$(ls "$B"/acme/files/*.tar.zst 2>/dev/null | head -1)
check "the files component is stored as .tar.zst" test -f "$tarobj"
manifest=${tarobj%.tar.zst}.json
check "its manifest exists" test -f "$manifest"

zstd -dc "$tarobj" > "$T/files.tar"
names=$(tar -tf "$T/files.tar" | sort)
contains "tar lists nested files" "a/b/c/deep.txt" "$names"
contains "tar lists names with spaces" "with space/file name.txt" "$names"
contains "tar lists non-ASCII names" "ñandú/café ☕.txt" "$names"
contains "tar lists the empty file" "empty.txt" "$names"
contains "a symlinked directory is followed" "linked/sub/inside.txt" "$names"
lacks "*.log is excluded at the top" "debug.log" "$names"
lacks "*.log is excluded at any depth" "trace.log" "$names"
lacks "cache/ is excluded with its contents" "page.html" "$names"
lacks "no absolute paths" "$W" "$names"

mkdir "$T/extract"
tar -xf "$T/files.tar" -C "$T/extract"
check "the extracted tree equals the source" diff -r -x '*.log' -x cache "$W" "$T/extract"
check "the empty file is empty" test -f "$T/extract/empty.txt" -a ! -s "$T/extract/empty.txt"

sum=$(sha256sum "$tarobj" | cut -d' ' -f1)
check "the manifest's sha256 is the stored object's" test "$(json_get "$manifest" 'd["sha256"]')" = "$sum"
check "the manifest's size is the stored object's" \
	test "$(json_get "$manifest" 'd["size"]')" = "$(stat -c %s "$tarobj")"
check "the manifest records the compression" test "$(json_get "$manifest" 'd["compression"]')" = zstd
check "the manifest records the options" test "$(json_get "$manifest" 'd["options"]["exclude"][1]')" = "cache/"

sqlobj=$(ls "$B"/acme/db/*.sql.zst | head -1)
check "the command's output is stored byte for byte" \
	test "$(zstd -dc "$sqlobj" | od -c)" = "$(printf 'line1\nline2\n' | od -c)"
check "the command's exit status is in the manifest" \
	test "$(json_get "${sqlobj%.sql.zst}.json" 'd["source"]["exit_status"]')" = 0

check "the other site succeeded" test "$(zstd -dc "$B"/other/command/*.txt.zst)" = "other data"
check "the failed component has no manifest" test -z "$(ls "$B"/broken/command/*.json 2>/dev/null)"
check "the failed component left no data, partial or temporary" \
	test -z "$(ls -A "$B/broken/command" 2>/dev/null)"
check "no temporary file is left anywhere" test -z "$(find "$B" -name '.tmp-*')"

run status
expect_code "status exits 1 when a backup is missing" 1
contains "status shows the missing component" "MISSING" "$(printf '%s\n' "$OUT" | grep '^broken')"
contains "status shows the good ones" "ok" "$(printf '%s\n' "$OUT" | grep '^acme  *files')"
contains "status shows the failed run of backup" "FAILED" "$(printf '%s\n' "$OUT" | grep '^broken  *op:backup')"

run --json status acme other
expect_code "status of fresh sites exits 0" 0
printf '%s' "$OUT" > "$T/status.json"
check "status --json is one JSON document" json_get "$T/status.json" 'd["ok"]'
check "status --json has the size" \
	test "$(json_get "$T/status.json" 'd["sites"][0]["result"]["components"][0]["size"]')" = "$(stat -c %s "$tarobj")"

# a second backup a second later is a second object; both are listed
sleep 1
run backup acme
expect_code "a second backup succeeds" 0
check "two backups of the files component" test "$(ls "$B"/acme/files/*.json | wc -l)" = 2

# Two runs in one second: the second is stamped a second later, not refused.
VAKAP_NOW=1800000000 run -q backup other
VAKAP_NOW=1800000000 run -q backup other
expect_code "a second backup in the same second succeeds" 0
check "and is stamped one second later" test -f "$B/other/command/20270115T080001Z.json"


# zstd with worker threads (compress_threads; by default one per CPU, up
# to 4): 1 MiB jobs, several frames' worth of data, decompressed by zstd
# to the very bytes, with one thread and with none
python3 "$ROOT/bench/gen_dump.py" 12 > "$T/big.sql"
mkdir -p "$T/thr/sites.d"
for n in 0 3; do
	printf 'storage = dir "backups"\ncompress_threads = %s\n' "$n" > "$T/thr/vakap.lua"
	printf 'site "t%s" { host = "local", command { run = { "cat", "%s" }, ext = "sql" } }\n' "$n" "$T/big.sql" > "$T/thr/sites.d/t.lua"
	(cd "$T/thr" && "$VAKAP" -q backup > /dev/null)
	check "zstd with $n worker threads decompresses to the dump" \
		cmp "$T/big.sql" <(zstd -dc "$T"/thr/backups/t$n/command/*.sql.zst)
done
printf 'storage = dir "backups"\ncompress_threads = 99\n' > "$T/thr/vakap.lua"
(cd "$T/thr" && "$VAKAP" -q backup > "$T/thr/out" 2>&1) || true
contains "compress_threads is bounded" "compress_threads" "$(cat "$T/thr/out")"

finish

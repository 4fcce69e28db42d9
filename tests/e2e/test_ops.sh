#!/bin/bash
# Custom ops from ops.d: results collected per site, --json, the last run
# stored under _ops/ and shown by status; a site whose op raises, or whose
# worker process crashes, fails alone while the others finish.
. "$(dirname "$0")/lib.sh"
# let a SIGSEGV kill the worker as it would without ASan
export ASAN_OPTIONS=$ASAN_OPTIONS:handle_segv=0

mkdir -p "$T/root/one" "$T/root/two" "$T/root/three"
printf 'x%.0s' $(seq 1 5000) > "$T/root/two/data"
cat > "$T/cfg/vakap.lua" <<LUA
storage = dir "$T/store"
LUA
cat > "$T/cfg/sites.d/s.lua" <<LUA
for _, n in ipairs { "one", "two", "three" } do
  site(n) { host = "local", root = "$T/root/" .. n, tags = { n == "two" and "big" or "small" } }
end
site "crasher" { host = "local", root = "$T/root/one" }
site "raiser" { host = "local", root = "$T/root/one" }
LUA
cat > "$T/cfg/ops.d/du.lua" <<'LUA'
op "du" {
  description = "Disk usage of the site's root",
  run = function(site)
    if site.name == "crasher" then
      -- kill the worker process running this site, as a crash would
      site:exec("sh", "-c", "kill -SEGV $PPID; sleep 5")
    end
    if site.name == "raiser" then
      local t = nil
      return { n = t.field }
    end
    local out = site:capture({ "du", "-sb", site.root })
    return { bytes = tonumber(out:match("^(%d+)")), tags = site.tags }
  end,
}
LUA

for j in 1 4; do
	run -j $j run du
	expect_code "-j $j: a run with failed sites exits 1" 1
	contains "-j $j: a crashed worker is reported" "killed by signal 11" "$(printf '%s\n' "$OUT" | grep -A1 '^crasher')"
	contains "-j $j: a raising op is reported with file and line" "ops.d/du.lua:10:" "$(printf '%s\n' "$OUT" | grep '^raiser')"
	contains "-j $j: the others finish" "du: 5 sites, 3 ok, 2 failed" "$OUT"
done

run --json run du one two three
expect_code "a run where every site succeeds exits 0" 0
printf '%s' "$OUT" > "$T/du.json"
check "--json carries each site's result" test "$(json_get "$T/du.json" 'd["sites"][1]["result"]["bytes"] >= 5000')" = True
check "--json keeps the sites' order" test "$(json_get "$T/du.json" '[s["site"] for s in d["sites"]]')" = "['one', 'two', 'three']"
check "the last run of the op is stored under _ops" test -f "$T/store/two/_ops/du.ok.json"
check "the stored run has the result" test "$(json_get "$T/store/two/_ops/du.ok.json" 'd["result"]["bytes"] >= 5000')" = True

run status two
contains "status shows the last run of each op" "op:du" "$OUT"

run run du tag:small -x three
contains "tag: and -x select sites" "du: 1 site, 1 ok, 0 failed" "$OUT"
run run du 'c*'
contains "a glob selects sites" "du: 1 site, 0 ok, 1 failed (crasher)" "$OUT"

run -n run du one
expect_code "a dry run exits 0" 0
contains "a dry run says what it would do" "would: run du" "$OUT"

run ops
contains "ops lists built-in ops" "backup" "$OUT"
contains "ops lists the operator's ops with their file" "du             Disk usage of the site's root  [ops.d/du.lua]" "$OUT"

run run nosuch
expect_code "an unknown op is a usage error" 2
contains "an unknown op lists the known ones" "unknown op 'nosuch'; the ops are: backup, check, du, restore, rotate, snapshots, status, verify" "$ERR"

finish

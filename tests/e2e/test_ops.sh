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

# An op cannot change what the engine or other code sees: the run's ctx,
# its settings, the site's declaration and vakap are read-only, and the
# storage is reached only through the repository.
cat > "$T/cfg/ops.d/meddle.lua" <<'LUA'
op "meddle" {
  description = "Try to change what the engine sees",
  run = function(site, ctx)
    local tries = {
      settings = function() ctx.settings.jobs = 1 end,
      repository = function() ctx.repository = nil end,
      into_repository = function() ctx.repository.list = nil end,
      config = function() site.config.host = "elsewhere" end,
      tags = function() site.tags[1] = "x" end,
      vakap = function() vakap.log.warn = nil end,
      localhost = function() vakap.localhost.capture = nil end,
    }
    local out = { storage = ctx.storage == nil and "hidden" or "visible" }
    for name, try in pairs(tries) do
      local ok, err = pcall(try)
      out[name] = ok and "changed" or err
    end
    return out
  end,
}
LUA
run --json run meddle one
expect_code "an op that tries to change what the engine sees still runs" 0
printf '%s' "$OUT" > "$T/meddle.json"
r='d["sites"][0]["result"]'
check "an op does not see the raw storage" test "$(json_get "$T/meddle.json" "$r['storage']")" = hidden
contains "ctx.settings is read-only" "ctx.settings is read-only: cannot set 'jobs'" "$(json_get "$T/meddle.json" "$r['settings']")"
contains "ctx is read-only" "ctx is read-only: cannot set 'repository'" "$(json_get "$T/meddle.json" "$r['repository']")"
contains "the repository is read-only" "the repository is read-only: cannot set 'list'" "$(json_get "$T/meddle.json" "$r['into_repository']")"
contains "site.config is read-only" "site.config is read-only: cannot set 'host'" "$(json_get "$T/meddle.json" "$r['config']")"
contains "site.tags is read-only" "site.tags is read-only: cannot set '1'" "$(json_get "$T/meddle.json" "$r['tags']")"
contains "vakap is read-only at run time too" "vakap.log is read-only: cannot set 'warn'" "$(json_get "$T/meddle.json" "$r['vakap']")"
contains "vakap.localhost is read-only" "vakap.localhost is read-only: cannot set 'capture'" "$(json_get "$T/meddle.json" "$r['localhost']")"
check "the run is recorded under the declared site" test -f "$T/store/one/_ops/meddle.ok.json"

finish

#!/bin/sh
# Encryption throughput: vakap's gpg filter (gpgme driving gpg) against
# plain `gpg --encrypt --compress-algo none` on the same data in the same
# run: the raw 256 MiB dump alone, then zstd -3 before encryption.
# Prints a table and writes bench/results/gpg.json.
# gpgme starts gpg detached, so vakap's CPU column does not include gpg's.
set -eu
cd "$(dirname "$0")"
VAKAP=$(cd .. && pwd)/build/vakap
W=$(mktemp -d /tmp/vakap-bench.XXXXXX)
trap 'gpgconf --homedir "$W/k/gnupg" --kill all 2>/dev/null; rm -rf "$W"' EXIT
MIB=${BENCH_MIB:-256}

sh ../tests/support/gpgkeys.sh "$W/k" >/dev/null 2>&1
G=$W/k/gnupg
python3 gen_dump.py "$MIB" > "$W/dump.sql"
mkdir -p "$W/cfg/sites.d" results
cat > "$W/cfg/vakap.lua" <<LUA
storage = dir "$W/store"
compress = "zstd:3"
encrypt = gpg { recipients = { "alice@test.invalid" }, homedir = "$G" }
LUA
cat > "$W/cfg/sites.d/s.lua" <<LUA
site "raw" { host = "local", command { run = { "cat", "$W/dump.sql" }, ext = "sql", compressed = true } }
site "zstd" { host = "local", command { run = { "cat", "$W/dump.sql" }, ext = "sql" } }
LUA
cat "$W/dump.sql" > /dev/null # warm the page cache
GPG="gpg --homedir $G --batch --quiet --trust-model always -r alice@test.invalid --compress-algo none --encrypt"

: > "$W/results"
python3 measure.py "vakap: gpg" -- "cd $W/cfg && $VAKAP -q backup raw > /dev/null" >> "$W/results"
python3 measure.py "gpg --encrypt --compress-algo none" -- "$GPG < $W/dump.sql > $W/plain.gpg" >> "$W/results"
python3 measure.py "vakap: zstd -3 | gpg" -- "cd $W/cfg && $VAKAP -q backup zstd > /dev/null" >> "$W/results"
python3 measure.py "zstd -3 | gpg --compress-algo none" -- "zstd -q -3 -T1 < $W/dump.sql | $GPG > $W/plain.zst.gpg" >> "$W/results"

python3 - "$W/results" "$MIB" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
mib = int(sys.argv[2])
print("%-40s %8s %8s %10s %12s" % ("run", "wall s", "cpu s", "MB/s in", "peak RSS MiB"))
for r in rows:
    r["mb_per_s"] = round(mib * 1.048576 / r["wall_s"], 1)
    print("%-40s %8.2f %8.2f %10.1f %12.1f" % (r["label"], r["wall_s"], r["cpu_s"], r["mb_per_s"], r["peak_rss_mib"]))
raw = rows[1]["wall_s"] / rows[0]["wall_s"]
zst = rows[3]["wall_s"] / rows[2]["wall_s"]
print("vakap / gpg, raw: %.2fx; with zstd first: %.2fx" % (raw, zst))
json.dump({"mib": mib, "rows": rows, "ratio_raw": round(raw, 3), "ratio_zstd": round(zst, 3)},
          open("results/gpg.json", "w"), indent=1)
PY

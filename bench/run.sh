#!/bin/sh
# make bench: vakap's local pipeline (command -> zstd -> sha256 -> dir
# storage) against the same work done by a shell pipeline, on the same
# data in the same run; and vakap's peak RSS at two dump sizes.
# Prints a table and writes bench/results/local.json.
set -eu
cd "$(dirname "$0")"
VAKAP=$(cd .. && pwd)/build/vakap
W=$(mktemp -d /tmp/vakap-bench.XXXXXX)
trap 'rm -rf "$W"' EXIT
MIB=${BENCH_MIB:-256}
BIG=${BENCH_BIG_MIB:-1024}

python3 gen_dump.py "$MIB" > "$W/dump.sql"
mkdir -p "$W/cfg/sites.d" results
cat > "$W/cfg/vakap.lua" <<LUA
storage = dir "$W/store"
compress = "zstd:3"
LUA
cat > "$W/cfg/sites.d/s.lua" <<LUA
site "file" { host = "local", command { run = { "cat", "$W/dump.sql" }, ext = "sql" } }
site "big" { host = "local", command { run = { "sh", "-c", "python3 $(pwd)/gen_dump.py $BIG" }, ext = "sql" } }
site "small" { host = "local", command { run = { "sh", "-c", "python3 $(pwd)/gen_dump.py $MIB" }, ext = "sql" } }
LUA
cat "$W/dump.sql" > /dev/null # warm the page cache

: > "$W/results"
python3 measure.py "vakap ${MIB} MiB" -- "cd $W/cfg && $VAKAP -q backup file > /dev/null" >> "$W/results"
python3 measure.py "cat | zstd -3 | tee file | sha256sum" -- \
	"cat $W/dump.sql | zstd -q -3 -T1 | tee $W/pipe.zst | sha256sum > /dev/null" >> "$W/results"
python3 measure.py "vakap RSS, ${MIB} MiB generated" -- "cd $W/cfg && $VAKAP -q backup small > /dev/null" >> "$W/results"
python3 measure.py "vakap RSS, ${BIG} MiB generated" -- "cd $W/cfg && $VAKAP -q backup big > /dev/null" >> "$W/results"

python3 - "$W/results" "$MIB" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
mib = int(sys.argv[2])
print("%-40s %8s %8s %10s %12s" % ("run", "wall s", "cpu s", "MB/s in", "peak RSS MiB"))
for r in rows:
    mbs = mib * 1.048576 / r["wall_s"] if "RSS" not in r["label"] else 0
    r["mb_per_s"] = round(mbs, 1)
    print("%-40s %8.2f %8.2f %10s %12.1f" % (r["label"], r["wall_s"], r["cpu_s"],
          "%.1f" % mbs if mbs else "-", r["peak_rss_mib"]))
ratio = rows[1]["wall_s"] / rows[0]["wall_s"]
print("vakap / shell pipeline throughput: %.2fx" % ratio)
json.dump({"rows": rows, "ratio_vs_pipeline": round(ratio, 3)}, open("results/local.json", "w"), indent=1)
PY

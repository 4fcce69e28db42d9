#!/bin/sh
# The s3 primitive against the AWS CLI, on the same moto server in the same
# run: a 256 MiB stream stored (vakap's c:put, multipart, one part at a
# time; `aws s3 cp -`, which sends its parts 10 at a time) and read back
# (c:get into a file; `aws s3 cp s3://... -`).  Wall time, CPU time and
# peak RSS of each; prints a table and writes bench/results/s3.json.
# moto keeps objects in memory and is likely the slowest party: these
# figures compare the clients, not what S3 itself would give.
set -eu
cd "$(dirname "$0")"
ROOT=$(cd .. && pwd)
MIB=${BENCH_MIB:-256}
W=$(mktemp -d /tmp/vakap-bench-s3.XXXXXX)
trap 'python3 "$ROOT/tests/support/moto_s3.py" stop "$W/moto"; rm -rf "$W"' EXIT
mkdir -p results

python3 "$ROOT/tests/support/moto_s3.py" start "$W/moto" --bucket bench > "$W/moto.env"
EP=$(sed -n 's/^endpoint=//p' "$W/moto.env")
head -c "$((MIB * 1024 * 1024))" /dev/urandom > "$W/data"
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_DEFAULT_REGION=us-east-1
AWS="aws --endpoint-url $EP"

: > "$W/results"
python3 measure.py "vakap put ${MIB} MiB" -- \
	"lua5.4 $ROOT/bench/s3.lua put $EP bench vakap.bin $W/data 2> $W/vakap-put.json" >> "$W/results"
python3 measure.py "aws s3 cp - (put ${MIB} MiB)" -- \
	"cat $W/data | $AWS s3 cp - s3://bench/aws.bin" >> "$W/results"
python3 measure.py "vakap get ${MIB} MiB" -- \
	"lua5.4 $ROOT/bench/s3.lua get $EP bench vakap.bin $W/vakap.out 2> $W/vakap-get.json" >> "$W/results"
python3 measure.py "aws s3 cp s3://... - (get ${MIB} MiB)" -- \
	"$AWS s3 cp s3://bench/aws.bin - > $W/aws.out" >> "$W/results"
cmp "$W/data" "$W/vakap.out"
cmp "$W/data" "$W/aws.out"

python3 - "$W" "$MIB" <<'PY'
import json, sys
w, mib = sys.argv[1], int(sys.argv[2])
rows = [json.loads(l) for l in open(w + "/results")]
reqs = {"put": json.load(open(w + "/vakap-put.json")),
        "get": json.load(open(w + "/vakap-get.json"))}
print("%-34s %8s %8s %9s %13s" % ("run", "wall s", "cpu s", "MiB/s", "peak RSS MiB"))
for r in rows:
    r["mib_per_s"] = round(mib / r["wall_s"], 1)
    print("%-34s %8.2f %8.2f %9.1f %13.1f" % (r["label"], r["wall_s"], r["cpu_s"],
          r["mib_per_s"], r["peak_rss_mib"]))
print("vakap requests: put %d, get %d" % (reqs["put"]["requests"], reqs["get"]["requests"]))
json.dump({"mib": mib, "rows": rows, "vakap_requests": reqs}, open("results/s3.json", "w"), indent=1)
PY

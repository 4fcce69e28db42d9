#!/usr/bin/env python3
"""report.py RESULTS MIB NSITES SCALE_SITES PER_SITE: bench/suite.sh's
measurements (JSON lines) into a table on stdout, bench/results/bench.json
and two PNG plots (gnuplot): throughput against -j, RSS against size."""
import json
import os
import subprocess
import sys

measured = [json.loads(line) for line in open(sys.argv[1])]
mib, nsites, ssites, per = (int(x) for x in sys.argv[2:6])
here = os.path.dirname(os.path.abspath(__file__))
res = os.path.join(here, "results")


def median_runs(measured):
    """One row per label: a label measured more than once (the pipeline
    rounds) is its median run by wall time, with every run's wall time."""
    runs = {}
    for r in measured:
        runs.setdefault(r["label"], []).append(r)
    rows = []
    for label, rs in runs.items():
        if len(rs) == 1:
            rows.append(rs[0])
            continue
        walls = [r["wall_s"] for r in rs]
        ranked = sorted(rs, key=lambda r: r["wall_s"])
        r = dict(ranked[(len(ranked) - 1) // 2])
        r["runs_wall_s"] = walls
        rows.append(r)
    return rows


rows = median_runs(measured)
by = {r["label"]: r for r in rows}
MB = 1.048576  # MB per MiB

print("%-48s %7s %7s %8s %6s %9s %8s" % ("run", "wall s", "cpu s", "mach cpu", "steal", "MB/s in", "RSS MiB"))
for r in rows:
    if "wall_s" not in r:
        continue
    if r["label"].startswith("pipeline"):
        r["mb_per_s"] = round(mib * MB / r["wall_s"], 1)
    elif r["label"].startswith("memory"):
        size = int(r["label"].split()[-2])
        r["mib"] = size
        r["mb_per_s"] = round(size * MB / r["wall_s"], 1)
    elif r["label"].startswith("sites"):
        r["jobs"] = int(r["label"].split()[-1])
        r["s_per_site"] = round(r["wall_s"] / nsites, 4)
        r["sites_per_s"] = round(nsites / r["wall_s"], 2)
    print("%-48s %7.2f %7.2f %8.2f %6.2f %9s %8.1f%s" % (
        r["label"], r["wall_s"], r["cpu_s"], r.get("machine_cpu_s", 0), r.get("steal_s", 0),
        r.get("mb_per_s", "-"), r["peak_rss_mib"],
        "  (median of %s)" % " ".join("%.2f" % w for w in r["runs_wall_s"])
        if "runs_wall_s" in r else ""))

summary = {}
v = by.get("pipeline: vakap")
sh = by.get("pipeline: ssh | zstd -3 -T2 | gpg | aws s3 cp -")
orig = by.get("pipeline: temp file, gzip, gpg, aws s3 cp")
if v and sh and orig:
    summary["vakap_vs_zstd_pipeline"] = round(sh["wall_s"] / v["wall_s"], 2)
    summary["vakap_vs_temp_file"] = round(orig["wall_s"] / v["wall_s"], 2)
mem = [r for r in rows if r["label"].startswith("memory")]
summary["peak_rss_mib"] = {str(r["mib"]): r["peak_rss_mib"] for r in mem}
sites = [r for r in rows if r["label"].startswith("sites")]
summary["sites"] = {str(r["jobs"]): {"wall_s": r["wall_s"], "s_per_site": r["s_per_site"]} for r in sites}
for what in ("status", "rotate -n"):
    t, q = by.get("scale: " + what), by.get("requests: " + what)
    if t and q:
        summary[what] = {"wall_s": t["wall_s"], "requests": q["requests"]}

print()
print("targets (issue 7):")
if "vakap_vs_zstd_pipeline" in summary:
    print("  throughput vs ssh|zstd -T2|gpg|aws: %.2fx (target >= 1.3x)" % summary["vakap_vs_zstd_pipeline"])
    print("  throughput vs temp-file way:        %.2fx (target >= 4x)" % summary["vakap_vs_temp_file"])
for k, rss in summary["peak_rss_mib"].items():
    print("  peak RSS, %s MiB dump: %.1f MiB (target <= 64)" % (k, rss))
for j, s in summary["sites"].items():
    print("  %d sites -j %s: %.1f s, %.3f s per site" % (nsites, j, s["wall_s"], s["s_per_site"]))
for what in ("status", "rotate -n"):
    if what in summary:
        q = summary[what]["requests"]
        print("  %s over %d backups of %d sites: %.2f s, %d S3 requests (%s)" % (
            what, ssites * per, ssites, summary[what]["wall_s"], q["total"],
            ", ".join("%s %d" % (k, n) for k, n in sorted(q.items()) if k != "total")))

json.dump({"mib": mib, "sites": nsites, "scale_sites": ssites, "scale_backups": ssites * per,
           "rows": rows, "runs": measured, "summary": summary}, open(os.path.join(res, "bench.json"), "w"), indent=1)

# the plots
dat = os.path.join(res, "bench.dat")
with open(dat, "w") as fh:
    fh.write("# jobs sites_per_s\n")
    for r in sites:
        fh.write("%d %.3f\n" % (r["jobs"], r["sites_per_s"]))
    fh.write("\n\n# dump_mib rss_mib\n")
    for r in mem:
        fh.write("%d %.1f\n" % (r["mib"], r["peak_rss_mib"]))
gp = """set terminal pngcairo size 1000,420 font ",10"
set output '%(res)s/bench.png'
set multiplot layout 1,2
set title 'Many sites (%(n)d over SSH): throughput against -j'
set xlabel 'jobs (-j)'; set ylabel 'sites per second'; set logscale x 2
set xrange [0.8:20]; set yrange [0:*]; set grid; set key bottom right
plot '%(dat)s' index 0 using 1:2 with linespoints pt 7 title 'vakap backup'
unset logscale x
set title 'Peak RSS against dump size (ssh -> zstd -> gpg -> S3)'
set xlabel 'dump (MiB)'; set ylabel 'peak RSS (MiB)'; set xrange [0:*]; set yrange [0:80]
plot '%(dat)s' index 1 using 1:2 with linespoints pt 7 title 'vakap', 64 with lines dt 2 title 'target 64 MiB'
unset multiplot
""" % {"res": res, "dat": dat, "n": nsites}
try:
    subprocess.run(["gnuplot"], input=gp.encode(), check=True)
    print("\nplots: %s/bench.png; JSON: %s/bench.json" % (res, res))
except (OSError, subprocess.CalledProcessError) as e:
    print("\nno plot (%s); JSON: %s/bench.json" % (e, res))

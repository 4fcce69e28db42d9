#!/usr/bin/env python3
"""measure.py LABEL -- COMMAND...: run COMMAND (through sh if one string),
print one JSON line: wall seconds, CPU seconds (user+sys of it and its
children), the peak RSS (MiB) of the largest process it ran, and the CPU
seconds the whole machine spent meanwhile (busy time from /proc/stat:
counts what RUSAGE_CHILDREN misses, as gpg started detached by gpgme, and
the loopback sshd and S3 server; anything else running counts too), and
the CPU seconds the hypervisor stole meanwhile (a busy neighbour: a run
with much steal is slower for reasons of its own)."""
import json
import os
import resource
import subprocess
import sys
import time


def busy():
    """The machine's busy CPU seconds so far, and those the hypervisor
    took from it (steal: time this VM wanted to run and could not)."""
    with open("/proc/stat") as fh:
        f = [int(x) for x in fh.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal
    tick = os.sysconf("SC_CLK_TCK")
    return (f[0] + f[1] + f[2] + f[5] + f[6]) / tick, f[7] / tick


label = sys.argv[1]
cmd = sys.argv[3:]
shell = len(cmd) == 1
b0, s0 = busy()
t0 = time.monotonic()
rc = subprocess.call(cmd[0] if shell else cmd, shell=shell)
wall = time.monotonic() - t0
b1, s1 = busy()
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"label": label, "rc": rc, "wall_s": round(wall, 3),
                  "cpu_s": round(ru.ru_utime + ru.ru_stime, 3),
                  "machine_cpu_s": round(b1 - b0, 2),
                  "steal_s": round(s1 - s0, 2),
                  "peak_rss_mib": round(ru.ru_maxrss / 1024, 1)}))
sys.exit(rc)

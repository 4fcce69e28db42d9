#!/usr/bin/env python3
"""measure.py LABEL -- COMMAND...: run COMMAND (through sh if one string),
print one JSON line: wall seconds, CPU seconds (user+sys of it and its
children), and the peak RSS (MiB) of the largest process it ran."""
import json
import resource
import subprocess
import sys
import time

label = sys.argv[1]
cmd = sys.argv[3:]
shell = len(cmd) == 1
t0 = time.monotonic()
rc = subprocess.call(cmd[0] if shell else cmd, shell=shell)
wall = time.monotonic() - t0
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"label": label, "rc": rc, "wall_s": round(wall, 3),
                  "cpu_s": round(ru.ru_utime + ru.ru_stime, 3),
                  "peak_rss_mib": round(ru.ru_maxrss / 1024, 1)}))
sys.exit(rc)

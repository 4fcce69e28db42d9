"""Helpers for the test servers (moto_s3.py, faultproxy.py): run one in the
background in a process group of its own, wait until it says it is ready,
stop it.  Python standard library only."""
import os
import signal
import subprocess
import sys
import time


def start(d, name, argv, ready, timeout):
    """Run argv with its output in d/NAME.log and its pid in d/NAME.pid;
    wait (timeout seconds at most) until the file `ready` exists."""
    os.makedirs(d, exist_ok=True)
    if os.path.exists(ready):
        os.unlink(ready)
    log = open(os.path.join(d, name + ".log"), "w")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    with open(os.path.join(d, name + ".pid"), "w") as f:
        f.write(str(proc.pid))
    end = time.monotonic() + timeout
    while not os.path.exists(ready):
        if proc.poll() is not None or time.monotonic() > end:
            stop(d, name)
            sys.exit("%s did not start; see %s/%s.log" % (name, d, name))
        time.sleep(0.05)


def stop(d, name):
    """SIGTERM to the process group, SIGKILL if it is still there 5 s on."""
    pidfile = os.path.join(d, name + ".pid")
    try:
        pid = int(open(pidfile).read())
    except (OSError, ValueError):
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            break
        end = time.monotonic() + 5
        while time.monotonic() < end:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            continue
        break
    os.unlink(pidfile)

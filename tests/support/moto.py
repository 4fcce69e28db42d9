#!/usr/bin/env python3
"""A moto S3 server for tests, on 127.0.0.1, in a directory of its own.

  moto.py start DIR [--auth] [--bucket NAME]
      Start moto_server on a free port (log in DIR/moto.log, pid in
      DIR/moto.pid), wait until it answers (15 s at most), create the
      bucket and print, one per line, endpoint=, bucket=, access_key=,
      secret_key=.  With --auth, moto checks signatures: an IAM user with
      an allow-all policy and an access key are made first (while
      INITIAL_NO_AUTH_ACTION_COUNT still lets unsigned calls through), and
      those keys are printed; without it any keys are accepted.
  moto.py stop DIR
      Stop it (SIGTERM to its process group, SIGKILL after 5 s).
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import boto3
from botocore.config import Config

# create_bucket, create_user, put_user_policy, create_access_key
SETUP_ACTIONS = 4


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def moto_command():
    exe = shutil.which("moto_server") or os.path.expanduser(
        "~/.pyenv/shims/moto_server")
    if not os.path.exists(exe):
        sys.exit("moto.py: moto_server not found (pip install 'moto[server]')")
    return exe


def wait_listening(port, proc, deadline):
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def stop(d):
    try:
        pid = int(open(os.path.join(d, "moto.pid")).read())
    except (OSError, ValueError):
        return
    for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 2.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            break
        end = time.monotonic() + wait
        while time.monotonic() < end:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            continue
        break
    os.unlink(os.path.join(d, "moto.pid"))


def start(d, auth, bucket):
    os.makedirs(d, exist_ok=True)
    port = free_port()
    env = dict(os.environ)
    if auth:
        env["INITIAL_NO_AUTH_ACTION_COUNT"] = str(SETUP_ACTIONS)
    log = open(os.path.join(d, "moto.log"), "w")
    proc = subprocess.Popen(
        [moto_command(), "-H", "127.0.0.1", "-p", str(port)],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        env=env, start_new_session=True)
    with open(os.path.join(d, "moto.pid"), "w") as f:
        f.write(str(proc.pid))
    endpoint = "http://127.0.0.1:%d" % port
    if not wait_listening(port, proc, time.monotonic() + 15):
        stop(d)
        sys.exit("moto.py: moto_server did not start; see %s/moto.log" % d)
    conf = Config(retries={"max_attempts": 1}, connect_timeout=5,
                  read_timeout=30)
    keys = {"AccessKeyId": "test", "SecretAccessKey": "test"}
    try:
        def client(svc, k):
            return boto3.client(svc, endpoint_url=endpoint,
                                region_name="us-east-1", config=conf,
                                aws_access_key_id=k["AccessKeyId"],
                                aws_secret_access_key=k["SecretAccessKey"])
        client("s3", keys).create_bucket(Bucket=bucket)
        if auth:
            iam = client("iam", keys)
            iam.create_user(UserName="vakap")
            iam.put_user_policy(UserName="vakap", PolicyName="all",
                                PolicyDocument=json.dumps({
                                    "Version": "2012-10-17",
                                    "Statement": [{"Effect": "Allow",
                                                   "Action": "*",
                                                   "Resource": "*"}]}))
            keys = iam.create_access_key(UserName="vakap")["AccessKey"]
    except Exception as e:  # noqa: BLE001 -- any failure stops the server
        stop(d)
        sys.exit("moto.py: setting up moto failed: %s" % e)
    print("endpoint=%s" % endpoint)
    print("bucket=%s" % bucket)
    print("access_key=%s" % keys["AccessKeyId"])
    print("secret_key=%s" % keys["SecretAccessKey"])


def main(argv):
    if len(argv) < 3 or argv[1] not in ("start", "stop"):
        sys.exit(__doc__)
    if argv[1] == "stop":
        stop(argv[2])
        return
    bucket = "vakap-test"
    if "--bucket" in argv:
        bucket = argv[argv.index("--bucket") + 1]
    start(argv[2], "--auth" in argv, bucket)


if __name__ == "__main__":
    main(sys.argv)

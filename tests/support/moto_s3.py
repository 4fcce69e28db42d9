#!/usr/bin/env python3
"""A moto S3 server for tests, on 127.0.0.1, in a directory of its own.

  moto_s3.py start DIR [--auth] [--bucket NAME] [--objects PREFIX:N]
      Start moto on a free port in a process of its own (log in
      DIR/moto.log, pid in DIR/moto.pid), wait until it is ready (20 s at
      most) and print, one per line, endpoint=, bucket=, access_key=,
      secret_key=.  It has the bucket (default vakap-test).  With --auth,
      moto checks signatures: an IAM user with an allow-all policy and an
      access key are made first (while INITIAL_NO_AUTH_ACTION_COUNT still
      lets unsigned calls through), and those keys are printed; without
      it any keys are accepted.  --objects puts N one-byte objects named
      PREFIX00000... straight into moto's store (a request each takes
      moto ~4 ms: 5,000 would take 20 s).
  moto_s3.py stop DIR
      Stop it (SIGTERM to its process group, SIGKILL after 5 s).
  moto_s3.py serve DIR PORT [options]
      What start runs: the server itself, until SIGTERM.
"""
import json
import os
import signal
import socket
import sys
import time

import background
import boto3
from botocore.config import Config

# create_bucket, create_user, put_user_policy, create_access_key
SETUP_ACTIONS = 4


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(d, port, auth, bucket, objects):
    if auth:
        os.environ["INITIAL_NO_AUTH_ACTION_COUNT"] = str(SETUP_ACTIONS)
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    endpoint = "http://127.0.0.1:%d" % port
    conf = Config(retries={"max_attempts": 1}, connect_timeout=5,
                  read_timeout=30)
    keys = {"AccessKeyId": "test", "SecretAccessKey": "test"}

    def client(svc, k):
        return boto3.client(svc, endpoint_url=endpoint,
                            region_name="us-east-1", config=conf,
                            aws_access_key_id=k["AccessKeyId"],
                            aws_secret_access_key=k["SecretAccessKey"])
    try:
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
        if objects:
            prefix, n = objects.rsplit(":", 1)
            store = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
            for i in range(int(n)):
                store.put_object(bucket, "%s%05d" % (prefix, i), b"x")
        tmp = os.path.join(d, "moto.ready.tmp")
        with open(tmp, "w") as f:
            f.write("endpoint=%s\nbucket=%s\naccess_key=%s\n"
                    "secret_key=%s\n" % (endpoint, bucket,
                                         keys["AccessKeyId"],
                                         keys["SecretAccessKey"]))
        os.rename(tmp, os.path.join(d, "moto.ready"))
        while True:
            time.sleep(3600)
    finally:
        server.stop()


def start(d, args):
    ready = os.path.join(d, "moto.ready")
    background.start(d, "moto", [sys.executable, os.path.abspath(__file__),
                                 "serve", d, str(free_port())] + args,
                     ready, 20)
    sys.stdout.write(open(ready).read())


def option(argv, name, default=None):
    return argv[argv.index(name) + 1] if name in argv else default


def main(argv):
    if len(argv) >= 3 and argv[1] == "start":
        start(argv[2], argv[3:])
    elif len(argv) == 3 and argv[1] == "stop":
        background.stop(argv[2], "moto")
    elif len(argv) >= 4 and argv[1] == "serve":
        serve(argv[2], int(argv[3]), "--auth" in argv,
              option(argv, "--bucket", "vakap-test"),
              option(argv, "--objects"))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)

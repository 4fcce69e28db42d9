#!/usr/bin/env python3
"""An independent S3 client for the tests (boto3): what vakap wrote is
read back, and what vakap reads is written, by something else.

  s3tool.py ENDPOINT ACCESS_KEY SECRET_KEY BUCKET COMMAND [ARGS...]

  put KEY FILE          upload FILE (boto3 chooses single or multipart)
  get KEY FILE          download into FILE
  sha KEY               {"sha256": ..., "size": ...} of the object
  keys PREFIX           ["key", ...]: every key under PREFIX
  uploads PREFIX        [{"key": ..., "upload_id": ...}]: multipart uploads
                        in progress
  start-upload KEY...   start a multipart upload for each KEY

Answers are JSON on stdout; a failure is a message on stderr, exit 1.
"""
import hashlib
import json
import sys

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config


def main(argv):
    if len(argv) < 6:
        sys.exit(__doc__)
    endpoint, ak, sk, bucket, cmd = argv[1:6]
    args = argv[6:]
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                      aws_access_key_id=ak, aws_secret_access_key=sk,
                      config=Config(retries={"max_attempts": 1},
                                    s3={"addressing_style": "path"}))
    out = None
    if cmd == "put":
        s3.upload_file(args[1], bucket, args[0],
                       Config=TransferConfig(multipart_chunksize=5 << 20,
                                             multipart_threshold=6 << 20))
    elif cmd == "get":
        s3.download_file(bucket, args[0], args[1])
    elif cmd == "sha":
        body = s3.get_object(Bucket=bucket, Key=args[0])["Body"]
        h, n = hashlib.sha256(), 0
        for chunk in iter(lambda: body.read(1 << 20), b""):
            h.update(chunk)
            n += len(chunk)
        out = {"sha256": h.hexdigest(), "size": n}
    elif cmd == "keys":
        out = []
        for page in s3.get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix=args[0]):
            out += [o["Key"] for o in page.get("Contents", [])]
    elif cmd == "uploads":
        r = s3.list_multipart_uploads(Bucket=bucket, Prefix=args[0])
        out = [{"key": u["Key"], "upload_id": u["UploadId"]}
               for u in r.get("Uploads", [])]
    elif cmd == "start-upload":
        out = [s3.create_multipart_upload(Bucket=bucket, Key=k)["UploadId"]
               for k in args]
    else:
        sys.exit("s3tool.py: unknown command %r" % cmd)
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    try:
        main(sys.argv)
    except Exception as e:  # noqa: BLE001 -- the message is the answer
        sys.stderr.write("s3tool.py: %s\n" % e)
        sys.exit(1)

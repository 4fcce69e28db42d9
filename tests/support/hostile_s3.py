#!/usr/bin/env python3
"""A misbehaving S3 server for the tests (python3 standard library): its
listings are hostile, to check that every parser and loop vakap feeds
with them is bounded.

  hostile_s3.py start DIR     start in the background on 127.0.0.1 (a
                              free port); prints endpoint=http://...
  hostile_s3.py stop DIR      stop it
  hostile_s3.py serve DIR     run in the foreground

The bucket (path style: GET /BUCKET?...) says how it misbehaves:

  deep    ListObjectsV2 answers 100,000 elements nested in one another
  loop    IsTruncated=true and the same NextContinuationToken forever;
          for ListMultipartUploads (?uploads) the same NextKeyMarker and
          NextUploadIdMarker forever
  cycle   IsTruncated=true, continuation tokens a, b, a, b... (the
          markers of ListMultipartUploads likewise)
  count   IsTruncated=true with a new token every page, forever

So that a client that never stops stops all the same, every bucket's
listing ends (IsTruncated=false) after PAGES pages.  Each request is
logged to DIR/log, one line: "BUCKET QUERY".
"""
import http.server
import os
import sys
import threading
import urllib.parse

import background

PAGES = 200
DEPTH = 100000
lock = threading.Lock()
pages = {}


def deep():
    return ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<ListBucketResult>" + "<a>" * DEPTH + "</a>" * DEPTH +
            "</ListBucketResult>")


def token(bucket, n, given):
    if bucket == "loop":
        return "same"
    if bucket == "cycle":
        return "b" if given == "a" else "a"
    return "t%d" % n


def objects(bucket, n, q):
    more = "true" if n < PAGES else "false"
    nxt = token(bucket, n, q.get("continuation-token", [""])[0])
    return ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<ListBucketResult><Name>%s</Name><IsTruncated>%s</IsTruncated>"
            "<Contents><Key>k%d</Key><Size>1</Size></Contents>"
            "<NextContinuationToken>%s</NextContinuationToken>"
            "</ListBucketResult>" % (bucket, more, n, nxt))


def uploads(bucket, n, q):
    more = "true" if n < PAGES else "false"
    nxt = token(bucket, n, q.get("key-marker", [""])[0])
    return ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<ListMultipartUploadsResult><Bucket>%s</Bucket>"
            "<IsTruncated>%s</IsTruncated>"
            "<Upload><Key>k%d</Key><UploadId>u%d</UploadId></Upload>"
            "<NextKeyMarker>%s</NextKeyMarker>"
            "<NextUploadIdMarker>u-%s</NextUploadIdMarker>"
            "</ListMultipartUploadsResult>" % (bucket, more, n, n, nxt, nxt))


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        bucket = url.path.strip("/").split("/")[0]
        q = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        kind = "uploads" if "uploads" in q else "list"
        with lock:
            n = pages[(bucket, kind)] = pages.get((bucket, kind), 0) + 1
            with open(os.path.join(self.server.dir, "log"), "a") as f:
                f.write("%s %s\n" % (bucket, url.query))
        if bucket == "deep":
            body = deep()
        elif kind == "uploads":
            body = uploads(bucket, n, q)
        else:
            body = objects(bucket, n, q)
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, fmt, *args):
        pass


def serve(d):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.dir = d
    tmp = os.path.join(d, "hostile.ready.tmp")
    with open(tmp, "w") as f:
        f.write("endpoint=http://127.0.0.1:%d\n" % server.server_address[1])
    os.rename(tmp, os.path.join(d, "hostile.ready"))
    server.serve_forever()


def main(argv):
    if len(argv) == 3 and argv[1] == "start":
        d = argv[2]
        ready = os.path.join(d, "hostile.ready")
        background.start(d, "hostile", [sys.executable,
                                        os.path.abspath(__file__), "serve",
                                        d], ready, 20)
        sys.stdout.write(open(ready).read())
    elif len(argv) == 3 and argv[1] == "stop":
        background.stop(argv[2], "hostile")
    elif len(argv) == 3 and argv[1] == "serve":
        serve(argv[2])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)

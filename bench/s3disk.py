#!/usr/bin/env python3
"""s3disk.py DIR PORT: a small S3 server for the benchmarks that keeps
objects on disk (moto keeps them in memory), path-style, no auth checks.

  PUT /B/KEY (plain, chunked or aws-chunked body), GET (with Range), HEAD,
  DELETE; multipart: POST ?uploads, PUT ?partNumber&uploadId, POST
  ?uploadId (complete), DELETE ?uploadId (abort); GET /B?list-type=2
  (prefix, delimiter, max-keys, start-after, continuation-token);
  GET /B?uploads; POST /B?delete; PUT/HEAD /B.
  GET /_stats: request counts by kind, as JSON; POST /_stats: reset.

Objects are files DIR/BUCKET/<sha1 of key>; the index (key, size, etag,
mtime) is in memory and rebuilt at start from DIR/BUCKET/*.meta."""
import bisect
import hashlib
import http.server
import json
import os
import socketserver
import sys
import threading
import time
import urllib.parse
import uuid
from xml.sax.saxutils import escape

ROOT = sys.argv[1]
PORT = int(sys.argv[2])
LOCK = threading.Lock()
BUCKETS = {}   # name -> {key: (size, etag, mtime)}, sorted keys list
KEYS = {}
UPLOADS = {}   # upload id -> (bucket, key, initiated, {part: (path, etag)})
STATS = {}
NS = 'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"'


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(t))


def obj_path(bucket, key):
    return os.path.join(ROOT, bucket, hashlib.sha1(key.encode()).hexdigest())


def load():
    os.makedirs(ROOT, exist_ok=True)
    for b in os.listdir(ROOT):
        d = os.path.join(ROOT, b)
        if not os.path.isdir(d):
            continue
        BUCKETS[b] = {}
        for f in os.listdir(d):
            if f.endswith(".meta"):
                with open(os.path.join(d, f)) as fh:
                    m = json.load(fh)
                BUCKETS[b][m["key"]] = (m["size"], m["etag"], m["mtime"])
        KEYS[b] = sorted(BUCKETS[b])


def record(bucket, key, size, etag, mtime=None):
    mtime = mtime or time.time()
    with open(obj_path(bucket, key) + ".meta", "w") as fh:
        json.dump({"key": key, "size": size, "etag": etag, "mtime": mtime}, fh)
    with LOCK:
        if key not in BUCKETS[bucket]:
            bisect.insort(KEYS[bucket], key)
        BUCKETS[bucket][key] = (size, etag, mtime)


def forget(bucket, key):
    with LOCK:
        if BUCKETS[bucket].pop(key, None) is None:
            return
        i = bisect.bisect_left(KEYS[bucket], key)
        del KEYS[bucket][i]
    for suffix in ("", ".meta"):
        try:
            os.unlink(obj_path(bucket, key) + suffix)
        except FileNotFoundError:
            pass


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def count(self, kind):
        with LOCK:
            STATS[kind] = STATS.get(kind, 0) + 1

    def reply(self, code, body=b"", ctype="application/xml", headers=()):
        if isinstance(body, str):
            body = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def error(self, code, s3code, msg=""):
        self.reply(code, '<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code>'
                   '<Message>%s</Message></Error>' % (s3code, escape(msg)))

    def parse(self):
        u = urllib.parse.urlsplit(self.path)
        q = urllib.parse.parse_qs(u.query, keep_blank_values=True)
        q = {k: v[0] for k, v in q.items()}
        parts = urllib.parse.unquote(u.path).lstrip("/").split("/", 1)
        bucket = parts[0]
        key = parts[1] if len(parts) > 1 else ""
        return bucket, key, q

    # The request body, written to OUT (a file) or returned: plain with a
    # Content-Length, HTTP chunked, and the aws-chunked framing inside.
    def body(self, out=None):
        h = self.headers
        chunks = []
        md5 = hashlib.md5()
        n = 0

        def emit(data):
            nonlocal n
            md5.update(data)
            n += len(data)
            if out:
                out.write(data)
            else:
                chunks.append(data)

        raw = self.rfile
        te = (h.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            raw = ChunkedReader(self.rfile)
            length = None
        else:
            length = int(h.get("Content-Length") or 0)
        aws = "aws-chunked" in (h.get("Content-Encoding") or "") or \
            (h.get("x-amz-content-sha256") or "").startswith("STREAMING-")
        if aws:
            src = LimitedReader(raw, length)
            while True:
                line = src.readline().strip()
                size = int(line.split(b";")[0], 16)
                if size == 0:
                    while src.readline().strip():  # trailers
                        pass
                    break
                left = size
                while left:
                    d = src.read(min(left, 1 << 20))
                    if not d:
                        raise IOError("short aws-chunked body")
                    emit(d)
                    left -= len(d)
                src.readline()
        elif length is None:
            while True:
                d = raw.read(1 << 20)
                if not d:
                    break
                emit(d)
        else:
            left = length
            while left:
                d = self.rfile.read(min(left, 1 << 20))
                if not d:
                    raise IOError("short body")
                emit(d)
                left -= len(d)
        return (b"".join(chunks) if out is None else None), n, md5.hexdigest()

    def do_PUT(self):
        bucket, key, q = self.parse()
        if not key:
            self.count("create_bucket")
            os.makedirs(os.path.join(ROOT, bucket), exist_ok=True)
            with LOCK:
                BUCKETS.setdefault(bucket, {})
                KEYS.setdefault(bucket, [])
            return self.reply(200)
        if bucket not in BUCKETS:
            return self.error(404, "NoSuchBucket")
        if "uploadId" in q:
            self.count("upload_part")
            up = UPLOADS.get(q["uploadId"])
            if not up:
                self.body()
                return self.error(404, "NoSuchUpload")
            path = os.path.join(ROOT, bucket, ".part-%s-%s" % (q["uploadId"], q["partNumber"]))
            with open(path, "wb") as fh:
                _, n, etag = self.body(fh)
            up[3][int(q["partNumber"])] = (path, etag)
            return self.reply(200, headers=[("ETag", '"%s"' % etag)])
        self.count("put")
        path = obj_path(bucket, key)
        with open(path + ".tmp", "wb") as fh:
            _, n, etag = self.body(fh)
        os.rename(path + ".tmp", path)
        record(bucket, key, n, etag)
        self.reply(200, headers=[("ETag", '"%s"' % etag)])

    def do_POST(self):
        bucket, key, q = self.parse()
        if bucket == "_stats":
            with LOCK:
                STATS.clear()
            return self.reply(200, "{}", "application/json")
        if bucket not in BUCKETS:
            self.body()
            return self.error(404, "NoSuchBucket")
        if "uploads" in q:
            self.count("create_multipart")
            self.body()
            uid = uuid.uuid4().hex
            UPLOADS[uid] = (bucket, key, time.time(), {})
            return self.reply(200, '<?xml version="1.0" encoding="UTF-8"?><InitiateMultipartUploadResult %s>'
                              '<Bucket>%s</Bucket><Key>%s</Key><UploadId>%s</UploadId>'
                              '</InitiateMultipartUploadResult>' % (NS, bucket, escape(key), uid))
        if "uploadId" in q:
            self.count("complete_multipart")
            data, _, _ = self.body()
            up = UPLOADS.pop(q["uploadId"], None)
            if not up:
                return self.error(404, "NoSuchUpload")
            import xml.etree.ElementTree as ET
            nums = [int(e.text) for e in ET.fromstring(data).iter() if e.tag.endswith("PartNumber")]
            path = obj_path(bucket, key)
            md5s = b""
            n = 0
            with open(path + ".tmp", "wb") as out:
                for num in nums:
                    p, etag = up[3][num]
                    md5s += bytes.fromhex(etag)
                    with open(p, "rb") as fh:
                        while True:
                            d = fh.read(1 << 20)
                            if not d:
                                break
                            out.write(d)
                            n += len(d)
            for p, _ in up[3].values():
                os.unlink(p)
            os.rename(path + ".tmp", path)
            etag = "%s-%d" % (hashlib.md5(md5s).hexdigest(), len(nums))
            record(bucket, key, n, etag)
            return self.reply(200, '<?xml version="1.0" encoding="UTF-8"?><CompleteMultipartUploadResult %s>'
                              '<Bucket>%s</Bucket><Key>%s</Key><ETag>"%s"</ETag>'
                              '</CompleteMultipartUploadResult>' % (NS, bucket, escape(key), etag))
        if "delete" in q:
            self.count("delete_objects")
            data, _, _ = self.body()
            import xml.etree.ElementTree as ET
            keys = [e.text for e in ET.fromstring(data).iter() if e.tag.endswith("Key")]
            for k in keys:
                forget(bucket, k)
            out = "".join("<Deleted><Key>%s</Key></Deleted>" % escape(k) for k in keys)
            return self.reply(200, '<?xml version="1.0" encoding="UTF-8"?><DeleteResult %s>%s</DeleteResult>'
                              % (NS, out))
        self.body()
        self.error(400, "InvalidRequest", "unsupported POST")

    def do_DELETE(self):
        bucket, key, q = self.parse()
        if bucket not in BUCKETS:
            return self.error(404, "NoSuchBucket")
        if "uploadId" in q:
            self.count("abort_multipart")
            up = UPLOADS.pop(q["uploadId"], None)
            if up:
                for p, _ in up[3].values():
                    os.unlink(p)
            return self.reply(204)
        self.count("delete")
        forget(bucket, key)
        self.reply(204)

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        bucket, key, q = self.parse()
        if bucket == "_stats":
            with LOCK:
                s = dict(STATS)
            s["total"] = sum(s.values())
            return self.reply(200, json.dumps(s), "application/json")
        if bucket not in BUCKETS:
            return self.error(404, "NoSuchBucket")
        if not key:
            if "uploads" in q:
                self.count("list_uploads")
                ups = "".join("<Upload><Key>%s</Key><UploadId>%s</UploadId><Initiated>%s</Initiated></Upload>"
                              % (escape(k), uid, iso(t)) for uid, (b, k, t, _) in list(UPLOADS.items())
                              if b == bucket and k.startswith(q.get("prefix", "")))
                return self.reply(200, '<?xml version="1.0" encoding="UTF-8"?><ListMultipartUploadsResult %s>'
                                  '<Bucket>%s</Bucket><IsTruncated>false</IsTruncated>%s'
                                  '</ListMultipartUploadsResult>' % (NS, bucket, ups))
            if self.command == "HEAD":
                self.count("head_bucket")
                return self.reply(200)
            self.count("list")
            return self.list(bucket, q)
        meta = BUCKETS[bucket].get(key)
        if meta is None:
            self.count("head" if self.command == "HEAD" else "get")
            return self.error(404, "NoSuchKey", key)
        size, etag, mtime = meta
        self.count("head" if self.command == "HEAD" else "get")
        start, end = 0, size - 1
        code = 200
        rng = self.headers.get("Range")
        hdrs = [("ETag", '"%s"' % etag), ("Last-Modified", self.date_time_string(mtime)),
                ("Accept-Ranges", "bytes")]
        if rng and rng.startswith("bytes="):
            a, b = rng[6:].split("-")
            start = int(a) if a else size - int(b)
            end = min(int(b), size - 1) if (b and a) else size - 1
            code = 206
            hdrs.append(("Content-Range", "bytes %d-%d/%d" % (start, end, size)))
        n = max(0, end - start + 1)
        self.send_response(code)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(n))
        for k, v in hdrs:
            self.send_header(k, v)
        self.end_headers()
        if self.command == "HEAD":
            return
        with open(obj_path(bucket, key), "rb") as fh:
            fh.seek(start)
            while n:
                d = fh.read(min(n, 1 << 20))
                if not d:
                    break
                self.wfile.write(d)
                n -= len(d)

    def list(self, bucket, q):
        prefix = q.get("prefix", "")
        delim = q.get("delimiter", "")
        maxk = int(q.get("max-keys", "1000") or 1000)
        after = q.get("continuation-token") or q.get("start-after") or ""
        with LOCK:
            keys = KEYS[bucket]
            i = bisect.bisect_right(keys, after) if after else bisect.bisect_left(keys, prefix)
            contents, prefixes, seen = [], [], set()
            last = None
            truncated = False
            while i < len(keys):
                k = keys[i]
                if not k.startswith(prefix):
                    break
                if len(contents) + len(prefixes) >= maxk:
                    truncated = True
                    break
                if delim:
                    j = k.find(delim, len(prefix))
                    if j >= 0:
                        cp = k[:j + len(delim)]
                        if cp not in seen:
                            seen.add(cp)
                            prefixes.append(cp)
                        last = k
                        i += 1
                        continue
                contents.append((k, BUCKETS[bucket][k]))
                last = k
                i += 1
        out = ['<?xml version="1.0" encoding="UTF-8"?><ListBucketResult %s><Name>%s</Name>'
               '<Prefix>%s</Prefix><KeyCount>%d</KeyCount><MaxKeys>%d</MaxKeys><IsTruncated>%s</IsTruncated>'
               % (NS, bucket, escape(prefix), len(contents) + len(prefixes), maxk,
                  "true" if truncated else "false")]
        if truncated:
            out.append("<NextContinuationToken>%s</NextContinuationToken>" % escape(last))
        for k, (size, etag, mtime) in contents:
            out.append('<Contents><Key>%s</Key><LastModified>%s</LastModified><ETag>"%s"</ETag>'
                       '<Size>%d</Size><StorageClass>STANDARD</StorageClass></Contents>'
                       % (escape(k), iso(mtime), etag, size))
        for p in prefixes:
            out.append("<CommonPrefixes><Prefix>%s</Prefix></CommonPrefixes>" % escape(p))
        out.append("</ListBucketResult>")
        self.reply(200, "".join(out))


class ChunkedReader:
    """HTTP/1.1 chunked transfer coding, read as a plain stream."""

    def __init__(self, f):
        self.f, self.left, self.done = f, 0, False

    def read(self, n):
        if self.done:
            return b""
        if self.left == 0:
            size = int(self.f.readline().split(b";")[0].strip(), 16)
            if size == 0:
                while self.f.readline().strip():
                    pass
                self.done = True
                return b""
            self.left = size
        d = self.f.read(min(n, self.left))
        self.left -= len(d)
        if self.left == 0:
            self.f.readline()
        return d

    def readline(self):
        out = b""
        while not out.endswith(b"\n"):
            c = self.read(1)
            if not c:
                break
            out += c
        return out


class LimitedReader:
    """At most N bytes of F (all of it when N is None), with readline."""

    def __init__(self, f, n):
        self.f, self.left = f, n

    def read(self, n):
        if self.left is not None:
            n = min(n, self.left)
            if n <= 0:
                return b""
        d = self.f.read(n)
        if self.left is not None:
            self.left -= len(d)
        return d

    def readline(self):
        if self.left is None:
            return self.f.readline()
        d = self.f.readline(self.left)
        self.left -= len(d)
        return d


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    request_queue_size = 128


if __name__ == "__main__":
    load()
    srv = Server(("127.0.0.1", PORT), Handler)
    print("s3disk: listening on 127.0.0.1:%d" % PORT, flush=True)
    srv.serve_forever()

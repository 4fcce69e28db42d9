#!/usr/bin/env python3
"""A fault-injecting HTTP proxy for the S3 tests (python3 standard library).

It sits between vakap and an S3 server (moto) on 127.0.0.1 and, on a
schedule, answers 500/503/SlowDown itself, resets connections, cuts or
stalls a transfer midway; every other request is forwarded as it came.

  faultproxy.py start DIR UPSTREAM   start in the background; prints
                                     endpoint=http://127.0.0.1:PORT
  faultproxy.py stop DIR             stop it
  faultproxy.py serve DIR UPSTREAM   run in the foreground

The schedule is DIR/rules.json, read again whenever it changes, its
text or its mtime (which resets the counts): a list of rules, the first that matches a request
and has times left applies to it.

  {"method": "PUT",            -- optional: the request's method
   "match": "partNumber=2",    -- optional: a substring of path?query
   "fault": "503",             -- what to do, below
   "times": 2,                 -- how many requests (-1: all of them)
   "after": 1000000,           -- cut/stall: bytes let through first
   "seconds": 30,              -- stall: how long to hold still
   "overwrite": "other"}       -- lose: then another writer PUTs these
                               -- bytes at the request's key

faults: "500", "503", "slowdown" (503 SlowDown), "skew" (403
RequestTimeTooSkewed), "error200" (200 with an InternalError body),
"nosuchupload" (404 NoSuchUpload: what S3 may answer a Complete sent
again after the first completed the upload),
"reset" (read the request, then reset the connection), "reset-upload"
(reset after half the request body), "stall-upload" (stop reading the
request body halfway), "lose" (forward the request, let the server act
on it, read its whole answer, then reset: the answer is lost), "cut" (forward, let `after` bytes of the answer's
body through, then reset), "stall" (the same, then hold still).

Each request is logged to DIR/log.jsonl: {"method", "target", "fault"}.
"""
import http.client
import json
import os
import signal
import socket
import socketserver
import struct
import sys
import threading
import time
import urllib.parse

import background

HOP = {"connection", "keep-alive", "expect", "proxy-connection", "te",
       "trailer", "transfer-encoding", "upgrade"}

S3_ERRORS = {
    "500": (500, "InternalError", "We encountered an internal error."),
    "503": (503, "ServiceUnavailable", "Please reduce your request rate."),
    "slowdown": (503, "SlowDown", "Please reduce your request rate."),
    "error200": (200, "InternalError", "We encountered an internal error."),
    "nosuchupload": (404, "NoSuchUpload", "The specified upload does not "
                     "exist."),
}


class Schedule:
    def __init__(self, path):
        self.path = path
        self.text = None
        self.rules = []
        self.lock = threading.Lock()

    def pick(self, method, target):
        with self.lock:
            # its text too: two writes within a tick of the file system's
            # clock have the same mtime
            try:
                with open(self.path) as f:
                    text = (os.fstat(f.fileno()).st_mtime_ns, f.read())
            except FileNotFoundError:
                text = None
            if text != self.text:
                self.text = text
                self.rules = json.loads(text[1]) if text else []
            for r in self.rules:
                if r.get("times", 1) == 0:
                    continue
                if r.get("method") and r["method"] != method:
                    continue
                if r.get("match") and r["match"] not in target:
                    continue
                if r.get("times", 1) > 0:
                    r["times"] = r.get("times", 1) - 1
                return dict(r)
            return None


def reset(sock):
    """Close with a TCP reset rather than a clean end."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                        struct.pack("ii", 1, 0))
        sock.close()
    except OSError:
        pass


def overwrite(up, target, data):
    """Another writer: PUT data at the key of target (its path), with a
    made-up signature (for a server that checks none; moto refuses an
    anonymous overwrite)."""
    conn = http.client.HTTPConnection(up.hostname, up.port, timeout=60)
    try:
        conn.request("PUT", target.split("?", 1)[0], data.encode(), {
            "Content-Type": "application/octet-stream",
            "Authorization": "AWS4-HMAC-SHA256 Credential=other/20260101/"
                             "us-east-1/s3/aws4_request, SignedHeaders=host, "
                             "Signature=00"})
        conn.getresponse().read()
    finally:
        conn.close()


def error_xml(code, message, extra=""):
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>%s</Code>'
            '<Message>%s</Message>%s<RequestId>faultproxy</RequestId>'
            '</Error>' % (code, message, extra)).encode()


class Handler(socketserver.BaseRequestHandler):
    def setup(self):
        self.rfile = self.request.makefile("rb")

    def finish(self):
        try:
            self.rfile.close()
        except OSError:
            pass

    def send(self, data):
        self.request.sendall(data)

    def respond(self, status, reason, body, headers=()):
        head = "HTTP/1.1 %d %s\r\nContent-Length: %d\r\n" % (
            status, reason, len(body))
        head += "Content-Type: application/xml\r\n"
        for k, v in headers:
            head += "%s: %s\r\n" % (k, v)
        self.send(head.encode() + b"\r\n" + body)

    def log(self, method, target, fault):
        srv = self.server
        with srv.log_lock:
            with open(srv.log_path, "a") as f:
                f.write(json.dumps({"method": method, "target": target,
                                    "fault": fault}) + "\n")

    def handle(self):
        try:
            while self.one_request():
                pass
        except (OSError, ValueError, http.client.HTTPException):
            pass

    def one_request(self):
        line = self.rfile.readline(65537)
        if not line:
            return False
        method, target, _ = line.decode("latin-1").split(" ", 2)
        headers = []
        while True:
            h = self.rfile.readline(65537).decode("latin-1")
            if h in ("\r\n", "\n", ""):
                break
            name, value = h.split(":", 1)
            headers.append((name.strip(), value.strip()))
        length = 0
        for k, v in headers:
            if k.lower() == "content-length":
                length = int(v)
        rule = self.server.schedule.pick(method, target)
        fault = rule["fault"] if rule else None
        self.log(method, target, fault)

        if fault in ("reset-upload", "stall-upload"):
            self.rfile.read(length // 2)
            if fault == "stall-upload":
                time.sleep(rule.get("seconds", 30))
            reset(self.request)
            return False
        body = self.rfile.read(length) if length else b""
        if fault == "reset":
            reset(self.request)
            return False
        if fault in S3_ERRORS:
            status, code, message = S3_ERRORS[fault]
            reason = {200: "OK", 404: "Not Found",
                      500: "Internal Server Error",
                      503: "Service Unavailable"}[status]
            self.respond(status, reason, error_xml(code, message))
            return True
        if fault == "skew":
            self.respond(403, "Forbidden", error_xml(
                "RequestTimeTooSkewed", "The difference between the request "
                "time and the current time is too large.",
                "<RequestTime>20000101T000000Z</RequestTime>"
                "<ServerTime>2026-01-01T00:00:00Z</ServerTime>"
                "<MaxAllowedSkewMilliseconds>900000"
                "</MaxAllowedSkewMilliseconds>"))
            return True
        return self.forward(method, target, headers, body, rule)

    def forward(self, method, target, headers, body, rule):
        up = self.server.upstream
        conn = http.client.HTTPConnection(up.hostname, up.port, timeout=60)
        try:
            conn.putrequest(method, target, skip_host=True,
                            skip_accept_encoding=True)
            for k, v in headers:
                if k.lower() not in HOP and k.lower() != "content-length":
                    conn.putheader(k, v)
            if body or method in ("PUT", "POST"):
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body if body else None)
            resp = conn.getresponse()
            if rule and rule["fault"] == "lose":
                resp.read()
                if "overwrite" in rule:
                    overwrite(up, target, rule["overwrite"])
                reset(self.request)
                return False
            rheaders = [(k, v) for k, v in resp.getheaders()
                        if k.lower() not in HOP]
            length = resp.getheader("Content-Length")
            if length is None and method != "HEAD":
                data = resp.read()
                rheaders.append(("Content-Length", str(len(data))))
                chunks = [data]
            else:
                chunks = None
            head = "HTTP/1.1 %d %s\r\n" % (resp.status, resp.reason)
            for k, v in rheaders:
                head += "%s: %s\r\n" % (k, v)
            self.send(head.encode() + b"\r\n")
            if method == "HEAD":
                return True
            fault = rule["fault"] if rule else None
            limit = None
            if fault in ("cut", "stall"):
                total = int(length) if length else 0
                limit = rule.get("after", total // 2)
            sent = 0
            while True:
                data = chunks.pop(0) if chunks else (
                    None if chunks is not None else resp.read(65536))
                if not data:
                    break
                if limit is not None and sent + len(data) >= limit:
                    self.send(data[:limit - sent])
                    if fault == "stall":
                        time.sleep(rule.get("seconds", 30))
                    reset(self.request)
                    return False
                self.send(data)
                sent += len(data)
            return True
        finally:
            conn.close()


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def serve(d, upstream):
    os.makedirs(d, exist_ok=True)
    srv = Server(("127.0.0.1", 0), Handler)
    srv.upstream = urllib.parse.urlsplit(upstream)
    srv.schedule = Schedule(os.path.join(d, "rules.json"))
    srv.log_path = os.path.join(d, "log.jsonl")
    srv.log_lock = threading.Lock()
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    tmp = os.path.join(d, "proxy.port.tmp")
    with open(tmp, "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(tmp, os.path.join(d, "proxy.port"))
    try:
        srv.serve_forever(poll_interval=0.2)
    finally:
        srv.server_close()


def start(d, upstream):
    port_file = os.path.join(d, "proxy.port")
    background.start(d, "proxy", [sys.executable, os.path.abspath(__file__),
                                  "serve", d, upstream], port_file, 10)
    print("endpoint=http://127.0.0.1:%s" % open(port_file).read())


def main(argv):
    if len(argv) >= 4 and argv[1] in ("start", "serve"):
        (start if argv[1] == "start" else serve)(argv[2], argv[3])
    elif len(argv) == 3 and argv[1] == "stop":
        background.stop(argv[2], "proxy")
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)

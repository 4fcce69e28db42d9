#!/usr/bin/env python3
"""seed.py ENDPOINT BUCKET SITE DIR NSITES PER_SITE: read the objects of
one real backup of SITE from the S3 server at ENDPOINT, and write NSITES
sites (w1..wN) of PER_SITE daily backups each, made after it, straight
into DIR, the store of a bench/s3disk.py not yet started: the keys, the
stamps and the site names changed, the bytes otherwise the same."""
import hashlib
import json
import os
import re
import sys
import time
import urllib.request
import xml.etree.ElementTree as ET

ep, bucket, site, out, nsites, per = sys.argv[1:7]
nsites, per = int(nsites), int(per)


def get(path):
    with urllib.request.urlopen(ep + "/" + bucket + "/" + path) as r:
        return r.read()


listing = ET.fromstring(urllib.request.urlopen(
    "%s/%s?list-type=2&prefix=%s/" % (ep, bucket, site)).read())
keys = [e.text for e in listing.iter() if e.tag.endswith("}Key")]
stamp = next(re.search(r"(\d{8}T\d{6}Z)", k).group(1) for k in keys if re.search(r"\d{8}T\d{6}Z", k))
objs = {k: get(k) for k in keys}
d = os.path.join(out, bucket)
os.makedirs(d, exist_ok=True)
now = time.time()
n = 0


def put(key, data, mtime):
    global n
    name = os.path.join(d, hashlib.sha1(key.encode()).hexdigest())
    with open(name, "wb") as fh:
        fh.write(data)
    with open(name + ".meta", "w") as fh:
        json.dump({"key": key, "size": len(data), "etag": hashlib.md5(data).hexdigest(),
                   "mtime": mtime}, fh)
    n += 1


for i in range(1, nsites + 1):
    name = "w%d" % i
    for b in range(per):
        t = now - 86400 * b - 60 * i
        st = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(t))
        for k, data in objs.items():
            if stamp not in k:
                continue
            nk = name + k[len(site):].replace(stamp, st)
            put(nk, data.replace(stamp.encode(), st.encode()).replace(
                b'"%s"' % site.encode(), b'"%s"' % name.encode()), t)
    for k, data in objs.items():
        if stamp not in k:  # the op records
            put(name + k[len(site):], data.replace(b'"%s"' % site.encode(), b'"%s"' % name.encode()), now)
print("seed: %d objects (%d keys per backup: %s)" % (n, sum(stamp in k for k in keys), ", ".join(sorted(keys))),
      file=sys.stderr)

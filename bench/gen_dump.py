#!/usr/bin/env python3
"""Write N MiB of SQL-like text to stdout: INSERT rows with ids, names,
e-mail addresses, timestamps and a little random text, which compresses
about as well as a real dump.  Deterministic (fixed seed)."""
import random
import sys

mib = int(sys.argv[1])
rnd = random.Random(42)
words = ("lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod "
         "tempor incididunt ut labore et dolore magna aliqua café naïve").split()
out = sys.stdout.buffer
target = mib * 1024 * 1024
written = 0
row = 0
out.write(b"CREATE TABLE orders (id INT, name TEXT, email TEXT, at TEXT, note TEXT);\n")
while written < target:
    lines = []
    for _ in range(1000):
        row += 1
        name = rnd.choice(words).title() + " " + rnd.choice(words).title()
        note = " ".join(rnd.choice(words) for _ in range(rnd.randint(3, 12)))
        lines.append("INSERT INTO orders VALUES (%d, '%s', 'user%d@example.com', "
                     "'2026-%02d-%02d %02d:%02d:%02d', '%s %08x');\n" % (
                         row, name, rnd.randint(1, 99999), rnd.randint(1, 12),
                         rnd.randint(1, 28), rnd.randint(0, 23), rnd.randint(0, 59),
                         rnd.randint(0, 59), note, rnd.getrandbits(32)))
    chunk = "".join(lines).encode()
    chunk = chunk[:target - written]
    out.write(chunk)
    written += len(chunk)

#!/usr/bin/env python3
"""List the functions longer than a limit (default 60 lines) in the engine's
C files and the Lua library: `tools/longfuncs.py [--max N] [PATH...]`.
Exit 1 when there is one.  A C function runs from the line that names it
to the closing brace at the start of a line; a Lua function from the line
that opens it to the `end` at its indentation."""
import re
import sys
from pathlib import Path


def c_functions(lines):
    name = None
    for i, line in enumerate(lines):
        if line.startswith("{") and i > 0:
            j = i - 1
            while j > 0 and not re.search(r"\w+\s*\(", lines[j]):
                j -= 1
            m = re.search(r"(\w+)\s*\(", lines[j])
            name, start = (m.group(1) if m else "?"), j
        elif line.startswith("}") and name:
            yield name, start + 1, i - start + 1
            name = None


LUA_OPEN = re.compile(r"^(\s*).*\bfunction\b\s*([\w.:]*)\s*\(")


def lua_functions(lines):
    for i, line in enumerate(lines):
        m = LUA_OPEN.match(line)
        if not m or re.search(r"\bend\b[\s,)]*$", line):
            continue
        indent = m.group(1)
        for j in range(i + 1, len(lines)):
            rest = lines[j][len(indent):] if lines[j].startswith(indent) else None
            if rest is not None and re.match(r"end\b", rest):
                yield (m.group(2) or "(anonymous)"), i + 1, j - i + 1
                break


def main(argv):
    limit = 60
    if argv[:1] == ["--max"]:
        limit, argv = int(argv[1]), argv[2:]
    roots = [Path(p) for p in (argv or ["engine", "lua"])]
    files = []
    for r in roots:
        files += [r] if r.is_file() else sorted(list(r.rglob("*.c")) + list(r.rglob("*.lua")))
    found = 0
    for f in files:
        lines = f.read_text(errors="replace").split("\n")
        funcs = c_functions(lines) if f.suffix == ".c" else lua_functions(lines)
        for name, line, n in funcs:
            if n > limit:
                print(f"{f}:{line}: {name}: {n} lines")
                found += 1
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

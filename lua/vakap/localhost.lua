-- vakap.localhost: the machine vakap runs on, as operator code (and the
-- built-in components and ops) may use it.  It has the methods of a site
-- whose host is "local" -- spawn, feed, tar, extract, stat, which,
-- capture, exec -- and the few file operations a restore needs here:
-- read, write, rename, remove, temp_path.  An object without fields:
-- nothing in it can be set or replaced.
local fs = require "vakap.fs"
local log = require "vakap.log"
local proc = require "vakap.proc"
local sandbox = require "vakap.sandbox"
local sitemod = require "vakap.site"
local util = require "vakap.util"

local here = sitemod.new({ name = "localhost", host = "local" }, {})

local methods = {}

for _, name in ipairs { "spawn", "feed", "tar", "extract", "stat", "which" } do
	methods[name] = function(_, ...)
		return here[name](here, ...)
	end
end

-- capture(argv...) -> the output without trailing newlines; raises at
-- the caller's line when the command cannot run or fails
function methods.capture(_, ...)
	local out, err = sitemod.output(here, sitemod.argv(...))
	if not out then error(err, 2) end
	return util.chomp(out)
end

-- exec(argv...) -> true; raises as capture does
function methods.exec(_, ...)
	local argv = sitemod.argv(...)
	local out, err = sitemod.output(here, argv)
	if not out then error(err, 2) end
	if out ~= "" then log.debug("localhost: %s: %s", argv[1], util.chomp(out)) end
	return true
end

-- read(path) -> stream of the file's bytes | nil, err
function methods.read(_, path)
	return fs.source(path)
end

-- write(stream, path [, { mode, progress }]) -> bytes | nil, err
function methods.write(_, s, path, opts)
	return fs.write(s, path, opts)
end

-- rename(from, to [, { replace }]) -> true | nil, err; never replaces
-- unless told to
function methods.rename(_, from, to, opts)
	return fs.rename(from, to, opts)
end

-- remove(path) -> true | nil, err
function methods.remove(_, path)
	return fs.remove(path)
end

-- temp_path(what) -> a path no other run uses, in $TMPDIR (or /tmp)
function methods.temp_path(_, what)
	local dir = os.getenv("TMPDIR") or "/tmp"
	return ("%s/vakap-%s-%d-%d"):format(dir, what, proc.pid(), math.floor(proc.clock() * 1e6))
end

return sandbox.object(methods, "vakap.localhost")

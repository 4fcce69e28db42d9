-- The environments operator files run in, and the read-only views of what
-- they are given.  A file sees the standard library's harmless parts,
-- copied, and the names it is offered; reading an unknown name or
-- assigning a global is an error at the line that does it.  What it is
-- given that the engine or another file also sees (the `vakap` table, a
-- run's ctx, a site's configuration) comes as a read-only view, so that
-- no file can change what another file or the engine sees.
local proc = require "vakap.proc"
local schema = require "vakap.schema"
local util = require "vakap.util"

local M = {}

local function copy(t)
	local c = {}
	for k, v in pairs(t) do c[k] = v end
	return c
end
M.copy = copy

-- Strings share one metatable, whose __index is the string library the
-- engine itself calls: no file may reach it (getmetatable("") gives this
-- word instead of the table).
do
	local mt = getmetatable("")
	if type(mt) == "table" then mt.__metatable = "the string metatable is not for operator files" end
end

-- What every restricted environment offers: the parts of the standard
-- library that touch nothing outside the program, copied so that a file
-- that changes them changes only its own.
function M.base_env()
	return {
		assert = assert, error = error, ipairs = ipairs, next = next,
		pairs = pairs, pcall = pcall, select = select, tonumber = tonumber,
		tostring = tostring, type = type, xpcall = xpcall,
		rawequal = rawequal, rawget = rawget, rawlen = rawlen,
		setmetatable = setmetatable, getmetatable = getmetatable,
		string = copy(string), table = copy(table), math = copy(math), utf8 = copy(utf8),
		os = { time = os.time, date = os.date, clock = os.clock, getenv = os.getenv },
	}
end

-- An environment exposing `names` (plus the base), where reading an unknown
-- name or assigning a global is an error at the line that does it.
-- on_assign(t, k, v) takes assignments instead; `assigned` is read first.
function M.new(names, on_assign, assigned)
	local env = M.base_env()
	for k, v in pairs(names) do env[k] = v end
	return setmetatable({}, {
		__index = function(_, k)
			local v = assigned and assigned[k]
			if v == nil then v = env[k] end
			if v == nil then
				local known = util.sorted_keys(env)
				error(("unknown name '%s'%s"):format(tostring(k), schema.suggest(tostring(k), known)), 2)
			end
			return v
		end,
		__newindex = function(t, k, v)
			if on_assign then return on_assign(t, k, v) end
			error(("assignment to global '%s': declare it 'local'"):format(tostring(k)), 2)
		end,
	})
end

-- How long one file may take to load (seconds): declarations are quick;
-- a file still running then has a loop that never ends.
M.load_seconds = 10

-- Where the innermost Lua code on the stack is, from a hook or a message
-- handler: "file:line", or nil.
local function innermost(from)
	for level = from, from + 30 do
		local info = debug.getinfo(level, "Sl")
		if not info then return nil end
		if info.what ~= "C" and info.currentline > 0 then
			return ("%s:%d"):format(info.short_src, info.currentline)
		end
	end
	return nil
end

-- A file's error as the operator can act on it: always "file:line:
-- message", whatever it raised (nil, a table, a bare "stack overflow").
local function located(e)
	if type(e) == "string" and e:find("^[^\n]-:%d+: ") then return e end
	local where = innermost(3) or "?"
	if type(e) ~= "string" then
		return ("%s: raised %s instead of a message: write error(\"what went wrong\")"):format(where,
			e == nil and "nil" or "a " .. type(e))
	end
	return ("%s: %s"):format(where, e)
end

-- A hook that stops a file that runs too long, or once SIGINT or SIGTERM
-- arrived, naming where it was.
local function watchdog(chunkname)
	local deadline = proc.clock() + M.load_seconds
	return function()
		local why = proc.interrupted() and "interrupted while it was loading"
			or proc.clock() > deadline and ("still running after %g s: declarations must not loop for ever")
				:format(M.load_seconds)
		if why then error(("%s: %s"):format(innermost(3) or chunkname:gsub("^@", ""), why), 0) end
	end
end

-- Run Lua source in env; errors come out as "chunk:line: message".
function M.run(src, chunkname, env)
	local chunk, cerr = load(src, chunkname, "t", env)
	if not chunk then error(cerr, 0) end
	debug.sethook(watchdog(chunkname), "", 100000)
	local ok, rerr = xpcall(chunk, located)
	debug.sethook()
	if not ok then error(rerr, 0) end
end

-- The whole of a file; raises when it cannot be read.
function M.read(path)
	local f, err = io.open(path, "rb")
	if not f then error(err, 0) end
	local src = f:read("a")
	f:close()
	return src
end

function M.run_file(path, env)
	M.run(M.read(path), "@" .. path, env)
end

-- Read-only views: [raw table] = { [label] = view }
local views = setmetatable({}, { __mode = "k" })

local readonly

-- A value as a view shows it: a plain table (one without a metatable) as
-- a read-only view of it, labelled label.key; anything else as it is.  A
-- table with a metatable is an object that guards its own state (a
-- stream, the repository, a component instance).
local function shown(v, label, k)
	if type(v) == "table" and getmetatable(v) == nil then return readonly(v, label .. "." .. tostring(k)) end
	return v
end

local function make_view(t, label)
	local view = {}
	local function iter(_, k)
		local nk, nv = next(t, k)
		if nk == nil then return nil end
		return nk, shown(nv, label, nk)
	end
	return setmetatable(view, {
		__index = function(_, k) return shown(t[k], label, k) end,
		__newindex = function(_, k)
			error(("%s is read-only: cannot set '%s' (keep your own values in a local)")
				:format(label, tostring(k)), 2)
		end,
		__len = function() return #t end,
		__pairs = function() return iter, view, nil end,
		__metatable = "read-only",
	})
end

-- readonly(t, label) -> a view of t, and of every plain table it holds,
-- that reads as t does (fields, #, ipairs, pairs) and raises on a write,
-- naming label ("vakap.json").  nil stays nil.
function readonly(t, label)
	if t == nil then return nil end
	label = label or "this table"
	local by_label = views[t]
	if not by_label then
		by_label = {}
		views[t] = by_label
	end
	local view = by_label[label]
	if not view then
		view = make_view(t, label)
		by_label[label] = view
	end
	return view
end
M.readonly = readonly

-- An object whose methods are `methods` and which has no state a caller
-- can reach or change: writes raise, its metatable is hidden.
function M.object(methods, what)
	return setmetatable({}, {
		__index = methods,
		__newindex = function(_, k)
			error(("%s is read-only: cannot set '%s'"):format(what, tostring(k)), 2)
		end,
		__metatable = what,
	})
end

return M

-- The API operators write against, and vakap's own components and ops with
-- them: `op "name" { ... }`, `component "name" { ... }`, and the `vakap`
-- table of primitives and helpers their code may call.  Operator files
-- see `vakap` read-only (sandbox.readonly); what it holds is all a
-- built-in component or op may use besides the site and ctx it is given.
local encryption = require "vakap.encryption"
local log = require "vakap.log"
local proc = require "vakap.proc"
local retention = require "vakap.retention"
local schema = require "vakap.schema"
local util = require "vakap.util"

local M = {}

-- Where the code that called the function calling this one is: "file:line".
function M.where(level)
	local info = debug.getinfo((level or 2) + 1, "Sl")
	if not info or info.currentline < 0 then return "?" end
	return ("%s:%d"):format(info.short_src, info.currentline)
end

local function check_fields(kind, name, def, fields, where)
	local label = ("%s: %s '%s'"):format(where, kind, name)
	if type(def) ~= "table" then
		error(("%s must be declared with a table: %s \"%s\" { ... }"):format(label, kind, name), 0)
	end
	local checked, err = schema.check(fields, def, label)
	if not checked then error(err, 0) end
	return checked
end

local op_fields = {
	description = { type = "string", required = true },
	run = { type = "function", required = true },
	-- whether the last run is stored under SITE/_ops/NAME.json
	record = { type = "boolean", default = true },
	-- whether it takes the site's lock: one such run at a time per site
	lock = { type = "boolean", default = false },
	-- report(results, ctx) -> text, exit code: replaces the default report
	report = { type = "function" },
	-- plan(site, ctx) -> what a dry run (-n) says would happen
	plan = { type = "function" },
}

-- op "name" { description = "...", run = function(site, ctx) ... end }
function M.op(name, level)
	local where = M.where((level or 1) + 1)
	if not util.valid_name(name) then
		error(("%s: op name %s must be letters, digits, '.', '_' and '-'"):format(where, util.display(name)), 0)
	end
	return function(def)
		local op = check_fields("op", name, def, op_fields, where)
		op.name, op.where = name, where
		return op
	end
end

local component_fields = {
	description = { type = "string", required = true },
	options = { type = "table", required = true },
	-- backup(self, site, ctx [, part]) -> stream, { ext = "sql", compressed = false }
	backup = { type = "function", required = true },
	-- restore(self, site, stream, { target =, part =, manifest = }) -> true | nil, err
	--   part: the part the object was stored as (from its manifest), or nil
	restore = { type = "function", required = true },
	-- parts(self, site, ctx) -> { { name = "db1", ... }, ... } | false | nil, err
	--   A component that stores several objects (one per database) lists
	--   them: backup is then called once per part, one stream at a time,
	--   and each part is stored, and its manifest written, on its own.
	--   false: this instance stores one object, as without parts.
	parts = { type = "function" },
	-- validate(options) -> true | nil, problem: checks across options,
	--   made where the component is declared in sites.d
	validate = { type = "function" },
	-- inspect(self, stream, manifest) -> { what was found } | nil, problem:
	--   read a backup's plaintext to its end and check its structure
	--   (vakap verify); without it, the plaintext is only read through
	inspect = { type = "function" },
	-- check(self, site) -> true | nil, problem
	check = { type = "function" },
	-- describe(self) -> a short text for `list` and dry runs
	describe = { type = "function" },
}

-- A retention = { ... } table (vakap.lua, a site, a component): its
-- rules known and typed, and keeping something.  -> true | nil, message
function M.check_retention(v)
	local p, err = schema.check(retention.spec, v, "retention")
	if not p then return nil, err:gsub("^retention: ", "") end
	return retention.check_policy(p)
end

-- Options every component has.
M.common_options = {
	name = { type = "name" },
	retention = { type = "table", check = M.check_retention },
}

-- component "name" { description, options = {...}, backup = fn, restore = fn }
function M.component(name, level)
	local where = M.where((level or 1) + 1)
	if not util.valid_name(name) then
		error(("%s: component type %s must be letters, digits, '.', '_' and '-'"):format(where, util.display(name)), 0)
	end
	return function(def)
		local c = check_fields("component", name, def, component_fields, where)
		local ok, err = schema.check_spec(c.options, ("%s: component '%s'"):format(where, name))
		if not ok then error(err, 0) end
		for k, opt in pairs(M.common_options) do
			if c.options[k] then
				error(("%s: component '%s': option '%s' is common to all components"):format(where, name, k), 0)
			end
			c.options[k] = opt
		end
		c.type, c.where = name, where
		return c
	end
end

-- Read s to its end, discarding it, keeping its last `keep` bytes.
-- -> bytes, tail | nil, err
local function drain(s, keep)
	local n, tail = 0, ""
	keep = keep or 0
	while true do
		local chunk, err = s:read(131072)
		if not chunk then
			if err then return nil, err end
			return n, tail
		end
		n = n + #chunk
		if keep > 0 then tail = (tail .. chunk):sub(-keep) end
	end
end

-- An inspect for dumps that end with a line saying they are complete:
-- inspect(self, stream) -> { bytes, complete = true } | nil, problem
local function ends_with(marker, what)
	return function(_, s)
		local n, tail = drain(s, 512)
		if not n then return nil, tail end
		if not tail:find(marker, 1, true) then
			return nil, ("%s does not end with its completion line (\"%s\"): it was cut short"):format(what, marker)
		end
		return { bytes = n, complete = true }
	end
end

-- What sites.d files see of it: declarations are data, so only pure
-- helpers (no primitive, no command, no file, no clock of the run).
function M.declarative(v)
	return {
		version = v.version, json = v.json, duration = v.duration, human_size = v.human_size,
		human_duration = v.human_duration, iso = v.iso, stamp = v.stamp, parse_time = v.parse_time,
		sorted_keys = v.sorted_keys,
	}
end

-- The `vakap` table operators' files see.
M.vakap = {
	version = nil, -- set by the cli
	op = M.op,
	component = M.component,
	json = { encode = util.json.encode, decode = util.decode, null = util.json.null },
	-- the stream primitives
	stream = require "vakap.stream",
	compress = require "vakap.compress",
	hash = require "vakap.hash",
	tar = require "vakap.tar",
	gpg = require "vakap.gpg",
	-- sizes, durations, times
	duration = util.duration,
	human_size = util.human_size,
	human_duration = util.human_duration,
	iso = util.iso,
	now = util.now, -- the run's clock, in seconds (VAKAP_NOW in tests)
	clock = proc.clock, -- a monotonic clock, in seconds, for durations
	stamp = util.stamp, -- seconds -> "20261121T220000Z"
	parse_time = util.parse_time, -- a stamp, or an ISO time or date -> seconds | nil, err
	sorted_keys = util.sorted_keys,
	log = { debug = log.debug, info = log.info, warn = log.warn, error = log.error },
	-- reading a backup's plaintext (a component's inspect)
	drain = drain,
	ends_with = ends_with,
	-- the machine vakap runs on
	localhost = require "vakap.localhost",
	-- what the database components share: their clients' argument lists
	db = require "vakap.dbclient",
	-- the GPG keys of an encryption (ctx.repository:encryption(site))
	encryption = { keys = encryption.keys, expiry_warning = encryption.expiry_warning },
	-- which backups a retention policy keeps: apply(policy, backups) ->
	-- keep, forget, reasons
	retention = { apply = retention.apply },
}

return M

-- The site an op runs on: what the operator declared (name, host, tags,
-- root, vars, components) and the methods an op uses to act on its host.
-- Methods that run commands raise on failure, like a failed task in
-- Ansible: the op fails for this site and the run goes on with the others.
local hosts = require "vakap.hosts"
local log = require "vakap.log"
local sandbox = require "vakap.sandbox"
local util = require "vakap.util"

local M = {}

local Site = {}
Site.__index = Site

-- The run each site belongs to (its settings say how to reach hosts),
-- kept out of the ops' reach.
local runs = setmetatable({}, { __mode = "k" })

-- rec: the site as loaded by config; ctx: the run.  An op sees the
-- declaration read-only: config (the record), tags and vars are views.
function M.new(rec, ctx)
	local self = setmetatable({
		name = rec.name, host = rec.host, tags = sandbox.readonly(rec.tags, "site.tags"), root = rec.root,
		vars = sandbox.readonly(rec.vars, "site.vars"), description = rec.description,
		components = sandbox.readonly(rec.components, "site.components"), config = sandbox.readonly(rec, "site.config"),
	}, Site)
	runs[self] = ctx
	return self
end

-- The host connection, opened at first use and kept for the whole run.
function Site:connection()
	if not self._conn then
		local ctx = runs[self]
		local h, err = hosts.open(self.host, ctx and ctx.settings)
		if not h then error(err, 0) end
		self._conn = h
	end
	return self._conn
end

-- argv from site:capture("git", "-C", dir) or site:capture({ "git", ... })
local function argv_of(...)
	local argv = select("#", ...) == 1 and type(...) == "table" and ... or table.pack(...)
	local out = {}
	for i = 1, argv.n or #argv do
		local a = argv[i]
		if type(a) == "number" then a = tostring(a) end
		if type(a) ~= "string" then
			error(("command argument %d is %s, not a string"):format(i, a == nil and "nil" or "a " .. type(a)), 3)
		end
		out[i] = a
	end
	if #out == 0 then error("empty command", 3) end
	return out
end

-- spawn(argv [, opts]) -> stream of the command's output | nil, err
function Site:spawn(argv, opts)
	return self:connection():spawn(argv, opts)
end

-- feed(argv, stream [, opts]) -> bytes | nil, err
function Site:feed(argv, stream, opts)
	return self:connection():feed(argv, stream, opts)
end

-- tar(path [, opts]) -> tar stream of a directory on the host | nil, err
function Site:tar(path, opts)
	return self:connection():tar(path, opts)
end

-- extract(stream, path [, opts]) -> true | nil, err
function Site:extract(stream, path, opts)
	return self:connection():extract(stream, path, opts)
end

function Site:stat(path)
	return self:connection():stat(path)
end

function Site:which(cmd)
	return self:connection():which(cmd)
end

-- The whole output of argv run on the site's host.  -> output | nil, err
local function output(self, argv)
	local s, err = self:spawn(argv)
	if not s then return nil, err end
	local out, rerr = s:readall()
	s:close()
	return out, rerr
end

-- capture(argv...) -> the command's output without trailing newlines;
-- raises when the command cannot run or fails.
function Site:capture(...)
	local out, err = output(self, argv_of(...))
	if not out then error(err, 2) end
	return util.chomp(out)
end

-- exec(argv...) -> true; its output is logged with -v.  Raises on failure.
function Site:exec(...)
	local argv = argv_of(...)
	local out, err = output(self, argv)
	if not out then error(err, 2) end
	if out ~= "" then log.debug("%s: %s: %s", self.name, argv[1], util.chomp(out)) end
	return true
end

-- For vakap.localhost, which offers capture and exec too.
M.argv, M.output = argv_of, output

-- The component named `name`, or nil.
function Site:component(name)
	for _, c in ipairs(self.components) do
		if c.name == name then return c end
	end
	return nil
end

function Site:close()
	if self._conn then self._conn:close() end
	self._conn = nil
end
Site.__close = Site.close

return M

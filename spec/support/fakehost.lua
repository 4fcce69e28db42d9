-- A site on a host that runs nothing: every command is recorded and
-- answered by a function, for specs of the argument lists components
-- build.  The site is vakap's own (site:capture and the rest are the real
-- methods); only the host under it is stood in for.
local schema = require "vakap.schema"
local sitemod = require "vakap.site"

local M = {}

-- answer(argv) -> output | nil, err (default: ""); missing: commands
-- `which` does not find.  -> site, host (host.ran: each argv; host.fed:
-- what each fed command read)
function M.site(answer, missing)
	answer = answer or function() return "" end
	local host = { ran = {}, fed = {} }
	function host.spawn(_, argv)
		host.ran[#host.ran + 1] = argv
		local out, err = answer(argv)
		if out == nil then return nil, err end
		return require("vakap.stream").string(out)
	end
	function host.feed(_, argv, s)
		host.ran[#host.ran + 1] = argv
		local data = assert(s:readall())
		host.fed[#host.fed + 1] = data
		local out, err = answer(argv)
		if out == nil then return nil, err end
		return #data
	end
	function host.which(_, cmd)
		if missing and missing[cmd] then return nil, cmd .. ": command not found in PATH" end
		return true
	end
	function host.close() end
	local site = sitemod.new({ name = "acme", host = "fake", components = {} }, {})
	site._conn = host
	return site, host
end

-- Run the backup of c (of its part, if given) on a recording site.
-- -> the argv it ran, and what backup said of it
function M.backup(c, part)
	local site, host = M.site()
	local s, info = c.def.backup(c, site, {}, part)
	if not s then error("backup failed: " .. tostring(info), 2) end
	s:close()
	if info.command ~= host.ran[1] then error("info.command is not the command run", 2) end
	return host.ran[1], info
end

-- An instance of the component def with options checked as sites.d checks
-- them.  -> instance | nil, err
function M.instance(def, opts)
	local o, err = schema.check(def.options, opts, def.type)
	if not o then return nil, err end
	if def.validate then
		local ok, why = def.validate(o)
		if not ok then return nil, why end
	end
	return { name = opts.name or def.type, type = def.type, options = o, def = def }
end

return M

-- The built-in components and ops are written against the operator's API
-- alone: each is loaded as a components.d or ops.d file is, in a restricted
-- environment with no require, and may name no global but what that
-- environment offers (the base library's harmless parts, `vakap`, and
-- `op` or `component`).  A built-in that reached a private module
-- (require "vakap.fs", io, package, debug) fails here.
local config = require "vakap.config"
local sandbox = require "vakap.sandbox"
local tmpdir = require "tmpdir"

-- The globals a chunk reads and writes, from luac's listing: -> reads
-- (set of names), writes (list of names), or nil, error
local function globals_of(path)
	local out, ok = tmpdir.sh("luac5.4 -p -l " .. tmpdir.quote(path) .. " 2>&1")
	if not ok then return nil, out end
	local reads, writes = {}, {}
	for op, name in out:gmatch("\t([GS]ETTABUP)[^\n]-; _ENV \"([^\"]+)\"") do
		if op == "GETTABUP" then reads[name] = true else writes[#writes + 1] = name end
	end
	return reads, writes
end

-- What a declaration file of this kind may name.
local function allowed(kind)
	local names = sandbox.base_env()
	names.vakap, names[kind] = true, true
	return names
end

-- The names in reads that the environment does not offer, sorted.
local function unknown(reads, kind)
	local ok, out = allowed(kind), {}
	for name in pairs(reads) do
		if not ok[name] then out[#out + 1] = name end
	end
	table.sort(out)
	return out
end

local function builtin_path(kind, name)
	local dir = kind == "op" and "ops" or "components"
	return assert(package.searchpath(("vakap.%s.%s"):format(dir, name), package.path))
end

local function each_builtin(fn)
	for _, name in ipairs(config.builtin_components) do fn("component", name) end
	for _, name in ipairs(config.builtin_ops) do fn("op", name) end
end

describe("the built-in components and ops", function()
	it("are every file of lua/vakap/components and lua/vakap/ops", function()
		for kind, list in pairs { component = config.builtin_components, op = config.builtin_ops } do
			local dir = builtin_path(kind, list[1]):match("^(.*)/[^/]+$")
			local files = {}
			for _, n in ipairs(tmpdir.names(dir)) do files[#files + 1] = n:match("^(.+)%.lua$") end
			local names = {}
			for i, n in ipairs(list) do names[i] = n end
			table.sort(names)
			assert.same(files, names)
		end
	end)

	it("each load in the operator's environment and declare what their file is named after", function()
		each_builtin(function(kind, name)
			local decl = config.builtin(kind, name)
			assert.equal(name, kind == "op" and decl.name or decl.type)
			assert.truthy(decl.where:find(("/%s.lua:%%d+$"):format(name)), decl.where)
			assert.is_nil(decl.file)
		end)
	end)

	it("name no global the operator's environment does not offer, and set none", function()
		each_builtin(function(kind, name)
			local reads, writes = globals_of(builtin_path(kind, name))
			assert.is_table(reads, writes)
			assert.same({}, unknown(reads, kind), ("%s %s names globals operators do not have"):format(kind, name))
			assert.same({}, writes, ("%s %s sets globals"):format(kind, name))
		end)
	end)

	it("call no require", function()
		each_builtin(function(kind, name)
			local src = tmpdir.read(builtin_path(kind, name))
			assert.is_nil(src:find("%f[%w_]require%s*[%(\"']"), ("%s %s calls require"):format(kind, name))
		end)
	end)

	describe("the check itself", function()
		local dir
		before_each(function() dir = tmpdir.make() end)
		after_each(function() tmpdir.remove(dir) end)

		it("catches a private module reached from inside a function, where loading alone would not", function()
			local path = tmpdir.write(dir, "x.lua", [[
op "x" {
  description = "x",
  run = function(site)
    local fs = require "vakap.fs"
    io.write(package.path)
    return fs.stat(site.root)
  end,
}
]])
			local reads, writes = globals_of(path)
			assert.same({ "io", "package", "require" }, unknown(reads, "op"))
			assert.same({}, writes)
		end)

		it("catches a global set", function()
			local reads, writes = globals_of(tmpdir.write(dir, "y.lua", 'helper = 1\ncomponent "y" { }\n'))
			assert.same({}, unknown(reads, "component"))
			assert.same({ "helper" }, writes)
		end)
	end)
end)

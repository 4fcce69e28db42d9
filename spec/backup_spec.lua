-- The backup op, against a real directory storage, with components that
-- store one object or several parts (as mysql and postgres do with all =
-- true).
local backup = require("vakap.config").builtin("op", "backup")
local catalog = require "vakap.catalog"
local compress = require "vakap.compress"
local repository = require "vakap.repository"
local stream = require "vakap.stream"
local tmpdir = require "tmpdir"
local util = require "vakap.util"
local vakap = require("vakap.api").vakap

describe("the backup op", function()
	local dir = tmpdir.dir_storage()
	before_each(dir.setup)
	after_each(dir.teardown)
	local calls

	before_each(function()
		calls = {}
	end)

	local function ctx(storage)
		local settings = { compress = "zstd" }
		return { settings = settings, version = "test", progress = function() end,
			repository = repository.open(storage or dir.storage, { settings = settings, version = "test" }) }
	end

	-- A component whose parts() returns `parts` (a function: what it
	-- returns), and whose backup of part p is "data of p", or fails for
	-- the parts named in `failing`.
	local function component(parts, failing)
		local def = vakap.component "multi" {
			description = "test",
			options = {},
			parts = parts,
			backup = function(_, _, _, part)
				local name = part and part.name or "(one)"
				-- what is stored by the time this part's stream is asked for
				local listed = dir.storage:list("s/") or {}
				calls[#calls + 1] = { part = name, stored = #listed }
				if failing and failing[name] then return nil, name .. " failed to dump" end
				return stream.string("data of " .. name), { ext = "sql", command = { "dump", name } }
			end,
			restore = function() return true end,
		}
		return { name = "db", type = "multi", options = {}, def = def }
	end

	local function site(...)
		return { name = "s", host = "local", config = {}, components = { ... } }
	end

	local function manifests()
		local out = {}
		for _, e in ipairs(assert(dir.storage:list("s/"))) do
			if e.key:match("%.json$") and not e.key:match("^s/_ops/") then
				out[#out + 1] = util.decode(assert(dir.storage:get_string(e.key)))
			end
		end
		table.sort(out, function(a, b) return a.object < b.object end)
		return out
	end

	local function content(key)
		local s <close> = compress.unzstd(assert(dir.storage:get(key)))
		return s:readall()
	end

	it("stores each part in its own folder with its own manifest, one stream after the other", function()
		local c = component(function() return { { name = "shop", database = "shop" }, { name = "blog", database = "blog" } } end)
		local r, err = backup.run(site(c), ctx())
		assert.is_nil(err)
		assert.same({ { "db", "shop", true }, { "db", "blog", true } },
			{ { r.components[1].component, r.components[1].part, r.components[1].ok },
				{ r.components[2].component, r.components[2].part, r.components[2].ok } })
		-- blog's stream was asked for once shop's data and manifest were stored
		assert.same({ { part = "shop", stored = 0 }, { part = "blog", stored = 2 } }, calls)
		local m = manifests()
		assert.same({ "blog", "shop" }, { m[1].part.name, m[2].part.name })
		assert.same({ name = "shop", database = "shop" }, m[2].part)
		assert.equal(("s/db/shop/%s.sql.zst"):format(m[2].stamp), m[2].object)
		assert.same({ "dump", "shop" }, m[2].source.command)
		assert.equal("data of shop", content(m[2].object))
		assert.equal("data of blog", content(m[1].object))
		local cat = catalog.scan("s", assert(dir.storage:list("s/")))
		assert.same({ 0, 1, 1 }, { #cat.components.db.backups, #cat.components.db.parts.shop.backups,
			#cat.components.db.parts.blog.backups })
	end)

	it("stores one object, as without parts, when parts() returns false", function()
		local c = component(function() return false end)
		local r, err = backup.run(site(c), ctx())
		assert.is_nil(err)
		assert.is_nil(r.components[1].part)
		local m = manifests()
		assert.equal(1, #m)
		assert.is_nil(m[1].part)
		assert.equal(("s/db/%s.sql.zst"):format(m[1].stamp), m[1].object)
		assert.equal("data of (one)", content(m[1].object))
	end)

	it("fails only the part whose dump fails, and stores nothing of it", function()
		local c = component(function() return { { name = "a" }, { name = "bad" }, { name = "c" } } end, { bad = true })
		local r, err = backup.run(site(c), ctx())
		assert.equal("db/bad: bad failed to dump", err)
		assert.same({ component = "db", part = "bad", ok = false, error = "bad failed to dump" }, r.components[2])
		assert.same({ true, true }, { r.components[1].ok, r.components[3].ok })
		local m = manifests()
		assert.same({ "a", "c" }, { m[1].part.name, m[2].part.name })
		assert.is_nil(dir.storage:list("s/db/bad/")[1])
	end)

	it("fails the component when its parts cannot be listed, and goes on with the others", function()
		local broken = component(function() return nil, "cannot connect to the server" end)
		local other = component(function() return false end)
		other.name = "other"
		local r, err = backup.run(site(broken, other), ctx())
		assert.equal("db: cannot connect to the server", err)
		assert.same({ component = "db", ok = false, error = "cannot connect to the server" }, r.components[1])
		assert.same({ "other", true }, { r.components[2].component, r.components[2].ok })
	end)

	it("fails the component when parts() raises", function()
		local r, err = backup.run(site(component(function() error("boom", 0) end)), ctx())
		assert.equal("db: boom", err)
		assert.is_false(r.components[1].ok)
	end)

	it("fails a component that finds nothing to back up", function()
		local _, err = backup.run(site(component(function() return {} end)), ctx())
		assert.equal("db: found nothing to back up", err)
		assert.same({}, manifests())
	end)

	it("refuses two parts of the same name, storing nothing", function()
		local _, err = backup.run(site(component(function() return { { name = "x" }, { name = "x" } } end)), ctx())
		assert.equal("db: two parts are named 'x'", err)
		assert.same({}, calls)
	end)

	it("refuses a part without a name", function()
		local _, err = backup.run(site(component(function() return { { database = "x" } } end)), ctx())
		assert.equal("db: multi: parts() returned a part 1 without a name", err)
	end)

	it("hints each part's upload with the size of that part's previous backup", function()
		assert.is_true(dir.storage:put_string("s/db/shop/20200101T000000Z.sql.zst", "12345"))
		assert.is_true(dir.storage:put_string("s/db/shop/20200101T000000Z.json", "{}"))
		local hints = {}
		local c = ctx(setmetatable({ put = function(_, key, st, opts)
			hints[key:match("^s/db/(%w+)/")] = opts.size_hint or false
			return dir.storage:put(key, st, opts)
		end }, { __index = dir.storage }))
		local _, err = backup.run(site(component(function() return { { name = "shop" }, { name = "blog" } } end)), c)
		assert.is_nil(err)
		assert.same({ shop = 5, blog = false }, hints)
	end)

	it("reports a part as COMPONENT/PART", function()
		local text = backup.report({ { site = "s", ok = false, result = { components = {
			{ component = "db", part = "shop", ok = true, size = 10, duration = 1, object = "s/db/shop/x.sql.zst" },
			{ component = "db", part = "blog", ok = false, error = "denied" },
		} } } })
		assert.truthy(text:find("s%s+db/shop%s+ok"))
		assert.truthy(text:find("s%s+db/blog%s+FAILED%s+denied"))
	end)
end)

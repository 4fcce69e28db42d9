-- The rotate op on the parts of a component (the databases of all =
-- true), against a real directory dir.storage: each part is its own series.
local repository = require "vakap.repository"
local rotate = require("vakap.config").builtin("op", "rotate")
local tmpdir = require "tmpdir"
local util = require "vakap.util"

describe("the rotate op", function()
	local dir = tmpdir.dir_storage()
	before_each(dir.setup)
	after_each(dir.teardown)
	local now = util.parse_time("2026-11-22T12:00:00Z")
	local day = 86400

	-- a backup in folder (site/component[/part]) at time t
	local function backup(folder, t)
		local stamp = util.stamp(t)
		assert.is_true(dir.storage:put_string(("%s/%s.sql.zst"):format(folder, stamp), "data"))
		assert.is_true(dir.storage:put_string(("%s/%s.json"):format(folder, stamp), "{}"))
	end

	local function site()
		return { name = "s", config = {}, component = function() return nil end }
	end

	local function ctx()
		local settings = { retention = { last = 1 } }
		return { now = now, settings = settings, repository = repository.open(dir.storage, { settings = settings }) }
	end

	local function keys()
		local out = {}
		for _, e in ipairs(assert(dir.storage:list("s/"))) do out[#out + 1] = e.key end
		table.sort(out)
		return out
	end

	it("keeps the newest backups of each part, by the component's policy", function()
		for _, part in ipairs { "blog", "shop" } do
			backup("s/mysql/" .. part, now - 3 * day)
			backup("s/mysql/" .. part, now - 2 * day)
		end
		backup("s/mysql/old", now - 30 * day)
		local r, err = rotate.run(site(), ctx())
		assert.is_nil(err)
		local rows = {}
		for _, row in ipairs(r.components) do rows[#rows + 1] = { row.component, row.part, #row.kept, #row.forgotten } end
		assert.same({ { "mysql", "blog", 1, 1 }, { "mysql", "old", 1, 0 }, { "mysql", "shop", 1, 1 } }, rows)
		local s2 = util.stamp(now - 2 * day)
		assert.same({
			("s/mysql/blog/%s.json"):format(s2), ("s/mysql/blog/%s.sql.zst"):format(s2),
			("s/mysql/old/%s.json"):format(util.stamp(now - 30 * day)),
			("s/mysql/old/%s.sql.zst"):format(util.stamp(now - 30 * day)),
			("s/mysql/shop/%s.json"):format(s2), ("s/mysql/shop/%s.sql.zst"):format(s2),
		}, keys())
	end)

	it("rotates a component's own backups beside its parts'", function()
		backup("s/mysql", now - 5 * day)
		backup("s/mysql", now - 4 * day)
		backup("s/mysql/shop", now - day)
		local r = rotate.run(site(), ctx())
		assert.same({ { nil, 1 }, { "shop", 0 } },
			{ { r.components[1].part, #r.components[1].forgotten }, { r.components[2].part, #r.components[2].forgotten } })
	end)

	it("removes a part's data left without a manifest once a day old", function()
		backup("s/pg/shop", now - 3 * day)
		local stale = "s/pg/shop/" .. util.stamp(now - 2 * day) .. ".dump"
		local fresh = "s/pg/shop/" .. util.stamp(now - 60) .. ".dump"
		assert.is_true(dir.storage:put_string(stale, "partial"))
		assert.is_true(dir.storage:put_string(fresh, "partial"))
		assert.is_true(os.execute(("touch -d @%d %s/%s"):format(now - 2 * day, dir.root, stale)))
		assert.is_true(os.execute(("touch -d @%d %s/%s"):format(now - 60, dir.root, fresh)))
		local r = rotate.run(site(), ctx())
		assert.same({ stale }, r.components[1].orphans)
		assert.is_nil(dir.storage:list(stale)[1])
		assert.equal(fresh, dir.storage:list(fresh)[1].key)
	end)

	it("shows a part as COMPONENT/PART", function()
		local text = rotate.report({ { site = "s", ok = true, result = { components = {
			{ component = "mysql", part = "shop", kept = { {} }, forgotten = { {} }, orphans = {}, freed = 0 },
		} } } })
		assert.truthy(text:find("s%s+mysql/shop%s+keep 1, forgot 1"))
	end)
end)

-- The status op, run against a real directory storage.
local dir_storage = require "vakap.storage.dir"
local json = require("vakap.util").json
local repository = require "vakap.repository"
local status = require("vakap.config").builtin("op", "status")
local tmpdir = require "tmpdir"
local util = require "vakap.util"

describe("the status op", function()
	local root, storage
	local now = util.parse_time("2026-11-22T12:00:00Z")
	local day = 86400

	before_each(function()
		root = tmpdir.make()
		storage = dir_storage.open({ kind = "dir", path = root })
	end)

	after_each(function()
		tmpdir.remove(root)
	end)

	-- A backup of site/component at time t: its data, then its manifest.
	local function backup(site, component, t, data)
		local stamp = util.stamp(t)
		assert.is_true(storage:put_string(("%s/%s/%s.tar.zst"):format(site, component, stamp), data or "data"))
		assert.is_true(storage:put_string(("%s/%s/%s.json"):format(site, component, stamp),
			json.encode({ time = util.iso(t) })))
	end

	-- The same, of a part of a component (a database of mysql { all = true })
	local function backup_part(site, component, part, t, data)
		backup(site, component .. "/" .. part, t, data)
	end

	local function site(name, components, config)
		local list = {}
		for i, c in ipairs(components) do list[i] = { name = c[1], type = c[2] } end
		return { name = name, components = list, config = config or {} }
	end

	local function ctx(extra)
		local c = { now = now, settings = { stale_after = 26 * 3600 }, storage = storage }
		for k, v in pairs(extra or {}) do c[k] = v end
		-- ops see the storage through the repository only
		c.repository = repository.open(c.storage, { settings = c.settings })
		c.storage = nil
		return c
	end

	describe("run", function()
		it("reports a recent backup as ok, with its time, age and size", function()
			backup("acme", "files", now - 3600, "twelve bytes")
			local r = status.run(site("acme", { { "files", "files" } }), ctx())
			assert.same({
				components = { {
					component = "files", type = "files", backups = 1,
					time = util.iso(now - 3600), age = 3600, size = 12,
					object = "acme/files/" .. util.stamp(now - 3600) .. ".tar.zst",
					state = "ok",
				} },
				ops = {},
				stale_after = 26 * 3600,
			}, r)
		end)

		it("reports the newest of several backups", function()
			backup("acme", "db", now - 3 * day)
			backup("acme", "db", now - 2 * 3600)
			backup("acme", "db", now - day)
			local row = status.run(site("acme", { { "db", "command" } }), ctx()).components[1]
			assert.same({ 3, 7200, "ok" }, { row.backups, row.age, row.state })
		end)

		it("reports a backup older than stale_after as stale", function()
			backup("acme", "files", now - 27 * 3600)
			local row = status.run(site("acme", { { "files", "files" } }), ctx()).components[1]
			assert.same({ "stale", 27 * 3600 }, { row.state, row.age })
		end)

		it("reports a backup exactly stale_after old as ok", function()
			backup("acme", "files", now - 26 * 3600)
			local row = status.run(site("acme", { { "files", "files" } }), ctx()).components[1]
			assert.equal("ok", row.state)
		end)

		it("reports a component never backed up as missing", function()
			backup("acme", "files", now - 3600)
			local r = status.run(site("acme", { { "files", "files" }, { "db", "command" } }), ctx())
			assert.same({ component = "db", type = "command", backups = 0, state = "missing" }, r.components[2])
		end)

		it("does not count data without a manifest as a backup", function()
			assert.is_true(storage:put_string("acme/files/" .. util.stamp(now - 60) .. ".tar.zst", "partial"))
			backup("acme", "files", now - 30 * 3600)
			local row = status.run(site("acme", { { "files", "files" } }), ctx()).components[1]
			assert.same({ 1, "stale", 30 * 3600 }, { row.backups, row.state, row.age })
		end)

		it("reports every component missing when the site has nothing stored", function()
			backup("other", "files", now - 60)
			local r = status.run(site("acme", { { "files", "files" } }), ctx())
			assert.equal("missing", r.components[1].state)
		end)

		it("takes the site's stale_after over the setting, and the run's over both", function()
			backup("acme", "files", now - 3 * 3600)
			local s = site("acme", { { "files", "files" } }, { stale_after = 2 * 3600 })
			local r = status.run(s, ctx())
			assert.same({ "stale", 7200 }, { r.components[1].state, r.stale_after })
			r = status.run(s, ctx({ stale_after = 4 * 3600 }))
			assert.same({ "ok", 14400 }, { r.components[1].state, r.stale_after })
		end)

		it("calls broken a newest backup whose data object is gone", function()
			backup("acme", "files", now - 3600)
			os.remove(("%s/acme/files/%s.tar.zst"):format(root, util.stamp(now - 3600)))
			local row = status.run(site("acme", { { "files", "files" } }), ctx()).components[1]
			assert.equal("broken", row.state)
			assert.truthy(row.problem:find("data object is not", 1, true))
			local _, code = status.report({ { site = "acme", ok = true, result = { components = { row }, ops = {} } } })
			assert.equal(1, code)
		end)

		it("calls future a newest backup dated ahead of the clock, and exits 1", function()
			backup("acme", "files", now + 3 * day)
			local r = status.run(site("acme", { { "files", "files" } }), ctx())
			assert.equal("future", r.components[1].state)
			local _, code, summary = status.report({ { site = "acme", ok = true, result = r } })
			assert.same({ 1, "status: 0 ok, 0 stale, 0 missing, 1 dated in the future" }, { code, summary })
		end)

		it("shows a run that started and never ended as interrupted, and exits 1", function()
			local repo = repository.open(storage, {})
			assert.is_true(repo:record_run("acme", "backup", { ok = true }, now - day))
			os.execute(("touch -d @%d %s/acme/_ops/backup.ok.json"):format(now - day, root))
			-- a run whose process is gone: this machine, a pid no process has
			assert.is_true(storage:put_string("acme/_ops/backup.started.json", json.encode({
				time = util.iso(now - 3600), host = require("vakap.proc").hostname(), pid = 2 ^ 22 + 1 })))
			local r = status.run(site("acme", {}), ctx({ ops = { "backup" } }))
			assert.same({ "interrupted", false }, { r.ops[1].state, r.ops[1].ok })
			local text, code, summary = status.report({ { site = "acme", ok = true, result = r } })
			assert.truthy(text:find("op:backup%s+INTERRUPTED"))
			assert.same({ 1, "status: 0 ok, 0 stale, 0 missing, 1 op run interrupted" }, { code, summary })
		end)

		it("shows a run still going as running, and a record of an op no longer configured apart", function()
			assert.is_true(storage:put_string("acme/_ops/backup.started.json", json.encode({
				time = util.iso(now - 60), host = require("vakap.proc").hostname(), pid = require("vakap.proc").pid() })))
			assert.is_true(storage:put_string("acme/_ops/gone.failed.json",
				json.encode({ time = util.iso(now - day), ok = false, error = "old" })))
			local r = status.run(site("acme", {}), ctx({ ops = { "backup" } }))
			assert.same({ "running", "failed" }, { r.ops[1].state, r.ops[2].state })
			assert.same({ true, false }, { r.ops[1].configured, r.ops[2].configured })
			local text, code = status.report({ { site = "acme", ok = true, result = r } })
			assert.equal(0, code)
			assert.truthy(text:find("op:gone%s+FAILED %(not configured%)"))
		end)

		it("calls gone, and does not count, a stale part the last successful backup did not store", function()
			backup_part("acme", "mysql", "shop", now - 3600)
			backup_part("acme", "mysql", "dropped", now - 3 * day)
			local repo = repository.open(storage, {})
			assert.is_true(repo:record_run("acme", "backup", { ok = true, result = { components = {
				{ component = "mysql", part = "shop", ok = true } } } }, now - 3600))
			local r = status.run(site("acme", { { "mysql", "mysql" } }), ctx({ ops = { "backup" } }))
			local states = {}
			for _, row in ipairs(r.components) do states[row.part] = row.state end
			assert.same({ shop = "ok", dropped = "gone" }, states)
			local _, code, summary = status.report({ { site = "acme", ok = true, result = r } })
			assert.same({ 0, "status: 1 ok, 0 stale, 0 missing, 1 gone" }, { code, summary })
		end)

		it("keeps a stale part stale when the last backup failed", function()
			backup_part("acme", "mysql", "shop", now - 3600)
			backup_part("acme", "mysql", "broken", now - 3 * day)
			local repo = repository.open(storage, {})
			assert.is_true(repo:record_run("acme", "backup", { ok = false, error = "broken: dump failed" }, now - 3600))
			local r = status.run(site("acme", { { "mysql", "mysql" } }), ctx({ ops = { "backup" } }))
			local states = {}
			for _, row in ipairs(r.components) do states[row.part] = row.state end
			assert.same({ shop = "ok", broken = "stale" }, states)
		end)

		it("reads the last run of each op, in name order", function()
			assert.is_true(storage:put_string("acme/_ops/revision.json",
				json.encode({ time = "2026-11-22T10:00:00Z", ok = false, error = "git: not a repository" })))
			assert.is_true(storage:put_string("acme/_ops/backup.json",
				json.encode({ time = "2026-11-22T11:00:00Z", ok = true, error = json.null })))
			assert.is_true(storage:put_string("acme/_ops/broken.json", "{ not json"))
			local r = status.run(site("acme", {}), ctx())
			assert.same({
				{ op = "backup", state = "ok", time = "2026-11-22T11:00:00Z", ok = true, configured = true },
				{ op = "broken", state = "unreadable", ok = false, configured = true },
				{ op = "revision", state = "failed", time = "2026-11-22T10:00:00Z", ok = false,
					error = "git: not a repository", configured = true },
			}, r.ops)
		end)

		it("reports each part of a component that stores several, by name", function()
			backup_part("acme", "mysql", "shop", now - 3600, "shop dump")
			backup_part("acme", "mysql", "blog", now - 30 * 3600, "blog")
			backup_part("acme", "mysql", "blog", now - 40 * 3600)
			local r = status.run(site("acme", { { "mysql", "mysql" } }), ctx())
			assert.same({
				{ component = "mysql", part = "blog", type = "mysql", backups = 2,
					time = util.iso(now - 30 * 3600), age = 30 * 3600, size = 4,
					object = "acme/mysql/blog/" .. util.stamp(now - 30 * 3600) .. ".tar.zst", state = "stale" },
				{ component = "mysql", part = "shop", type = "mysql", backups = 1,
					time = util.iso(now - 3600), age = 3600, size = 9,
					object = "acme/mysql/shop/" .. util.stamp(now - 3600) .. ".tar.zst", state = "ok" },
			}, r.components)
		end)

		it("counts only what was stored since a component changed from parts to one object", function()
			backup_part("acme", "mysql", "shop", now - 3 * day)
			backup("acme", "mysql", now - 2 * day)
			local r = status.run(site("acme", { { "mysql", "mysql" } }), ctx())
			local c = r.components[1]
			assert.same({ 1, "mysql", "stale", 2 * day }, { #r.components, c.component, c.state, c.age })
			assert.is_nil(c.part)
		end)

		it("counts only what was stored since a component changed from one object to parts", function()
			backup("acme", "mysql", now - 2 * day)
			backup_part("acme", "mysql", "shop", now - 3600)
			backup_part("acme", "mysql", "old", now - 3 * day)
			local r = status.run(site("acme", { { "mysql", "mysql" } }), ctx())
			assert.same({ 1, "shop", "ok" }, { #r.components, r.components[1].part, r.components[1].state })
		end)

		it("raises when the storage cannot be listed", function()
			local gone = dir_storage.open({ kind = "dir", path = root .. "/nonexistent" })
			assert.has_error(function()
				status.run(site("acme", {}), ctx({ storage = gone }))
			end, ("cannot list storage: storage directory %s/nonexistent does not exist"):format(root))
		end)
	end)

	describe("report", function()
		local function row(component, state, age)
			return { component = component, type = "files", state = state, age = age,
				time = age and util.iso(now - age), size = age and 2048, backups = age and 1 or 0 }
		end

		local function result(sitename, rows, ops)
			return { site = sitename, ok = true, result = { components = rows, ops = ops or {}, stale_after = 93600 } }
		end

		it("exits 0 when every component is fresh", function()
			local text, code, summary = status.report({
				result("acme", { row("files", "ok", 3600), row("db", "ok", 7200) }),
				result("blog", { row("files", "ok", 60) }),
			}, ctx())
			assert.same({ 0, "status: 3 ok, 0 stale, 0 missing" }, { code, summary })
			assert.truthy(text:find("acme%s+files%s+ok%s+" .. util.iso(now - 3600):gsub("%-", "%%-") .. "%s+1h%s+2%.0 KiB"))
			assert.truthy(text:find("blog%s+files%s+ok"))
		end)

		it("exits 1 when a component is stale", function()
			local text, code, summary = status.report({
				result("acme", { row("files", "ok", 3600), row("db", "stale", 30 * 3600) }),
			}, ctx())
			assert.same({ 1, "status: 1 ok, 1 stale, 0 missing" }, { code, summary })
			assert.truthy(text:find("acme%s+db%s+STALE%s+"))
		end)

		it("exits 1 when a component is missing", function()
			local text, code, summary = status.report({
				result("acme", { row("files", "ok", 3600) }),
				result("blog", { row("files", "missing") }),
			}, ctx())
			assert.same({ 1, "status: 1 ok, 0 stale, 1 missing" }, { code, summary })
			assert.truthy(text:find("blog%s+files%s+MISSING%s+never%s+%-%s+%-"))
		end)

		it("exits 2 when it could not tell for a site, even with others stale", function()
			local text, code, summary = status.report({
				{ site = "acme", ok = false, error = "cannot list storage: denied" },
				result("blog", { row("files", "stale", 30 * 3600) }),
			}, ctx())
			assert.same({ 2, "status: 0 ok, 1 stale, 0 missing, 1 site unknown" }, { code, summary })
			assert.truthy(text:find("acme%s+%-%s+UNKNOWN%s+cannot list storage: denied"))
		end)

		it("shows a part as COMPONENT/PART", function()
			local part = row("mysql", "ok", 60)
			part.part = "shop"
			local text = status.report({ result("acme", { part }) }, ctx())
			assert.truthy(text:find("acme%s+mysql/shop%s+ok%s+"))
		end)

		it("shows op records and sites without components; a failed run exits 1", function()
			local text, code = status.report({
				result("acme", {}, { { op = "backup", time = "2026-11-22T11:00:00Z", ok = true },
					{ op = "revision", time = "2026-11-22T10:00:00Z", ok = false, error = "git failed" } }),
			}, ctx())
			assert.equal(1, code)
			assert.truthy(text:find("acme%s+op:backup%s+ok%s+2026%-11%-22T11:00:00Z"))
			assert.truthy(text:find("acme%s+op:revision%s+FAILED%s+2026%-11%-22T10:00:00Z%s+git failed"))
			assert.truthy(text:find("acme%s+%-%s+%(no components%)"))
		end)

		it("reports what run found, end to end", function()
			backup("acme", "files", now - 3600)
			backup("acme", "db", now - 3 * day)
			local s = site("acme", { { "files", "files" }, { "db", "command" }, { "logs", "files" } })
			local r = status.run(s, ctx())
			local _, code, summary = status.report({ { site = "acme", ok = true, result = r } }, ctx())
			assert.same({ 1, "status: 1 ok, 1 stale, 1 missing" }, { code, summary })
		end)
	end)

	it("is declared as an op that records nothing", function()
		assert.same({ "status", false }, { status.name, status.record })
		assert.is_string(status.description)
	end)
end)

-- report: results as text for people.
local report = require "vakap.report"
local json = require("vakap.util").json

describe("report", function()
	describe("summary", function()
		it("counts sites, successes and failures", function()
			assert.same({ "backup: 3 sites, 2 ok, 1 failed (blog)", 1 }, { report.summary("backup", {
				{ site = "acme", ok = true }, { site = "blog", ok = false }, { site = "shop", ok = true },
			}) })
		end)

		it("says site, not sites, for one", function()
			assert.same({ "status: 1 site, 1 ok, 0 failed", 0 }, { report.summary("status", { { site = "acme", ok = true } }) })
		end)

		it("handles a run over no site", function()
			assert.same({ "backup: 0 sites, 0 ok, 0 failed", 0 }, { report.summary("backup", {}) })
		end)

		it("names the failed sites in order", function()
			assert.same({ "revision: 3 sites, 0 ok, 3 failed (c, a, b)", 3 }, { report.summary("revision", {
				{ site = "c", ok = false }, { site = "a", ok = false }, { site = "b", ok = false },
			}) })
		end)

		it("names at most ten failed sites", function()
			local results = {}
			for i = 1, 12 do results[i] = { site = "s" .. i, ok = false } end
			assert.same({ "backup: 12 sites, 0 ok, 12 failed (s1, s2, s3, s4, s5, s6, s7, s8, s9, s10, ...)", 12 },
				{ report.summary("backup", results) })
		end)
	end)

	describe("flatten", function()
		local function flat(v)
			local out = {}
			report.flatten(v, "", out)
			return out
		end

		it("makes a line of each value, nested keys dotted, in key order", function()
			assert.same({ "branch: main", "dirty: false", "disk.bytes: 2048", "disk.human: 2.0 KiB", "revision: abc123" },
				flat({ revision = "abc123", branch = "main", dirty = false, disk = { bytes = 2048, human = "2.0 KiB" } }))
		end)

		it("indexes lists", function()
			assert.same({ "hosts[1]: web1", "hosts[2]: web2", "hosts[3].name: db" },
				flat({ hosts = { "web1", "web2", { name = "db" } } }))
		end)

		it("keeps the order of a list of ten items or more", function()
			local list = {}
			for i = 1, 11 do list[i] = i end
			local out = flat({ n = list })
			assert.same({ "n[1]: 1", "n[2]: 2", "n[3]: 3", "n[4]: 4", "n[5]: 5", "n[6]: 6", "n[7]: 7", "n[8]: 8",
				"n[9]: 9", "n[10]: 10", "n[11]: 11" }, out)
		end)

		it("shows an empty table and JSON null", function()
			assert.same({ "a: (empty)", "b: null" }, flat({ a = {}, b = json.null }))
		end)

		it("shows a result that is not a table", function()
			assert.same({ "result: 42" }, flat(42))
			assert.same({ "result: done" }, flat("done"))
			assert.same({}, flat({}))
		end)
	end)

	describe("default", function()
		it("writes a block per site: its state, duration and result", function()
			assert.equal(table.concat({
				"acme: ok (1.5s)",
				"  revision: abc123",
				"blog: FAILED (0.2s) git: not a repository",
				"shop: ok (0.0s)",
				"  result: 7",
			}, "\n"), report.default({
				{ site = "acme", ok = true, duration = 1.5, result = { revision = "abc123" } },
				{ site = "blog", ok = false, duration = 0.2, error = "git: not a repository" },
				{ site = "shop", ok = true, result = 7 },
			}))
		end)

		it("writes nothing for no site", function()
			assert.equal("", report.default({}))
		end)
	end)
end)

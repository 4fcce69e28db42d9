-- The repository, the one owner of the stored format, against a real
-- directory storage: data before manifest, manifests before data, records,
-- leftovers, and the checks on the way back out.
local proc = require "vakap.proc"
local repository = require "vakap.repository"
local stream = require "vakap.stream"
local tmpdir = require "tmpdir"
local util = require "vakap.util"

describe("the repository", function()
	local dir = tmpdir.dir_storage()
	before_each(dir.setup)
	after_each(dir.teardown)
	local now = util.parse_time("2026-11-22T12:00:00Z")

	local settings = { compress = "zstd" }
	local site = { name = "s", host = "local", config = {} }
	local comp = { name = "db", type = "command", options = { run = { "dump" } } }

	local function open(storage)
		return repository.open(storage or dir.storage, { settings = settings, version = "test" })
	end

	-- storage, with its methods in `over` replaced; each call of a method
	-- named in `log` is added to calls as { method, keys }
	local function wrapped(over, calls)
		return setmetatable(over or {}, { __index = function(_, k)
			local f = dir.storage[k]
			if type(f) ~= "function" or not calls then return f end
			return function(self, first, ...)
				calls[#calls + 1] = { k, first }
				return f(dir.storage, first, ...)
			end
		end })
	end

	local function keys()
		local out = {}
		for _, e in ipairs(assert(dir.storage:list("s/"))) do out[#out + 1] = e.key end
		table.sort(out)
		return out
	end

	local function store(repo, data, part)
		local w = repo:writer(site)
		return w:store(comp, part, function()
			return stream.string(data), { ext = "sql", command = { "dump" } }
		end)
	end

	describe("store", function()
		it("writes the data, then its manifest, which records the object's size and SHA-256", function()
			local calls = {}
			local m, err = store(open(wrapped(nil, calls)), "some data")
			assert.is_nil(err)
			local writes = {}
			for _, c in ipairs(calls) do
				if c[1] == "put" or c[1] == "put_string" then writes[#writes + 1] = { c[1], c[2] } end
			end
			assert.same({ { "put", m.object }, { "put_string", ("s/db/%s.json"):format(m.stamp) } }, writes)
			local data = assert(dir.storage:get_string(m.object))
			assert.same({ #data, "zstd", "sql.zst", "test", 9 }, { m.size, m.compression, m.ext, m.vakap, m.input_bytes })
			assert.equal(require("vakap.hash").sha256_hex(data), m.sha256)
			local listing = assert(open():list("s"))
			assert.equal(1, #listing.series[1].backups)
		end)

		it("stores nothing when the source fails", function()
			local w = open():writer(site)
			local m, err = w:store(comp, nil, function()
				return proc.spawn({ "sh", "-c", "echo partial; exit 3" }), { ext = "out" }
			end)
			assert.is_nil(m)
			assert.truthy(err:find("status 3", 1, true), err)
			assert.same({}, keys())
		end)

		it("deletes nothing when the manifest cannot be written: the data is a leftover, no backup", function()
			local repo = open(wrapped({ put_string = function() return nil, "disk full" end }))
			local m, err = store(repo, "x")
			assert.is_nil(m)
			assert.truthy(err:find("writing the manifest: disk full (the data object s/db/", 1, true), err)
			local listing = assert(repo:list("s"))
			assert.same({ 0, 1 }, { #listing.series[1].backups, #listing.series[1].orphans })
		end)

		it("refuses an empty source unless the component says empty is normal, and stores nothing", function()
			local w = open():writer(site)
			local m, err = w:store(comp, nil, function() return stream.string(""), { ext = "out", command = { "dump" } } end)
			assert.is_nil(m)
			assert.truthy(err:find("dump wrote nothing", 1, true), err)
			assert.same({}, keys())
			assert(w:store(comp, nil, function() return stream.string(""), { ext = "out", empty = true } end))
		end)

		it("refuses a dump without its completion line, and stores nothing", function()
			local w = open():writer(site)
			local m, err = w:store(comp, nil, function()
				return stream.string("CREATE TABLE t;\n"), { ext = "sql", command = { "mysqldump" }, marker = "-- Dump completed" }
			end)
			assert.is_nil(m)
			assert.truthy(err:find("does not end with its completion line", 1, true), err)
			assert.same({}, keys())
			assert(w:store(comp, nil, function()
				return stream.string("CREATE TABLE t;\n-- Dump completed on x\n"), { ext = "sql", marker = "-- Dump completed" }
			end))
		end)

		it("does not stamp after a backup dated far ahead: a wrong clock once is not followed for ever", function()
			local ahead = util.stamp(util.now() + 30 * 86400)
			assert.is_true(dir.storage:put_string("s/db/" .. ahead .. ".sql.zst", "x"))
			assert.is_true(dir.storage:put_string("s/db/" .. ahead .. ".json", "{}"))
			local m = assert(store(open(), "now"))
			assert.is_true(m.stamp < ahead)
			assert.is_true(math.abs(util.parse_time(m.stamp) - util.now()) < 5)
		end)

		it("stamps a new backup after the newest stored one, so two runs in a second do not collide", function()
			local first = assert(store(open(), "one"))
			local second = assert(store(open(), "two"))
			assert.is_true(second.stamp > first.stamp)
		end)
	end)

	describe("reading back", function()
		it("gives the plaintext of a backup", function()
			local repo = open()
			assert(store(repo, "the dump"))
			local b = assert(repo:list("s")).series[1].backups[1]
			local m = assert(repo:manifest(b))
			local s <close> = assert(repo:plaintext(site, m, assert(repo:open(b))))
			assert.equal("the dump", s:readall())
		end)

		it("fails the plaintext when a byte of the stored object changed", function()
			local repo = repository.open(dir.storage, { settings = { compress = "none" } })
			local m = assert(store(repo, "the dump"))
			local data = assert(dir.storage:get_string(m.object))
			local bad = data:sub(1, -2) .. string.char((data:byte(-1) + 1) % 256)
			assert.is_true(dir.storage:put_string(m.object, bad, { replace = true }))
			local s <close> = assert(repo:plaintext(site, m, assert(repo:open({ data = { key = m.object } }))))
			local out, err = s:readall()
			assert.is_nil(out)
			assert.truthy(err:find("sha256 mismatch", 1, true), err)
		end)

		it("says so when a backup's data object is missing", function()
			assert.same({ nil, "its data object is missing" }, { open():open({ manifest = { key = "s/db/x.json" } }) })
		end)

		it("finds a series by label, naming the ones there are when it is not found", function()
			local repo = open()
			assert(store(repo, "x", { name = "shop" }))
			local listing = assert(repo:list("s"))
			assert.equal("db/shop", repo:find(listing.series, "db/shop").label)
			assert.same({ nil, "no backups of 'db'; there are backups of: db/shop" }, { repo:find(listing.series, "db") })
		end)
	end)

	describe("forget", function()
		it("deletes every manifest before any data", function()
			local repo = open()
			assert(store(repo, "one"))
			assert(store(repo, "two"))
			local calls = {}
			local watched = open(wrapped(nil, calls))
			local backups = assert(watched:list("s")).series[1].backups
			assert.is_true(watched:forget(backups))
			local deletes = {}
			for _, c in ipairs(calls) do
				if c[1] == "delete" then
					local kinds = {}
					for _, k in ipairs(c[2]) do kinds[#kinds + 1] = k:match("%.json$") and "manifest" or "data" end
					deletes[#deletes + 1] = table.concat(kinds, ",")
				end
			end
			assert.same({ "manifest,manifest", "data,data" }, deletes)
			assert.same({}, keys())
		end)

		it("keeps the data when the manifests cannot be deleted", function()
			assert(store(open(), "one"))
			local repo = open(wrapped({ delete = function() return nil, "denied" end }))
			local backups = assert(repo:list("s")).series[1].backups
			assert.same({ nil, "deleting manifests: denied" }, { repo:forget(backups) })
			assert.equal(2, #keys())
		end)

		it("calls leftovers the data objects without a manifest over a day old", function()
			local old = "s/db/" .. util.stamp(now - 2 * 86400) .. ".sql.zst"
			local young = "s/db/" .. util.stamp(now - 60) .. ".sql.zst"
			assert.is_true(dir.storage:put_string(old, "partial"))
			assert.is_true(dir.storage:put_string(young, "partial"))
			assert.is_true(os.execute(("touch -d @%d %s/%s"):format(now - 2 * 86400, dir.root, old)))
			assert.is_true(os.execute(("touch -d @%d %s/%s"):format(now - 60, dir.root, young)))
			local repo = open()
			local left = repo:leftovers(assert(repo:list("s")).series[1], now)
			assert.same({ old }, { left[1].key, left[2] })
		end)
	end)

	describe("records", function()
		it("keeps one record of an op's last run, its outcome in the name", function()
			local repo = open()
			assert.is_true(repo:record_run("s", "backup", { ok = false, error = "boom" }, now))
			assert.is_true(repo:record_run("s", "backup", { ok = true, result = { n = 1 } }, now))
			assert.same({ "s/_ops/backup.ok.json" }, keys())
			assert.is_true(repo:record_run("s", "backup", { ok = false, error = "boom" }, now))
			local listing = assert(repo:list("s"))
			assert.same({ state = "failed", time = util.iso(now), ok = false, error = "boom" },
				repo:last_run(listing.ops.backup))
		end)

		it("records a verification beside the backup, replacing the other outcome", function()
			local repo = open()
			local m = assert(store(repo, "x"))
			local b = assert(repo:list("s")).series[1].backups[1]
			assert.is_true(repo:record_verification(b, false, "bad"))
			b = assert(repo:list("s")).series[1].backups[1]
			assert.is_true(repo:record_verification(b, true, { bytes = 1 }))
			local verify = {}
			for _, k in ipairs(keys()) do
				if k:find("verify", 1, true) then verify[#verify + 1] = k end
			end
			assert.same({ ("s/db/%s.verify-ok.json"):format(m.stamp) }, verify)
		end)
	end)

	it("raises at the caller's line on a call with a dot, or a wrong argument", function()
		local repo = open()
		assert.has_error(function() repo.list("s") end,
			"call repository:list with a colon, not a dot: repository:list(...)")
		assert.has_error(function() repo:list(site) end,
			"repository:list: give the site's name: ctx.repository:list(site.name)")
		assert.has_error(function() repo:writer("s") end, "repository:writer: give the site the op runs on")
		assert.has_error(function() repo:forget() end, "repository:forget: give a list of backups and leftovers")
	end)

	it("keeps its storage out of reach: no fields, and none can be set", function()
		local repo = open()
		assert.is_nil(rawget(repo, "storage"))
		assert.is_nil(repo.storage)
		assert.has_error(function() repo.storage = dir.storage end, "the repository is read-only: cannot set 'storage'")
		assert.equal("the repository", getmetatable(repo))
	end)
end)

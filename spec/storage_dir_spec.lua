-- storage.dir: objects as files under a directory, written atomically.
local dir_storage = require "vakap.storage.dir"
local proc = require "vakap.proc"
local storage = require "vakap.storage"
local stream = require "vakap.stream"
local tmpdir = require "tmpdir"

-- The error a key that could escape gets: naming it, never a file of vakap's.
local function bad_key(key)
	return ("storage key '%s' is not one vakap writes (a leading '/', or an empty, '.' or '..' part): refusing it")
		:format(key)
end

describe("storage.dir", function()
	local root, st

	before_each(function()
		root = tmpdir.make()
		st = dir_storage.open({ kind = "dir", path = root })
	end)

	after_each(function()
		tmpdir.remove(root)
	end)

	local function keys(entries)
		local out = {}
		for i, e in ipairs(entries) do out[i] = e.key end
		table.sort(out)
		return out
	end

	it("is what storage.open makes of dir \"PATH\"", function()
		local s = storage.open({ kind = "dir", path = root })
		assert.same({ "dir", root, "dir " .. root }, { s.kind, s.root, s:describe() })
		assert.same({ nil, "storage kind 'ftp' is not supported" }, { storage.open({ kind = "ftp" }) })
	end)

	describe("put", function()
		it("stores a stream and gives its size back", function()
			local s <close> = stream.string("hello, storage")
			assert.same({ { size = 14 } }, { st:put("acme/db/20261121T220000Z.sql", s) })
			assert.same({ "hello, storage" }, { st:get_string("acme/db/20261121T220000Z.sql") })
		end)

		it("stores an empty stream as an empty object", function()
			local s <close> = stream.string("")
			assert.same({ { size = 0 } }, { st:put("acme/db/empty", s) })
			assert.same({ "" }, { st:get_string("acme/db/empty") })
		end)

		it("stores a stream larger than a chunk whole", function()
			local data = ("0123456789abcdef"):rep(64 * 1024 + 3) -- just over 1 MiB
			local s <close> = stream.string(data)
			assert.same({ { size = #data } }, { st:put("acme/files/big.tar", s) })
			assert.is_true(st:get_string("acme/files/big.tar") == data)
		end)

		it("never replaces an existing object", function()
			local a <close> = stream.string("first")
			assert.same({ { size = 5 } }, { st:put("acme/db/x", a) })
			local b <close> = stream.string("second")
			local r = table.pack(st:put("acme/db/x", b))
			assert.equal(2, r.n)
			assert.is_nil(r[1])
			assert.same({ nil, "object acme/db/x already exists" }, { r[1], r[2] })
			assert.same({ "first" }, { st:get_string("acme/db/x") })
			assert.same({ "x" }, tmpdir.names(root .. "/acme/db"))
		end)

		it("leaves nothing at all when the stream fails", function()
			local s <close> = proc.spawn({ "sh", "-c", "echo x; echo oops >&2; exit 3" })
			assert.same({ nil, "sh exited with status 3: oops" }, { st:put("acme/db/20261121T220000Z.sql", s) })
			assert.same({ {} }, { st:list("acme/") })
			assert.same({ {} }, { st:list("", { temp = true }) })
			assert.same({}, tmpdir.names(root .. "/acme/db"))
		end)

		it("raises on a key that could escape the directory", function()
			for _, key in ipairs { "../x", "a/../../x", "/etc/passwd", "", "a/./b" } do
				local s <close> = stream.string("x")
				assert.has_error(function() st:put(key, s) end, bad_key(key))
			end
			assert.same({}, tmpdir.names(root))
		end)
	end)

	describe("put_string", function()
		it("stores a string", function()
			assert.same({ true }, { st:put_string("acme/_ops/backup.json", "{}") })
			assert.same({ "{}" }, { st:get_string("acme/_ops/backup.json") })
		end)

		it("refuses to replace an object unless told to", function()
			assert.same({ true }, { st:put_string("acme/_ops/backup.json", "old") })
			local r = table.pack(st:put_string("acme/_ops/backup.json", "new"))
			assert.same({ 2, nil }, { r.n, r[1] })
			assert.is_string(r[2])
			assert.same({ "old" }, { st:get_string("acme/_ops/backup.json") })
			assert.same({ true }, { st:put_string("acme/_ops/backup.json", "new", { replace = true }) })
			assert.same({ "new" }, { st:get_string("acme/_ops/backup.json") })
			assert.same({ "backup.json" }, tmpdir.names(root .. "/acme/_ops"))
		end)
	end)

	describe("get", function()
		it("returns a stream of the object", function()
			assert.is_true(st:put_string("acme/db/x", "some bytes"))
			local s <close> = st:get("acme/db/x")
			assert.same({ "some bytes" }, { s:readall() })
		end)

		it("returns nil and a message for a missing object", function()
			assert.same({ nil, ("cannot open %s/acme/db/nope: No such file or directory"):format(root) },
				{ st:get("acme/db/nope") })
			assert.same({ nil, ("cannot open %s/acme/db/nope: No such file or directory"):format(root) },
				{ st:get_string("acme/db/nope") })
		end)

		it("raises on a key that could escape the directory", function()
			assert.has_error(function() st:get("../x") end, bad_key("../x"))
			assert.has_error(function() st:get_string("a/../../x") end, bad_key("a/../../x"))
		end)
	end)

	describe("list", function()
		before_each(function()
			for _, k in ipairs { "acme/db/1.json", "acme/db/1.sql", "acme/files/2.tar", "acme2/db/3.json", "blog/x" } do
				assert.is_true(st:put_string(k, k))
			end
		end)

		it("lists every object under a prefix, with sizes", function()
			local entries = st:list("acme/")
			assert.same({ "acme/db/1.json", "acme/db/1.sql", "acme/files/2.tar" }, keys(entries))
			for _, e in ipairs(entries) do
				assert.equal(#e.key, e.size)
				assert.is_number(e.mtime)
				assert.is_nil(e.temp)
			end
		end)

		it("takes a prefix that is not a whole folder", function()
			assert.same({ "acme/db/1.json", "acme/db/1.sql", "acme/files/2.tar", "acme2/db/3.json" }, keys(st:list("acme")))
			assert.same({ "acme/db/1.json", "acme/db/1.sql" }, keys(st:list("acme/db/1")))
		end)

		it("lists everything with an empty prefix", function()
			assert.equal(5, #st:list(""))
		end)

		it("returns an empty list for a prefix nothing is under", function()
			assert.same({ {} }, { st:list("nobody/") })
			assert.same({ {} }, { st:list("acme/nothing/") })
		end)

		it("hides temporary files unless asked for them", function()
			tmpdir.write(root, "acme/db/.tmp-1-1-2.sql", "partial")
			assert.same({ "acme/db/1.json", "acme/db/1.sql" }, keys(st:list("acme/db/")))
			local all = st:list("acme/db/", { temp = true })
			assert.same({ "acme/db/.tmp-1-1-2.sql", "acme/db/1.json", "acme/db/1.sql" }, keys(all))
			for _, e in ipairs(all) do
				assert.equal(e.key:find("/.tmp-", 1, true) and true or nil, e.temp)
			end
		end)

		it("returns nil and a message when the directory does not exist", function()
			local gone = dir_storage.open({ kind = "dir", path = root .. "/nonexistent" })
			assert.same({ nil, ("storage directory %s/nonexistent does not exist"):format(root) }, { gone:list("") })
		end)

		it("raises on a prefix that could escape the directory", function()
			assert.has_error(function() st:list("../x/") end, bad_key("../x"))
		end)
	end)

	describe("delete", function()
		it("removes objects", function()
			assert.is_true(st:put_string("acme/db/1.json", "m"))
			assert.is_true(st:put_string("acme/db/1.sql", "d"))
			assert.same({ true }, { st:delete({ "acme/db/1.json", "acme/db/1.sql" }) })
			assert.same({ {} }, { st:list("acme/") })
		end)

		it("takes an object that is already gone as deleted", function()
			assert.same({ true }, { st:delete({ "acme/db/never" }) })
		end)

		it("raises on a key that could escape the directory", function()
			assert.has_error(function() st:delete({ "../x" }) end, bad_key("../x"))
		end)
	end)

	describe("check", function()
		it("creates the directory, writes and reads a probe, and removes it", function()
			local s = dir_storage.open({ kind = "dir", path = root .. "/new" })
			assert.same({ { reachable = true, writable = true } }, { s:check() })
			assert.same({}, tmpdir.names(root .. "/new"))
		end)
	end)
end)

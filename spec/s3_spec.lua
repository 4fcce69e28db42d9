-- vakap.s3 against a real S3 server: moto on 127.0.0.1, one that checks
-- signatures and one that does not, and a fault-injecting proxy in front
-- of the second.  moto checking signatures rejects correctly signed
-- requests (boto3's too) for keys with '+' or non-ASCII bytes and for
-- query values with a '/' (a listing's prefix "a/"), and answers a
-- presigned URL with a 500: those are tried on the other one.  What vakap writes is read
-- back by boto3 (tests/support/s3tool.py), and the other way round.
local cjson = require "cjson"
local hash = require "vakap.hash"
local proc = require "vakap.proc"
local s3 = require "vakap.s3"
local stream = require "vakap.stream"
local tmpdir = require "tmpdir"

local MIB = 1024 * 1024

local quote = tmpdir.quote

-- Run a shell command: its output and errors, and whether it succeeded.
local function sh(cmd)
	return tmpdir.sh(cmd .. " 2>&1")
end

local function start_server(dir, ...)
	local out, ok = sh("python3 tests/support/moto_s3.py start " .. dir .. " " .. table.concat({ ... }, " "))
	assert(ok, out)
	local srv = { dir = dir }
	for k, v in out:gmatch("([%w_]+)=([^\n]*)") do srv[k] = v end
	return srv
end

local function start_proxy(dir, upstream)
	local out, ok = sh("python3 tests/support/faultproxy.py start " .. dir .. " " .. upstream)
	assert(ok, out)
	return { dir = dir, endpoint = out:match("endpoint=(%S+)") }
end

local function random_bytes(n)
	local f = assert(io.open("/dev/urandom", "rb"))
	local data = f:read(n)
	f:close()
	return data
end

local function write_file(path, data)
	local f = assert(io.open(path, "wb"))
	f:write(data)
	f:close()
	return path
end

local read_file = tmpdir.read

local function md5_hex(s)
	return (assert(sh("printf %s " .. quote(s) .. " | md5sum")):match("^%x+"))
end

describe("vakap.s3 against moto", function()
	local dir, auth, open, proxy

	-- boto3 on a server: s3tool(srv, "sha", key) -> decoded JSON answer
	local function s3tool(srv, ...)
		local args = {}
		for i, a in ipairs({ ... }) do args[i] = quote(a) end
		local out, ok = sh(("python3 tests/support/s3tool.py %s %s %s %s %s"):format(
			srv.endpoint, quote(srv.access_key), quote(srv.secret_key), srv.bucket,
			table.concat(args, " ")))
		assert(ok, out)
		return cjson.decode(out)
	end

	local function client(srv, opts)
		local o = {
			bucket = srv.bucket, endpoint = srv.endpoint,
			access_key = srv.access_key, secret_key = srv.secret_key,
			retry_base_ms = 10, stall_timeout = 2, connect_timeout = 2,
		}
		for k, v in pairs(opts or {}) do o[k] = v end
		return s3.client(o)
	end

	local function keys_of(list)
		local out = {}
		for i, o in ipairs(list) do out[i] = o.key end
		table.sort(out)
		return out
	end

	-- the proxy's schedule, and what it did (method, target, fault)
	local function faults(rules)
		write_file(proxy.dir .. "/rules.json", cjson.encode(rules))
		os.remove(proxy.dir .. "/log.jsonl")
	end
	local function injected()
		local out = {}
		local f = io.open(proxy.dir .. "/log.jsonl")
		if not f then return out end
		for line in f:lines() do
			local e = cjson.decode(line)
			if e.fault ~= cjson.null then out[#out + 1] = e.method .. " " .. e.fault end
		end
		f:close()
		return out
	end

	setup(function()
		dir = tmpdir.make()
		auth = start_server(dir .. "/auth", "--auth")
		open = start_server(dir .. "/open", "--objects", "many/:5000")
		proxy = start_proxy(dir .. "/proxy", open.endpoint)
		proxy.bucket, proxy.access_key, proxy.secret_key = open.bucket, "x", "y"
	end)

	teardown(function()
		if proxy then sh("python3 tests/support/faultproxy.py stop " .. proxy.dir) end
		for _, srv in ipairs({ auth, open }) do
			if srv then sh("python3 tests/support/moto_s3.py stop " .. srv.dir) end
		end
		tmpdir.remove(dir)
	end)

	describe("signed requests (moto checking signatures)", function()
		it("stores a small stream with one PUT that boto3 reads back identical", function()
			local c <close> = client(auth)
			local data = random_bytes(100000)
			local r = assert(c:put("small/one", stream.string(data)))
			assert.same({ 100000, 1 }, { r.size, r.parts })
			assert.same({ sha256 = hash.sha256_hex(data), size = 100000 }, s3tool(auth, "sha", "small/one"))
			assert.same({ PUT = 1, INIT = 0, PART = 0 },
				{ PUT = c:stats().by_op.PUT, INIT = c:stats().by_op.INIT, PART = c:stats().by_op.PART })
		end)

		it("stores a 12 MiB stream as a multipart upload of 3 parts, byte-identical for boto3", function()
			local c <close> = client(auth)
			local data = random_bytes(12 * MIB + 12345)
			local seen = 0
			local r = assert(c:put("big/multi", stream.string(data), {
				progress = function(n) seen = n end, content_type = "application/octet-stream",
			}))
			assert.same({ #data, 3 }, { r.size, r.parts })
			assert.matches("^%x+%-3$", r.etag)
			assert.equal(#data, seen)
			local st = c:stats()
			assert.same({ 1, 3, 1, 0, 0 },
				{ st.by_op.INIT, st.by_op.PART, st.by_op.COMPLETE, st.by_op.PUT, st.retries })
			assert.same({ sha256 = hash.sha256_hex(data), size = #data }, s3tool(auth, "sha", "big/multi"))
			local h = assert(c:head("big/multi"))
			assert.same({ #data, r.etag }, { h.size, h.etag })
			assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ$", h.last_modified)
		end)

		it("puts a string, and a size hint makes the parts big enough for one PUT", function()
			local c <close> = client(auth)
			local data = random_bytes(6 * MIB)
			local r = assert(c:put_string("hint/one", data, { size_hint = 60 * 1024 * MIB }))
			assert.same({ 6 * MIB, 1, 1, 0 }, { r.size, r.parts, c:stats().by_op.PUT, c:stats().by_op.INIT })
			r = assert(c:put_string("hint/two", data))
			assert.same({ 2, 1 }, { r.parts, c:stats().by_op.INIT })
			assert.same({ sha256 = hash.sha256_hex(data), size = #data }, s3tool(auth, "sha", "hint/two"))
		end)

		it("lists and reads back what boto3 uploaded", function()
			local c <close> = client(auth)
			local data = random_bytes(7 * MIB + 3)
			s3tool(auth, "put", "theirs/a.bin", write_file(dir .. "/a.bin", data))
			s3tool(auth, "put", "theirs/sub/b.txt", write_file(dir .. "/b.txt", "bee"))
			local objs, prefixes = assert(c:list("theirs"))
			assert.same({ "theirs/a.bin", "theirs/sub/b.txt" }, keys_of(objs))
			assert.same({}, prefixes)
			table.sort(objs, function(x, y) return x.key < y.key end)
			assert.same({ #data, 3 }, { objs[1].size, objs[2].size })
			assert.matches("^%x+%-2$", objs[1].etag) -- boto3 made 2 parts
			local s = assert(c:get("theirs/a.bin"))
			local got = assert(s:readall(64 * MIB))
			assert.is_true(got == data, "the bytes read differ")
			assert.same({ #data, objs[1].etag }, { s:info().size, s:info().etag })
			s:close()
			assert.same({ "bee" }, { assert(c:get("theirs/sub/b.txt")):readall() })
		end)

		it("says a missing object is not found: HEAD and GET give 404", function()
			local c <close> = client(auth)
			assert.same({ nil, "s3: HEAD s3://vakap-test/no/such: not found", 404 }, { c:head("no/such") })
			assert.same({ nil, "s3: GET s3://vakap-test/no/such: not found", 404 }, { c:get("no/such") })
			assert.equal(0, c:stats().retries)
		end)

		it("reports a wrong secret as 403 at once, without retrying or showing the secret", function()
			local secret = "not-the-secret-" .. ("%x"):format(os.time())
			local c <close> = client(auth, { secret_key = secret })
			local ok, err = c:put_string("denied", "x")
			assert.is_nil(ok)
			assert.matches("^s3: PUT s3://vakap%-test/denied: 403 %a+: ", err)
			assert.is_nil(err:find(secret, 1, true))
			local _, herr, status = c:head("denied")
			assert.same({ 403, false }, { status, herr:find(secret, 1, true) ~= nil })
			local st = c:stats()
			assert.same({ 2, 0 }, { st.requests, st.retries })
			assert.is_nil(tostring(c):find(secret, 1, true))
		end)

		it("never overwrites with if_none_match, one PUT or multipart", function()
			local c <close> = client(auth)
			assert(c:put_string("once/small", "first", { if_none_match = true }))
			local ok, err = c:put_string("once/small", "second", { if_none_match = true })
			assert.is_nil(ok)
			assert.matches("412 PreconditionFailed", err)
			local big = random_bytes(11 * MIB)
			assert(c:put("once/big", stream.string(big), { if_none_match = true }))
			ok, err = c:put("once/big", stream.string(random_bytes(11 * MIB)), { if_none_match = true })
			assert.is_nil(ok)
			assert.matches("completing the multipart upload%): 412 PreconditionFailed", err)
			assert.same({ "first" }, { assert(c:get("once/small")):readall() })
			assert.equal(hash.sha256_hex(big), s3tool(auth, "sha", "once/big").sha256)
			assert.same({}, s3tool(auth, "uploads", "once"))
			-- without the option, an overwrite is fine
			assert(c:put_string("once/small", "third"))
		end)

		it("lists and aborts multipart uploads in progress", function()
			local c <close> = client(auth)
			local ids = s3tool(auth, "start-upload", "up/a", "up/b", "up/c")
			local ups = assert(c:uploads("up"))
			assert.same({ "up/a", "up/b", "up/c" }, keys_of(ups))
			for _, u in ipairs(ups) do
				assert.truthy(u.upload_id == ids[1] or u.upload_id == ids[2] or u.upload_id == ids[3])
				assert.matches("^%d%d%d%d%-", u.initiated)
				assert.is_true(c:abort(u.key, u.upload_id))
			end
			assert.same({}, c:uploads("up"))
			assert.same({}, s3tool(auth, "uploads", "up"))
		end)

	end)

	describe("keys and volume (moto without signature checks)", function()
		it("keeps keys with spaces, '+' and non-ASCII bytes as they are", function()
			local c <close> = client(open)
			local keys = { "odd/a b", "odd/a+b", "odd/é ü/ñ.txt", "odd/x%41y", "odd/../dots/./k" }
			for i, k in ipairs(keys) do assert(c:put_string(k, "value " .. i)) end
			table.sort(keys)
			assert.same(keys, s3tool(open, "keys", "odd/"))
			assert.same(keys, keys_of(assert(c:list("odd/"))))
			for i, k in ipairs({ "odd/a b", "odd/a+b", "odd/é ü/ñ.txt", "odd/x%41y", "odd/../dots/./k" }) do
				assert.same({ "value " .. i }, { assert(c:get(k)):readall() })
			end
			s3tool(open, "put", "odd/theirs + mine é", write_file(dir .. "/t", "t"))
			assert.same({ "t" }, { assert(c:get("odd/theirs + mine é")):readall() })
		end)

		it("lists with a delimiter: the common prefixes apart", function()
			local c <close> = client(open)
			for _, k in ipairs({ "tree/a", "tree/b/1", "tree/b/2", "tree/c/1" }) do assert(c:put_string(k, k)) end
			local objs, prefixes = assert(c:list("tree/", { delimiter = "/" }))
			assert.same({ { "tree/a" }, { "tree/b/", "tree/c/" } }, { keys_of(objs), prefixes })
		end)

		it("presigns a URL that curl downloads", function()
			local c <close> = client(open)
			assert(c:put_string("pre/signed.txt", "presigned content"))
			local url = c:presign("GET", "pre/signed.txt", 300)
			assert.matches("^" .. open.endpoint:gsub("%p", "%%%0") .. "/vakap%-test/pre/signed%.txt%?X%-Amz%-Algorithm="
				.. "AWS4%-HMAC%-SHA256&X%-Amz%-Credential=test%%2F%d+%%2Fus%-east%-1%%2Fs3%%2Faws4_request&"
				.. "X%-Amz%-Date=%d+T%d+Z&X%-Amz%-Expires=300&X%-Amz%-SignedHeaders=host&X%-Amz%-Signature=%x+$", url)
			assert.same({ "presigned content", true }, { sh("curl -sSf " .. quote(url)) })
		end)

		it("lists 5,000 objects in pages, and from a starting point", function()
			local c <close> = client(open)
			local objs = assert(c:list("many/", { max_keys = 1000 }))
			assert.equal(5000, #objs)
			assert.equal(5, c:stats().by_op.LIST)
			table.sort(objs, function(x, y) return x.key < y.key end)
			assert.same({ "many/00000", "many/04999", 1 }, { objs[1].key, objs[5000].key, objs[1].size })
			local rest = assert(c:list("many/", { start_after = "many/04989", max_keys = 4 }))
			assert.equal(10, #rest)
			assert.equal("many/04990", keys_of(rest)[1])
		end)

		it("deletes in batches of 1,000 exactly the keys it was given", function()
			local c <close> = client(open)
			local doomed = {}
			for i = 1000, 2499 do doomed[#doomed + 1] = ("many/%05d"):format(i) end
			doomed[#doomed + 1] = "many/never-existed"
			local r = assert(c:delete(doomed))
			assert.same({ deleted = 1501, errors = {} }, r)
			assert.equal(2, c:stats().by_op.DELETE)
			local left = keys_of(assert(c:list("many/")))
			assert.same({ 3500, "many/00999", "many/02500" }, { #left, left[1000], left[1001] })
			assert.same({ deleted = 0, errors = {} }, c:delete({}))
		end)
	end)

	describe("faults (through the proxy)", function()
		after_each(function() faults({}) end)

		it("retries 500, 503, SlowDown, resets and a stall mid-part; the object is byte-identical", function()
			local c <close> = client(proxy)
			faults({
				{ method = "POST", match = "uploads", fault = "500", times = 1 },
				{ method = "PUT", match = "partNumber=1&", fault = "reset-upload", times = 1 },
				{ method = "PUT", match = "partNumber=2&", fault = "slowdown", times = 2 },
				{ method = "PUT", match = "partNumber=3&", fault = "stall-upload", times = 1, seconds = 10 },
				{ method = "POST", match = "uploadId", fault = "error200", times = 1 },
				{ method = "PUT", match = "partNumber=3&", fault = "503", times = 1 },
				{ method = "PUT", match = "single", fault = "reset", times = 1 },
			})
			local data = random_bytes(12 * MIB)
			local r = assert(c:put("flaky/big", stream.string(data)))
			assert.same({ #data, 3 }, { r.size, r.parts })
			assert(c:put_string("flaky/single", "one"))
			local got = injected()
			table.sort(got)
			assert.same({ "POST 500", "POST error200", "PUT 503", "PUT reset", "PUT reset-upload",
				"PUT slowdown", "PUT slowdown", "PUT stall-upload" }, got)
			-- a reset before any answer on a connection curl had used before
			-- is retried by curl itself, unseen: at least the others are ours
			assert.is_true(c:stats().retries >= 6, "retries: " .. c:stats().retries)
			assert.same({ sha256 = hash.sha256_hex(data), size = #data }, s3tool(open, "sha", "flaky/big"))
			assert.same({ sha256 = hash.sha256_hex("one"), size = 3 }, s3tool(open, "sha", "flaky/single"))
		end)

		-- "lose": the server stores the object, its answer never arrives.
		-- The request goes out again (ours after a fresh connection, or
		-- curl's own on a reused one) and meets the object it made.
		local function head_put(c)
			local by = c:stats().by_op
			return { HEAD = by.HEAD, ABORT = by.ABORT }
		end

		it("resolves a PUT whose answer was lost by a HEAD: the object there is the one written", function()
			local c <close> = client(proxy)
			faults({ { method = "PUT", match = "lost/small", fault = "lose", times = 1 } })
			local data = random_bytes(100000)
			local r = assert(c:put("lost/small", stream.string(data), { if_none_match = true }))
			assert.same({ 100000, 1 }, { r.size, r.parts })
			assert.same({ "PUT lose" }, injected())
			assert.same({ HEAD = 1, ABORT = 0 }, head_put(c))
			assert.same({ 2, 1 }, { c:stats().by_op.PUT, c:stats().retries }) -- a fresh connection: ours
			assert.same({ sha256 = hash.sha256_hex(data), size = 100000 }, s3tool(open, "sha", "lost/small"))
		end)

		it("resolves a put_string whose answer was lost, curl sending it again on its own", function()
			local c <close> = client(proxy)
			assert(c:put_string("lost/warm", "a connection curl reuses"))
			faults({ { method = "PUT", match = "lost/record", fault = "lose", times = 1 } })
			local r = assert(c:put_string("lost/record", '{"a": 1}', { if_none_match = true }))
			assert.same({ 8, 1 }, { r.size, r.parts })
			assert.same({ "PUT lose" }, injected())
			assert.same({ HEAD = 1, ABORT = 0 }, head_put(c))
			assert.same({ 2, 0 }, { c:stats().by_op.PUT, c:stats().retries }) -- curl's, unseen
			assert.same({ sha256 = hash.sha256_hex('{"a": 1}'), size = 8 }, s3tool(open, "sha", "lost/record"))
		end)

		it("resolves a multipart upload whose Complete answer was lost and whose upload is gone", function()
			local c <close> = client(proxy)
			-- moto completes the same upload twice; S3 may say NoSuchUpload
			faults({
				{ method = "POST", match = "uploadId", fault = "lose", times = 1 },
				{ method = "POST", match = "uploadId", fault = "nosuchupload", times = 1 },
			})
			local data = random_bytes(11 * MIB + 17)
			local r = assert(c:put("lost/big", stream.string(data), { if_none_match = true }))
			assert.same({ #data, 3 }, { r.size, r.parts })
			assert.matches("^%x+%-3$", r.etag)
			assert.same({ "POST lose", "POST nosuchupload" }, injected())
			assert.same({ HEAD = 1, ABORT = 0 }, head_put(c))
			assert.same({ sha256 = hash.sha256_hex(data), size = #data }, s3tool(open, "sha", "lost/big"))
			assert.equal(r.etag, assert(c:head("lost/big")).etag)
		end)

		it("re-sends a part whose answer was lost: no HEAD needed", function()
			local c <close> = client(proxy)
			faults({ { method = "PUT", match = "partNumber=2&", fault = "lose", times = 1 } })
			local data = random_bytes(11 * MIB)
			assert(c:put("lost/part", stream.string(data), { if_none_match = true }))
			assert.same({ "PUT lose" }, injected())
			assert.same({ HEAD = 0, ABORT = 0 }, head_put(c))
			assert.same({ sha256 = hash.sha256_hex(data), size = #data }, s3tool(open, "sha", "lost/part"))
		end)

		it("fails a write whose answer was lost when another writer replaced the object meanwhile", function()
			local c <close> = client(proxy)
			faults({ { method = "PUT", match = "lost/theirs", fault = "lose", times = 1, overwrite = "theirs" } })
			local ok, err = c:put_string("lost/theirs", "mine", { if_none_match = true })
			assert.same({ nil, "s3: PUT s3://vakap-test/lost/theirs: an object already exists at "
				.. "s3://vakap-test/lost/theirs and is not the one written (6 bytes, ETag "
				.. md5_hex("theirs") .. "; written: 4 bytes, ETag " .. md5_hex("mine") .. ")" }, { ok, err })
			faults({ { method = "POST", match = "uploadId", fault = "lose", times = 1, overwrite = "theirs too" } })
			ok, err = c:put("lost/theirs-big", stream.string(random_bytes(11 * MIB)), { if_none_match = true })
			assert.is_nil(ok)
			assert.matches("^s3: PUT s3://vakap%-test/lost/theirs%-big: an object already exists at "
				.. "s3://vakap%-test/lost/theirs%-big and is not the one written %(10 bytes, ETag %x+; written: "
				.. 11 * MIB .. " bytes, ETag %x+%-3%)$", err)
			assert.same({ HEAD = 2, ABORT = 1 }, head_put(c))
			-- theirs are kept: nothing is deleted
			assert.same({ sha256 = hash.sha256_hex("theirs"), size = 6 }, s3tool(open, "sha", "lost/theirs"))
			assert.same({ sha256 = hash.sha256_hex("theirs too"), size = 10 }, s3tool(open, "sha", "lost/theirs-big"))
			assert.same({}, s3tool(open, "uploads", "lost/"))
		end)

		it("fails a write sent again that meets an object there before it; a first 412 is as it was", function()
			local c <close> = client(proxy)
			s3tool(open, "put", "lost/before", write_file(dir .. "/before", "before"))
			-- the first attempt is reset before the server acts: the second meets the object
			faults({ { method = "PUT", match = "lost/before", fault = "reset", times = 1 } })
			local ok, err = c:put_string("lost/before", "after", { if_none_match = true })
			assert.is_nil(ok)
			assert.matches("^s3: PUT s3://vakap%-test/lost/before: an object already exists at "
				.. "s3://vakap%-test/lost/before and is not the one written %(6 bytes, ETag %x+; written: "
				.. "5 bytes, ETag %x+%)$", err)
			assert.same({ HEAD = 1, ABORT = 0 }, head_put(c))
			faults({})
			ok, err = c:put_string("lost/before", "after", { if_none_match = true })
			assert.same({ nil, "s3: PUT s3://vakap-test/lost/before: 412 PreconditionFailed: "
				.. "At least one of the pre-conditions you specified did not hold" }, { ok, err })
			assert.same({ HEAD = 1, ABORT = 0 }, head_put(c))
			assert.same({ sha256 = hash.sha256_hex("before"), size = 6 }, s3tool(open, "sha", "lost/before"))
		end)

		it("aborts the upload when a part never gets through: no object, no upload left", function()
			local c <close> = client(proxy, { retries = 2 })
			faults({ { method = "PUT", match = "partNumber=2&", fault = "503", times = -1 } })
			local ok, err = c:put("doomed/big", stream.string(random_bytes(11 * MIB)))
			assert.is_nil(ok)
			assert.equal("s3: PUT s3://vakap-test/doomed/big (part 2): 503 ServiceUnavailable: "
				.. "Please reduce your request rate. (after 3 attempts)", err)
			assert.same({ 1, 1, 0, 3 }, { c:stats().by_op.INIT, c:stats().by_op.ABORT,
				c:stats().by_op.COMPLETE, #injected() })
			assert.same({}, s3tool(open, "keys", "doomed/"))
			assert.same({}, s3tool(open, "uploads", "doomed/"))
			assert.same({}, assert(c:uploads("doomed/")))
		end)

		it("aborts the upload when the stream fails midway", function()
			local c <close> = client(proxy)
			local src = assert(proc.spawn({ "sh", "-c", "head -c 7000000 /dev/urandom; exit 3" }))
			local ok, err = c:put("doomed/stream", src)
			src:close()
			assert.is_nil(ok)
			assert.matches("^s3: PUT s3://vakap%-test/doomed/stream: sh exited with status 3", err)
			assert.same({ 1, 1, 1, 0 }, { c:stats().by_op.INIT, c:stats().by_op.PART,
				c:stats().by_op.ABORT, c:stats().by_op.COMPLETE })
			assert.same({}, s3tool(open, "keys", "doomed/"))
			assert.same({}, s3tool(open, "uploads", "doomed/"))
		end)

		it("does not retry a failing stream: a small one is never stored", function()
			local c <close> = client(proxy)
			local src = assert(proc.spawn({ "sh", "-c", "echo partial; exit 1" }))
			assert.is_nil((c:put("doomed/small", src)))
			src:close()
			assert.same({ 0, 0 }, { c:stats().requests, c:stats().retries })
			assert.same({}, s3tool(open, "keys", "doomed/"))
		end)

		it("resumes a GET cut or stalled mid-body with a Range, returning identical bytes", function()
			local c <close> = client(proxy)
			local data = random_bytes(9 * MIB + 7)
			s3tool(open, "put", "resume/obj", write_file(dir .. "/r.bin", data))
			faults({
				{ method = "GET", match = "resume/obj", fault = "cut", after = 3 * MIB + 11, times = 1 },
				{ method = "GET", match = "resume/obj", fault = "stall", after = 2 * MIB, times = 1, seconds = 10 },
			})
			local s = assert(c:get("resume/obj"))
			local got = assert(s:readall(64 * MIB))
			assert.equal(#data, #got)
			assert.is_true(got == data, "the bytes read differ")
			assert.same({ 3, #data }, { s:info().attempts, s:info().size })
			assert.same({ "GET cut", "GET stall" }, injected())
			assert.equal(2, c:stats().retries)
		end)

		it("gives a GET whose connection keeps failing an error at the end of the stream", function()
			local c <close> = client(proxy, { retries = 1 })
			assert(c:put_string("resume/short", random_bytes(300000)))
			faults({ { method = "GET", match = "resume/short", fault = "cut", after = 1000, times = -1 } })
			local s = assert(c:get("resume/short"))
			local got, err = s:readall()
			assert.is_nil(got)
			assert.matches("^s3: GET s3://vakap%-test/resume/short: .*%(after 2 attempts%)$", err)
		end)

		it("retries a GET answered 503 before it starts", function()
			local c <close> = client(proxy)
			assert(c:put_string("resume/503", "fine"))
			faults({ { method = "GET", fault = "503", times = 2 } })
			assert.same({ "fine" }, { assert(c:get("resume/503")):readall() })
			assert.equal(2, c:stats().retries)
		end)

		it("names both clocks when the server says RequestTimeTooSkewed, and does not retry", function()
			local c <close> = client(proxy)
			faults({ { fault = "skew", times = -1 } })
			local ok, err = c:put_string("skewed", "x")
			assert.is_nil(ok)
			assert.matches("^s3: PUT s3://vakap%-test/skewed: 403 RequestTimeTooSkewed: .*server time "
				.. "2026%-01%-01T00:00:00Z, local time %d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ$", err)
			assert.equal(0, c:stats().retries)
		end)

		it("says where it could not connect, after its attempts", function()
			local c <close> = s3.client({ bucket = "b-b", endpoint = "http://127.0.0.1:9", access_key = "a",
				secret_key = "s", retries = 2, retry_base_ms = 1 })
			assert.same({ nil, "s3: cannot connect to http://127.0.0.1:9: Connection refused (after 3 attempts)" },
				{ c:put_string("k", "v") })
			assert.same({ nil, "s3: cannot connect to http://127.0.0.1:9: Connection refused (after 3 attempts)" },
				{ c:get("k") })
			assert.same({ 6, 4 }, { c:stats().requests, c:stats().retries })
		end)
	end)
end)

-- Hostile configuration files against the ASan/UBSan build of the binary:
-- the examples' vakap.lua and sites.d files mutated at random (a fixed
-- seed: the same cases each run), bytes flipped, cut, repeated, and
-- tokens of Lua spliced in.  Whatever a file holds, vakap must answer with
-- an exit status of 0, 1 or 2 and, for an error, a message that names the
-- operator's file (never an internal file of vakap's, never a traceback),
-- without a sanitizer report, and within a bounded time.
local tmpdir = require "tmpdir"

local binary = "build/vakap-asan"
local cases = 300

local tokens = { "nil", "{", "}", "(", ")", '"', "'", "\\0", "\0", "..", "site", "files", "mysql", "=",
	"function() end", "error(nil)", "error({})", "string.rep('x', 1e7)", "vakap.tar", "os.getenv",
	"getmetatable('')", "while true do end", "[[", "]]", "--[[", "\255\254", ("a"):rep(300), "-1e309", "0/0" }

local function mutate(src, rnd)
	local out = src
	for _ = 1, rnd(1, 4) do
		local at = rnd(1, #out + 1)
		local how = rnd(1, 4)
		if how == 1 then -- flip a byte
			out = out:sub(1, at - 1) .. string.char(rnd(0, 255)) .. out:sub(at + 1)
		elseif how == 2 then -- cut
			out = out:sub(1, at - 1) .. out:sub(at + rnd(1, 40))
		elseif how == 3 then -- a token
			out = out:sub(1, at - 1) .. tokens[rnd(1, #tokens)] .. out:sub(at)
		else -- repeat a piece
			local piece = out:sub(at, at + rnd(1, 60))
			out = out:sub(1, at - 1) .. piece .. piece .. out:sub(at)
		end
	end
	return out
end

local function write(path, data)
	local f = assert(io.open(path, "wb"))
	f:write(data)
	f:close()
end

describe("hostile configuration files", function()
	local dir
	before_each(function() dir = tmpdir.make() end)
	after_each(function() tmpdir.remove(dir) end)

	it(("get a clear answer naming the operator's file, %d mutated cases"):format(cases), function()
		assert.truthy(io.open(binary), "make build/vakap-asan first")
		local seeds = {
			["vakap.lua"] = tmpdir.read("examples/s3-ssh/vakap.lua"),
			["sites.d/a.lua"] = tmpdir.read("sites.d/example.lua"),
		}
		math.randomseed(20261202)
		local rnd = math.random
		for i = 1, cases do
			local target = i % 2 == 0 and "vakap.lua" or "sites.d/a.lua"
			os.execute(("rm -rf %s/c && mkdir -p %s/c/sites.d"):format(dir, dir))
			for name, src in pairs(seeds) do
				write(("%s/c/%s"):format(dir, name), name == target and mutate(src, rnd) or src)
			end
			local out, ok = tmpdir.sh(("cd %s/c && VAKAP_LUA_DIR= timeout 30 env ASAN_OPTIONS=detect_leaks=1:exitcode=99 "
				.. "%s/%s -c vakap.lua list 2>&1; echo \"rc=$?\""):format(dir, os.getenv("PWD"), binary))
			local rc = tonumber(out:match("rc=(%d+)%s*$"))
			local case = ("case %d (%s):\n%s"):format(i, target, out)
			assert.truthy(ok and (rc == 0 or rc == 1 or rc == 2), case)
			assert.falsy(out:find("AddressSanitizer", 1, true) or out:find("runtime error:", 1, true), case)
			assert.falsy(out:find("stack traceback", 1, true), case)
			if rc == 2 then
				assert.falsy(out:find("lua/vakap/", 1, true), case)
				assert.truthy(out:find("vakap.lua", 1, true) or out:find("sites.d/a.lua", 1, true), case)
			end
		end
	end)
end)

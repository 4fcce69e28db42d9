-- util: names, durations, sizes, times, globs, plain copies.
local util = require "vakap.util"

describe("util", function()
	describe("valid_name", function()
		it("accepts letters, digits, '.', '_' and '-' starting with a letter or digit", function()
			for _, s in ipairs { "a", "acme", "Acme2", "9lives", "a.b_c-d", "www.example.com" } do
				assert.is_true(util.valid_name(s), s)
			end
		end)

		it("refuses anything else", function()
			for _, s in ipairs { "", ".", "..", ".hidden", "-x", "_x", "a b", "a/b", "../x", "é", "a\n" } do
				assert.is_false(util.valid_name(s), s)
			end
		end)

		it("refuses values that are not strings", function()
			assert.is_false(util.valid_name(nil))
			assert.is_false(util.valid_name(42))
			assert.is_false(util.valid_name({}))
		end)
	end)

	describe("duration", function()
		it("reads a number and a unit", function()
			assert.same({ 90 }, { util.duration("90s") })
			assert.same({ 300 }, { util.duration("5m") })
			assert.same({ 93600 }, { util.duration("26h") })
			assert.same({ 604800 }, { util.duration("7d") })
			assert.same({ 1209600 }, { util.duration("2w") })
			assert.same({ 31536000 }, { util.duration("1y") })
		end)

		it("adds up several parts", function()
			assert.same({ 5400 }, { util.duration("1h30m") })
			assert.same({ 90061 }, { util.duration("1d1h1m1s") })
		end)

		it("takes a non-negative integer as seconds", function()
			assert.same({ 0 }, { util.duration(0) })
			assert.same({ 3600 }, { util.duration(3600) })
		end)

		it("refuses what is not a duration, saying what one looks like", function()
			for _, v in ipairs { "soon", "26", "h", "26 h", "1.5h", "-1h", "26H", "1h 30m", "26hours" } do
				assert.same({ nil, ("'%s' is not a duration (like \"26h\", \"7d\", \"1h30m\")"):format(v) },
					{ util.duration(v) }, v)
			end
		end)

		it("refuses negative, fractional and missing values", function()
			assert.same({ nil, "'-1' is not a duration (like \"26h\", \"7d\", \"1h30m\")" }, { util.duration(-1) })
			assert.same({ nil, "'1.5' is not a duration (like \"26h\", \"7d\", \"1h30m\")" }, { util.duration(1.5) })
			assert.same({ nil, "'' is not a duration (like \"26h\", \"7d\", \"1h30m\")" }, { util.duration("") })
			assert.same({ nil, "'nil' is not a duration (like \"26h\", \"7d\", \"1h30m\")" }, { util.duration(nil) })
		end)
	end)

	describe("human_duration", function()
		it("shows seconds under a minute", function()
			assert.equal("0s", util.human_duration(0))
			assert.equal("12s", util.human_duration(12))
			assert.equal("59s", util.human_duration(59))
		end)

		it("rounds fractions of a second", function()
			assert.equal("12s", util.human_duration(12.4))
			assert.equal("13s", util.human_duration(12.5))
			assert.equal("1m", util.human_duration(59.6))
		end)

		it("shows the two largest units", function()
			assert.equal("1m", util.human_duration(60))
			assert.equal("5m 2s", util.human_duration(302))
			assert.equal("1h", util.human_duration(3600))
			assert.equal("1h 1m", util.human_duration(3661))
			assert.equal("1d 2h", util.human_duration(93600))
			assert.equal("3d 4h", util.human_duration(3 * 86400 + 4 * 3600 + 5 * 60 + 6))
			assert.equal("400d", util.human_duration(400 * 86400))
		end)
	end)

	describe("human_size", function()
		it("shows bytes below a KiB", function()
			assert.equal("0 B", util.human_size(0))
			assert.equal("1023 B", util.human_size(1023))
		end)

		it("shows larger sizes in binary units with one decimal", function()
			assert.equal("1.0 KiB", util.human_size(1024))
			assert.equal("1.5 KiB", util.human_size(1536))
			assert.equal("1.0 MiB", util.human_size(1024 * 1024))
			assert.equal("2.5 GiB", util.human_size(2.5 * 1024 ^ 3))
			assert.equal("1.0 TiB", util.human_size(1024 ^ 4))
			assert.equal("1024.0 TiB", util.human_size(1024 ^ 5))
		end)

		it("shows an unknown size as a dash", function()
			assert.equal("-", util.human_size(nil))
		end)
	end)

	describe("times", function()
		local t = 1795298400 -- 2026-11-21T22:00:00Z (date -u -d ... +%s)

		it("stamps a time for object names", function()
			assert.equal("20261121T220000Z", util.stamp(t))
			assert.equal("19700101T000000Z", util.stamp(0))
		end)

		it("writes a time in ISO 8601, UTC", function()
			assert.equal("2026-11-21T22:00:00Z", util.iso(t))
			assert.equal("1970-01-01T00:00:00Z", util.iso(0))
		end)

		it("parses stamps, ISO times and dates", function()
			assert.same({ t }, { util.parse_time("20261121T220000Z") })
			assert.same({ t }, { util.parse_time("2026-11-21T22:00:00Z") })
			assert.same({ t }, { util.parse_time("2026-11-21 22:00:00") })
			assert.same({ t }, { util.parse_time("2026-11-21T22:00Z") })
			assert.same({ t - 22 * 3600 }, { util.parse_time("2026-11-21") })
		end)

		it("refuses what is not a time", function()
			for _, s in ipairs { "yesterday", "2026-11-21T22", "20261121", "21/11/2026", "" } do
				assert.same({ nil, ("'%s' is not a time (like 2026-11-21T22:00:00Z)"):format(s) },
					{ util.parse_time(s) }, s)
			end
		end)

		it("knows fixed points across year ends and leap days", function()
			assert.equal(0, util.timegm(1970, 1, 1, 0, 0, 0))
			assert.equal(946684799, util.timegm(1999, 12, 31, 23, 59, 59))
			assert.equal(946684800, util.timegm(2000, 1, 1, 0, 0, 0))
			assert.equal(951782400, util.timegm(2000, 2, 29, 0, 0, 0))
			assert.equal(951868800, util.timegm(2000, 3, 1, 0, 0, 0))
			assert.equal(1709164800, util.timegm(2024, 2, 29, 0, 0, 0))
			assert.equal(4107456000, util.timegm(2100, 2, 28, 0, 0, 0))
			assert.equal(4107542400, util.timegm(2100, 3, 1, 0, 0, 0)) -- 2100 is no leap year
			assert.equal(-1, util.timegm(1969, 12, 31, 23, 59, 59))
		end)

		it("agrees with os.date's UTC fields, whatever the local time zone", function()
			local checked = 0
			-- every 23h17m31s from 1968 to 2104: every day, hour and leap day many times over
			for s = -60000000, 4260000000, 83851 do
				local f = os.date("!*t", s)
				local back = util.timegm(f.year, f.month, f.day, f.hour, f.min, f.sec)
				if back ~= s then
					error(("timegm(%s) = %d, not %d"):format(os.date("!%c", s), back, s))
				end
				checked = checked + 1
			end
			assert.is_true(checked > 50000)
		end)

		it("reads back every stamp and ISO time it writes", function()
			for _, s in ipairs { 0, 951782399, 951782400, 1709251199, 1735689599, 1735689600, t, 4102444800 } do
				assert.same({ s }, { util.parse_time(util.stamp(s)) })
				assert.same({ s }, { util.parse_time(util.iso(s)) })
			end
		end)
	end)

	describe("glob_to_pattern", function()
		it("turns * and ? into Lua patterns, anchored", function()
			assert.equal("^web.*$", util.glob_to_pattern("web*"))
			assert.equal("^acme%-.$", util.glob_to_pattern("acme-?"))
		end)

		it("keeps sets, negated with !", function()
			assert.equal("^[ab].*$", util.glob_to_pattern("[ab]*"))
			assert.equal("^[^ab]x$", util.glob_to_pattern("[!ab]x"))
		end)

		it("escapes Lua's magic characters", function()
			assert.equal("^a%.b%%c%+d%(e%)$", util.glob_to_pattern("a.b%c+d(e)"))
			assert.equal("^%[x$", util.glob_to_pattern("[x"))
		end)

		it("makes patterns that match what the glob matches", function()
			local p = util.glob_to_pattern("acme.*-prod")
			assert.truthy(("acme.eu-prod"):match(p))
			assert.falsy(("acmeXeu-prod"):match(p))
			assert.falsy(("acme.eu-prod2"):match(p))
			assert.truthy(("web1"):match(util.glob_to_pattern("web[0-9]")))
			assert.falsy(("webx"):match(util.glob_to_pattern("web[0-9]")))
		end)

		it("tells globs from plain names", function()
			assert.is_true(util.is_glob("web*"))
			assert.is_true(util.is_glob("a?"))
			assert.is_true(util.is_glob("[ab]"))
			assert.is_false(util.is_glob("acme.example-1"))
		end)
	end)

	describe("plain", function()
		it("copies plain data as it is", function()
			local v = { a = 1, b = { "x", "y" }, c = { d = true, e = 1.5 } }
			local p = util.plain(v)
			assert.same(v, p)
			assert.are_not.equal(v, p)
			assert.are_not.equal(v.b, p.b)
		end)

		it("turns functions and userdata into strings", function()
			local f = function() end
			local p = util.plain({ f = f, out = io.stdout })
			assert.same({ f = tostring(f), out = tostring(io.stdout) }, p)
		end)

		it("turns numbers JSON cannot carry into strings", function()
			local p = util.plain({ inf = math.huge, ninf = -math.huge, nan = 0 / 0 })
			assert.same({ inf = tostring(math.huge), ninf = tostring(-math.huge), nan = tostring(0 / 0) }, p)
		end)

		it("cuts cycles", function()
			local v = { name = "a" }
			v.self = v
			assert.same({ name = "a", self = "(cycle)" }, util.plain(v))
		end)

		it("copies a table reached twice without a cycle twice", function()
			local shared = { 1 }
			assert.same({ a = { 1 }, b = { 1 } }, util.plain({ a = shared, b = shared }))
		end)

		it("drops keys that are neither strings nor integers", function()
			assert.same({ 1, x = 2 }, util.plain({ 1, x = 2, [true] = 3, [1.5] = 4, [{}] = 5 }))
		end)
	end)

	describe("sorted_keys and chomp", function()
		it("sorts the keys of a table", function()
			assert.same({ "a", "b", "c" }, util.sorted_keys({ c = 1, a = 2, b = 3 }))
			assert.same({}, util.sorted_keys({}))
		end)

		it("trims trailing newlines only", function()
			assert.equal("abc", util.chomp("abc\n\n"))
			assert.equal(" abc ", util.chomp(" abc "))
			assert.equal("a\nb", util.chomp("a\nb\n"))
		end)
	end)

	describe("json", function()
		it("encodes and decodes, with null kept distinct from nil", function()
			local s = util.json.encode({ a = { 1, 2 }, b = util.json.null })
			assert.same({ a = { 1, 2 }, b = util.json.null }, util.json.decode(s))
		end)

		it("returns nil and a message for bad JSON", function()
			local r = table.pack(util.json.decode("{"))
			assert.equal(2, r.n)
			assert.is_nil(r[1])
			assert.is_string(r[2])
		end)
	end)
end)

-- retention.apply: restic's forget rules, on tables of backups written
-- from restic's documented examples and the calendar's corners.
local retention = require "vakap.retention"
local util = require "vakap.util"

-- backups at these times ("2019-11-17T11:00:00Z" or "2019-11-17"), in the
-- order given (apply sorts them)
local function at(times)
	local out = {}
	for i, t in ipairs(times) do
		out[i] = { time = assert(util.parse_time(t)), label = t }
	end
	return out
end

local function labels(list)
	local out = {}
	for i, b in ipairs(list) do out[i] = b.label end
	return out
end

-- the days from first to last (YYYY-MM-DD), at hh:mm
local function daily(first, last, hhmm)
	local out = {}
	local t, stop = util.parse_time(first), util.parse_time(last)
	while t <= stop do
		out[#out + 1] = os.date("!%Y-%m-%dT", t) .. (hhmm or "11:00") .. ":00Z"
		t = t + 86400
	end
	return out
end

local function kept(policy, times)
	local keep = retention.apply(policy, at(times))
	return labels(keep)
end

describe("retention", function()
	it("restic's example: a backup every Sunday for 12 weeks, daily = 4 keeps the last four", function()
		local sundays = {}
		for _, d in ipairs({ "09-01", "09-08", "09-15", "09-22", "09-29", "10-06", "10-13", "10-20",
			"10-27", "11-03", "11-10", "11-17" }) do
			sundays[#sundays + 1] = "2019-" .. d .. "T11:00:00Z"
		end
		local keep, forget = retention.apply({ daily = 4 }, at(sundays))
		assert.same({ "2019-11-17T11:00:00Z", "2019-11-10T11:00:00Z", "2019-11-03T11:00:00Z",
			"2019-10-27T11:00:00Z" }, labels(keep))
		assert.equal(8, #forget)
	end)

	it("restic's example: daily backups, daily = 7 and weekly = 5 keep 7 dailies and 4 more Sundays", function()
		-- 2019-11-17 is a Sunday: the 7 dailies are exactly its ISO week
		local keep, _, reasons = retention.apply({ daily = 7, weekly = 5 },
			at(daily("2019-06-01", "2019-11-17")))
		assert.same({
			"2019-11-17T11:00:00Z", "2019-11-16T11:00:00Z", "2019-11-15T11:00:00Z", "2019-11-14T11:00:00Z",
			"2019-11-13T11:00:00Z", "2019-11-12T11:00:00Z", "2019-11-11T11:00:00Z",
			"2019-11-10T11:00:00Z", "2019-11-03T11:00:00Z", "2019-10-27T11:00:00Z", "2019-10-20T11:00:00Z",
		}, labels(keep))
		assert.same({ "daily", "weekly" }, reasons[keep[1]])
		assert.same({ "daily" }, reasons[keep[2]])
		assert.same({ "weekly" }, reasons[keep[8]])
	end)

	it("keeps the newest of each period that has a backup: gaps do not count", function()
		assert.same({ "2026-01-20", "2026-01-09", "2026-01-05" },
			kept({ daily = 3 }, { "2026-01-01", "2026-01-05", "2026-01-09", "2026-01-20" }))
	end)

	it("keeps one of several backups in one period, the newest", function()
		assert.same({ "2026-03-02T23:00:00Z", "2026-03-01T18:00:00Z" },
			kept({ daily = 2 }, { "2026-03-01T06:00:00Z", "2026-03-01T18:00:00Z", "2026-03-02T01:00:00Z",
				"2026-03-02T23:00:00Z", "2026-02-27T12:00:00Z" }))
	end)

	it("counts periods in UTC: a DST change moves nothing", function()
		-- Europe went to summer time at 2026-03-29T01:00Z; America at 2026-03-08T07:00Z
		assert.same({ "2026-03-29T02:30:00Z", "2026-03-29T01:30:00Z", "2026-03-29T00:30:00Z" },
			kept({ hourly = 3 }, { "2026-03-29T00:30:00Z", "2026-03-29T01:30:00Z", "2026-03-29T02:30:00Z" }))
		assert.same({ "2026-03-08T23:59:00Z", "2026-03-07T23:59:00Z" },
			kept({ daily = 2 }, { "2026-03-08T06:59:00Z", "2026-03-08T07:01:00Z", "2026-03-08T23:59:00Z",
				"2026-03-07T23:59:00Z" }))
	end)

	it("uses ISO weeks: week 53 of 2020 runs into 2021, and weeks start on Monday", function()
		-- 2020-12-31 (Thu) and 2021-01-03 (Sun) are both in 2020-W53; 2021-01-04 is Monday of W01
		assert.same({ "2021-01-04", "2021-01-03", "2020-12-27" },
			kept({ weekly = 3 }, { "2020-12-27", "2020-12-31", "2021-01-03", "2021-01-04" }))
	end)

	it("splits years and months at their ends", function()
		assert.same({ "2021-01-01T00:00:00Z", "2020-12-31T23:59:59Z" },
			kept({ yearly = 2 }, { "2020-06-01T00:00:00Z", "2020-12-31T23:59:59Z", "2021-01-01T00:00:00Z" }))
		assert.same({ "2026-03-01", "2026-02-28", "2026-01-31" },
			kept({ monthly = 3 }, { "2026-01-15", "2026-01-31", "2026-02-01", "2026-02-28", "2026-03-01" }))
	end)

	it("keeps the oldest too while a rule has counts left", function()
		local keep, _, reasons = retention.apply({ daily = 5 },
			at({ "2026-01-01T08:00:00Z", "2026-01-01T10:00:00Z", "2026-01-02T09:00:00Z" }))
		assert.same({ "2026-01-02T09:00:00Z", "2026-01-01T10:00:00Z", "2026-01-01T08:00:00Z" }, labels(keep))
		assert.same({ "daily" }, reasons[keep[3]])
		-- counts used up: the oldest goes
		assert.same({ "2026-01-02T09:00:00Z" },
			kept({ daily = 1 }, { "2026-01-01T08:00:00Z", "2026-01-02T09:00:00Z" }))
	end)

	it("last keeps the newest N, whatever their periods; rules add up", function()
		assert.same({ "2026-01-03T03:00:00Z", "2026-01-03T02:00:00Z", "2026-01-02T00:00:00Z" },
			kept({ last = 2, daily = 2 }, { "2026-01-02T00:00:00Z", "2026-01-03T02:00:00Z",
				"2026-01-03T03:00:00Z", "2026-01-01T00:00:00Z" }))
	end)

	it("within keeps everything newer than the newest minus the duration", function()
		assert.same({ "2026-01-10T00:00:00Z", "2026-01-09T00:00:00Z", "2026-01-08T00:00:01Z" },
			kept({ within = "2d" }, { "2026-01-10T00:00:00Z", "2026-01-09T00:00:00Z",
				"2026-01-08T00:00:01Z", "2026-01-08T00:00:00Z", "2026-01-01T00:00:00Z" }))
	end)

	it("-1 means no limit", function()
		local days = daily("2025-01-01", "2025-12-31")
		assert.equal(365, #kept({ daily = -1 }, days))
	end)

	it("refuses a policy that keeps nothing", function()
		for _, p in ipairs({ {}, { last = 0 }, { daily = 0, weekly = 0 } }) do
			local ok, err = pcall(retention.apply, p, at({ "2026-01-01" }))
			assert.is_false(ok)
			assert.truthy(err:find("the retention policy keeps nothing", 1, true))
		end
	end)

	it("keeps nothing of nothing", function()
		local keep, forget = retention.apply({ daily = 3 }, {})
		assert.same({ {}, {} }, { keep, forget })
	end)
end)

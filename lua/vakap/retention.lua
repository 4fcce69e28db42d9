-- Which backups a retention policy keeps: restic's `forget` rules.
--
--   retention = { last = 3, hourly = 24, daily = 7, weekly = 5,
--                 monthly = 12, yearly = 3, within = "30d" }
--
-- Backups are scanned newest first.  `last = N` keeps the N newest.  Each
-- period rule (`daily = N`, ...) keeps the newest backup of each of the N
-- most recent periods that have one: a period with no backup does not
-- count.  Rules count independently; a backup is kept when any rule keeps
-- it.  Periods are in UTC; weeks are ISO weeks (Monday first, in the ISO
-- week-numbering year).  `within = "30d"` keeps every backup newer than
-- the newest one minus 30 days.  A count of -1 means no limit.  When a
-- rule still has counts left at the end, the oldest backup is kept too
-- (as restic does since 0.17), so a young history is not cut short.
local util = require "vakap.util"

local M = {}

-- The period rules, with the key that names a backup's period.
M.periods = {
	{ name = "hourly", key = function(t) return os.date("!%Y%m%d%H", t) end },
	{ name = "daily", key = function(t) return os.date("!%Y%m%d", t) end },
	{ name = "weekly", key = function(t) return os.date("!%G-W%V", t) end },
	{ name = "monthly", key = function(t) return os.date("!%Y%m", t) end },
	{ name = "yearly", key = function(t) return os.date("!%Y", t) end },
}

local function count_check(v)
	return v >= -1, "must be a count (0 or more, or -1 for no limit)"
end

M.spec = {
	last = { type = "integer", check = count_check },
	hourly = { type = "integer", check = count_check },
	daily = { type = "integer", check = count_check },
	weekly = { type = "integer", check = count_check },
	monthly = { type = "integer", check = count_check },
	yearly = { type = "integer", check = count_check },
	within = { type = "duration" },
}

-- A policy that keeps nothing at all would delete everything: refuse it.
-- -> true | nil, message
function M.check_policy(p)
	if p.within then return true end
	if (p.last or 0) ~= 0 then return true end
	for _, r in ipairs(M.periods) do
		if (p[r.name] or 0) ~= 0 then return true end
	end
	return nil, "the retention policy keeps nothing: give at least one of last, hourly, daily, "
		.. "weekly, monthly, yearly or within"
end

-- Apply policy to backups (each with .time, seconds since the epoch).
-- -> keep, forget (both newest first), and reasons: [backup] = { "daily",
-- "weekly", ... } for each kept one.  Raises on an empty policy.
function M.apply(policy, backups)
	local ok, err = M.check_policy(policy)
	if not ok then error(err, 0) end
	local sorted = {}
	for i, b in ipairs(backups) do sorted[i] = b end
	table.sort(sorted, function(a, b)
		if a.time ~= b.time then return a.time > b.time end
		return (a.stamp or "") > (b.stamp or "")
	end)
	local rules = {}
	if policy.last and policy.last ~= 0 then
		local n = 0
		rules[#rules + 1] = { name = "last", left = policy.last,
			key = function() n = n + 1 return n end }
	end
	for _, r in ipairs(M.periods) do
		local count = policy[r.name]
		if count and count ~= 0 then
			rules[#rules + 1] = { name = r.name, left = count, key = r.key }
		end
	end
	local within_from = policy.within and sorted[1]
		and sorted[1].time - util.duration(policy.within)
	local keep, forget, reasons = {}, {}, {}
	for i, b in ipairs(sorted) do
		local why = {}
		for _, r in ipairs(rules) do
			local k = r.key(b.time)
			if r.left ~= 0 and (k ~= r.last or i == #sorted) then
				r.last = k
				if r.left > 0 then r.left = r.left - 1 end
				why[#why + 1] = r.name
			end
		end
		if within_from and b.time > within_from then
			why[#why + 1] = "within"
		end
		if #why > 0 then
			keep[#keep + 1] = b
			reasons[b] = why
		else
			forget[#forget + 1] = b
		end
	end
	return keep, forget, reasons
end

return M

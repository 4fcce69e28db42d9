-- The status op: for each component (each of its parts: COMPONENT/PART),
-- the last good backup (one with a manifest), its age and size; and the
-- last run of each op.  Read-only: one listing per site, nothing written,
-- no locks.  A monitoring signal: it exits 1 for anything an operator
-- must look at, and says what, in the table and in --json:
--   component states: ok, stale, missing, broken (its newest manifest's
--     data object is gone), bad (its newest backup failed verify),
--     future (its newest backup is dated ahead of this clock); and gone,
--     not counted: a part (a database) the last successful backup did not
--     find, stale since
--   op states: ok, failed, interrupted (started, never ended), running,
--     unreadable; an op no longer configured is shown, not counted

-- Clocks a few minutes apart do not make a backup "future".
local future_slack = 300

-- The parts a component stored (one per database, for all = true), by
-- name; none when it stored one object.  After a change from one layout
-- to the other, only what was stored since counts.
local function latest_parts(found)
	local names = {}
	if not found then return names end
	local since = found.backups[1] and found.backups[1].stamp or ""
	for name, p in pairs(found.parts) do
		if p.backups[1] and p.backups[1].stamp > since then names[#names + 1] = name end
	end
	table.sort(names)
	return names
end

-- The newest verification among a series' backups, from the listing.
local function last_verification(folder, now)
	for _, b in ipairs(folder.backups) do
		if b.verify then
			return { ok = b.verify.ok, stamp = b.stamp, time = b.verify.time and vakap.iso(b.verify.time),
				age = b.verify.time and now - b.verify.time }
		end
	end
	return nil
end

-- The state of a series' newest backup: the worst thing about it first.
local function state_of(last, verified, age, stale_after)
	if not last.data then return "broken" end
	if verified and not verified.ok and verified.stamp == last.stamp then return "bad" end
	if age < -future_slack then return "future" end
	return age > stale_after and "stale" or "ok"
end

local function component_row(c, folder, part, now, stale_after)
	local last = folder and folder.backups[1]
	local row = { component = c.name, part = part, type = c.type, backups = folder and #folder.backups or 0 }
	if not last then
		row.state = "missing"
		return row
	end
	row.time = vakap.iso(last.time)
	row.age = now - last.time
	row.size = last.data and last.data.size
	row.object = last.data and last.data.key
	row.verified = last_verification(folder, now)
	row.state = state_of(last, row.verified, row.age, stale_after)
	if row.state == "broken" then
		row.problem = ("its manifest %s is there, its data object is not"):format(last.manifest.key)
	end
	return row
end

-- A part the repository calls gone (stale, and not stored by the last
-- backup, which succeeded: a database dropped since): shown, not counted.
local function gone(row, gone_parts)
	if row.state == "stale" and gone_parts[row.component .. "/" .. row.part] then
		row.state = "gone"
		row.problem = "the last backup, which succeeded, did not find it: vakap rotate --forget-gone "
			.. "removes its backups"
	end
	return row
end

local function op_rows(cat, ctx)
	local configured = {}
	for _, name in ipairs(ctx.ops or {}) do configured[name] = true end
	local ops = {}
	for _, name in ipairs(vakap.sorted_keys(cat.ops)) do
		local rec = ctx.repository:last_run(cat.ops[name], ctx.now)
		rec.op = name
		rec.configured = ctx.ops == nil or configured[name] or false
		ops[#ops + 1] = rec
	end
	return ops
end

local function component_line(site, c)
	local v = c.verified
	return ("%-20s %-14s %-11s %-21s %9s %10s  %s%s"):format(site,
		c.part and c.component .. "/" .. c.part or c.component,
		c.state == "ok" and "ok" or c.state:upper(), c.time or "never",
		c.age and vakap.human_duration(c.age) or "-", c.size and vakap.human_size(c.size) or "-",
		v and ("%s %s ago (%s)"):format(v.ok and "ok" or "FAILED", v.age and vakap.human_duration(v.age) or "?",
			v.stamp) or "-", c.problem and ("  " .. c.problem) or "")
end

local op_words = { ok = "ok", failed = "FAILED", interrupted = "INTERRUPTED", running = "running",
	unreadable = "UNREADABLE" }

-- The state of an op's last run (a record from an earlier version may
-- carry ok alone).
local function op_state(o)
	return o.state or (o.ok and "ok" or "failed")
end

local function op_line(site, o)
	local state = op_words[op_state(o)] or op_state(o)
	if o.configured == false then state = state .. " (not configured)" end
	return ("%-20s %-14s %-11s %-21s %s"):format(site, "op:" .. o.op, state, o.time or "?", o.error or "")
end

-- "status: 3 ok, 1 stale, 0 missing, 1 broken, 1 op failed"
local function summary(results, count)
	local parts = { ("%d ok"):format(count.ok or 0), ("%d stale"):format(count.stale or 0),
		("%d missing"):format(count.missing or 0) }
	local extra = { { "broken", "broken" }, { "bad", "failed verification" }, { "future", "dated in the future" },
		{ "gone", "gone" },
		{ "op failed", "op run failed" }, { "op interrupted", "op run interrupted" },
		{ "op unreadable", "op record unreadable" } }
	for _, e in ipairs(extra) do
		if (count[e[1]] or 0) > 0 then parts[#parts + 1] = ("%d %s"):format(count[e[1]], e[2]) end
	end
	local unknown = 0
	for _, r in ipairs(results) do
		if not r.ok then unknown = unknown + 1 end
	end
	if unknown > 0 then parts[#parts + 1] = ("%d site%s unknown"):format(unknown, unknown == 1 and "" or "s") end
	return "status: " .. table.concat(parts, ", ")
end

op "status" {
	description = "Show the last good backup of each component, and the last run of each op",
	record = false,

	run = function(site, ctx)
		local cat, err = ctx.repository:list(site.name)
		if not cat then error("cannot list storage: " .. err, 0) end
		local stale_after = ctx.stale_after or site.config.stale_after or ctx.settings.stale_after
		local rows, gone_parts = {}, ctx.repository:gone(cat, ctx.now, stale_after)
		for _, c in ipairs(site.components) do
			local found = cat.components[c.name]
			local parts = latest_parts(found)
			for _, name in ipairs(parts) do
				local row = component_row(c, found.parts[name], name, ctx.now, stale_after)
				rows[#rows + 1] = gone(row, gone_parts)
			end
			if #parts == 0 then rows[#rows + 1] = component_row(c, found, nil, ctx.now, stale_after) end
		end
		return { components = rows, ops = op_rows(cat, ctx), stale_after = stale_after }
	end,

	-- exit 0 all fresh, 1 something an operator must look at, 2 could not tell
	report = function(results)
		local lines, code, count = {}, 0, {}
		lines[1] = ("%-20s %-14s %-11s %-21s %9s %10s  %s"):format("SITE", "COMPONENT", "STATE", "LAST BACKUP", "AGE",
			"SIZE", "VERIFIED")
		local function worse(c) if c > code then code = c end end
		for _, r in ipairs(results) do
			if not r.ok then
				worse(2)
				lines[#lines + 1] = ("%-20s %-14s %-11s %s"):format(r.site, "-", "UNKNOWN", r.error)
			else
				for _, c in ipairs(r.result.components) do
					if c.state ~= "ok" and c.state ~= "gone" then worse(1) end
					count[c.state] = (count[c.state] or 0) + 1
					lines[#lines + 1] = component_line(r.site, c)
				end
				for _, o in ipairs(r.result.ops) do
					local state = op_state(o)
					if o.configured ~= false and state ~= "ok" and state ~= "running" then
						worse(1)
						count["op " .. state] = (count["op " .. state] or 0) + 1
					end
					lines[#lines + 1] = op_line(r.site, o)
				end
				if #r.result.components == 0 then
					lines[#lines + 1] = ("%-20s %-14s %s"):format(r.site, "-", "(no components)")
				end
			end
		end
		return table.concat(lines, "\n"), code, summary(results, count)
	end,
}

-- The status op: for each component (each of its parts: COMPONENT/PART),
-- the last good backup (one with a manifest), its age and size; and the
-- last run of each op.  Read-only: one listing per site, nothing written,
-- no locks.

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

op "status" {
	description = "Show the last good backup of each component, and the last run of each op",
	record = false,

	run = function(site, ctx)
		local cat, err = ctx.repository:list(site.name)
		if not cat then error("cannot list storage: " .. err, 0) end
		local stale_after = ctx.stale_after or site.config.stale_after or ctx.settings.stale_after
		local rows = {}
		local function add(c, folder, part)
			local last = folder and folder.backups[1]
			local row = { component = c.name, part = part, type = c.type, backups = folder and #folder.backups or 0 }
			if last then
				row.time = vakap.iso(last.time)
				row.age = ctx.now - last.time
				row.size = last.data and last.data.size
				row.object = last.data and last.data.key
				row.state = row.age > stale_after and "stale" or "ok"
				-- the newest verification among its backups, from the listing
				for _, b in ipairs(folder.backups) do
					if b.verify then
						row.verified = { ok = b.verify.ok, stamp = b.stamp,
							time = b.verify.time and vakap.iso(b.verify.time), age = b.verify.time and ctx.now - b.verify.time }
						break
					end
				end
				-- the newest backup failed its verification: it cannot be trusted
				if row.verified and not row.verified.ok and row.verified.stamp == last.stamp then row.state = "bad" end
			else
				row.state = "missing"
			end
			rows[#rows + 1] = row
		end
		for _, c in ipairs(site.components) do
			local found = cat.components[c.name]
			local parts = latest_parts(found)
			for _, name in ipairs(parts) do add(c, found.parts[name], name) end
			if #parts == 0 then add(c, found) end
		end
		local ops = {}
		for _, name in ipairs(vakap.sorted_keys(cat.ops)) do
			local rec = ctx.repository:last_run(cat.ops[name])
			rec.op = name
			ops[#ops + 1] = rec
		end
		return { components = rows, ops = ops, stale_after = stale_after }
	end,

	-- exit 0 all fresh, 1 something stale or missing, 2 could not tell
	report = function(results, ctx)
		local lines, code, count = {}, 0, { ok = 0, stale = 0, missing = 0, bad = 0 }
		lines[1] = ("%-20s %-14s %-8s %-21s %9s %10s  %s"):format("SITE", "COMPONENT", "STATE", "LAST BACKUP", "AGE",
			"SIZE", "VERIFIED")
		for _, r in ipairs(results) do
			if not r.ok then
				code = 2
				lines[#lines + 1] = ("%-20s %-14s %-8s %s"):format(r.site, "-", "UNKNOWN", r.error)
			else
				for _, c in ipairs(r.result.components) do
					if c.state ~= "ok" and code == 0 then code = 1 end
					count[c.state] = count[c.state] + 1
					local v = c.verified
					lines[#lines + 1] = ("%-20s %-14s %-8s %-21s %9s %10s  %s"):format(r.site,
						c.part and c.component .. "/" .. c.part or c.component,
						c.state == "ok" and "ok" or c.state:upper(), c.time or "never",
						c.age and vakap.human_duration(c.age) or "-", c.size and vakap.human_size(c.size) or "-",
						v and ("%s %s ago (%s)"):format(v.ok and "ok" or "FAILED", v.age and vakap.human_duration(v.age) or "?",
							v.stamp) or "-")
				end
				for _, o in ipairs(r.result.ops) do
					lines[#lines + 1] = ("%-20s %-14s %-8s %-21s %s"):format(r.site, "op:" .. o.op,
						o.ok and "ok" or "FAILED", o.time or "?", o.error or "")
				end
				if #r.result.components == 0 then
					lines[#lines + 1] = ("%-20s %-14s %s"):format(r.site, "-", "(no components)")
				end
			end
		end
		local unknown = 0
		for _, r in ipairs(results) do
			if not r.ok then unknown = unknown + 1 end
		end
		local summary = ("status: %d ok, %d stale, %d missing%s%s"):format(count.ok, count.stale, count.missing,
			count.bad > 0 and (", %d failed verification"):format(count.bad) or "",
			unknown > 0 and (", %d site%s unknown"):format(unknown, unknown == 1 and "" or "s") or "")
		return table.concat(lines, "\n"), code, summary
	end,
}

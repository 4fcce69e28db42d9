-- The backup op: each component's stream (or each of its parts', one at a
-- time), handed to the repository, which compresses, encrypts, hashes and
-- stores it, and writes its manifest only when the whole stream ended
-- cleanly.  A component or part that fails fails alone.

-- "db", or "db/shop" for the part shop of the component db
local function label(component, part)
	return part and component .. "/" .. part or component
end

-- The objects a component stores: { false } for one, else its parts.
-- -> list | nil, err
local function parts_of(site, c, ctx)
	if not c.def.parts then return { false } end
	local parts, err = c.def.parts(c, site, ctx)
	if parts == false then return { false } end
	if not parts then return nil, err or "cannot list what to back up" end
	if #parts == 0 then return nil, "found nothing to back up" end
	local seen = {}
	for i, p in ipairs(parts) do
		if type(p) ~= "table" or type(p.name) ~= "string" or p.name == "" then
			error(("%s: parts() returned a part %d without a name"):format(c.type, i), 0)
		end
		if seen[p.name] then return nil, ("two parts are named '%s'"):format(p.name) end
		seen[p.name] = true
	end
	return parts
end

op "backup" {
	description = "Back up every component of the site to storage",
	lock = true,

	run = function(site, ctx)
		local rows, failed = {}, {}
		-- every key is checked before any data is read: fail closed
		local writer = ctx.repository:writer(site)
		local function fail(c, pname, err)
			rows[#rows + 1] = { component = c.name, part = pname, ok = false, error = err }
			failed[#failed + 1] = ("%s: %s"):format(label(c.name, pname), err)
		end
		for _, c in ipairs(site.components) do
			local okp, parts, perr = pcall(parts_of, site, c, ctx)
			if not (okp and parts) then fail(c, nil, okp and perr or parts) end
			for _, part in ipairs(okp and parts or {}) do
				local pname = part and part.name or nil
				local ok, m, err = pcall(writer.store, writer, c, part or nil,
					function() return c.def.backup(c, site, ctx, part or nil) end,
					function(bytes) ctx.progress(bytes, label(c.name, pname)) end)
				if ok and m then
					rows[#rows + 1] = { component = c.name, part = pname, ok = true, object = m.object, size = m.size,
						input_bytes = m.input_bytes, sha256 = m.sha256, duration = m.duration }
					vakap.log.debug("%s/%s: stored %s (%s)", site.name, label(c.name, pname), m.object,
						vakap.human_size(m.size))
				else
					fail(c, pname, ok and err or m)
				end
			end
		end
		if #site.components == 0 then
			return { components = rows }, "the site has no components to back up"
		end
		return { components = rows }, #failed > 0 and table.concat(failed, "; ") or nil
	end,

	plan = function(site)
		local rows = {}
		for _, c in ipairs(site.components) do
			rows[#rows + 1] = { component = c.name, type = c.type,
				what = c.def.describe and c.def.describe(c) or c.type }
		end
		return { components = rows }
	end,

	report = function(results)
		local lines = {}
		for _, r in ipairs(results) do
			local comps = r.result and r.result.components or {}
			for _, c in ipairs(comps) do
				if c.ok then
					lines[#lines + 1] = ("%-20s %-14s ok      %10s  %6.1fs  %s"):format(r.site, label(c.component, c.part),
						vakap.human_size(c.size), c.duration or 0, c.object)
				elseif c.error then
					lines[#lines + 1] = ("%-20s %-14s FAILED  %s"):format(r.site, label(c.component, c.part), c.error)
				else
					lines[#lines + 1] = ("%-20s %-14s would back up %s: %s"):format(r.site, c.component,
						c.type, c.what)
				end
			end
			if #comps == 0 and not r.ok then
				lines[#lines + 1] = ("%-20s %-14s FAILED  %s"):format(r.site, "-", r.error)
			end
		end
		return table.concat(lines, "\n")
	end,
}

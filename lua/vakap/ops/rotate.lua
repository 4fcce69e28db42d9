-- The rotate op: apply each component's retention policy (its own, else
-- its site's, else vakap.lua's) to its committed backups, and delete what
-- no rule keeps -- manifests first, so a backup stops existing before its
-- data goes, then the data, each in batches.  The newest backup of a
-- component is never deleted.  Data objects left without a manifest (a
-- failed run's), temporary files and incomplete uploads (a killed run's)
-- are removed once they are more than a day old.  Each part
-- of a component (a database of all = true) is rotated on its own, by the
-- component's policy; with --forget-gone, a part that status calls gone
-- (stale, and not stored by the last backup, which succeeded) loses every
-- backup, its newest too.

-- The policy for component `name` of site: -> policy | nil
local function policy_for(site, ctx, name)
	local c = site:component(name)
	return c and c.options.retention or site.config.retention or ctx.settings.retention
end

-- The stored series of backups of a component: its own, unless it has
-- only parts, and each part's.  -> { { folder, part name | nil } ... }
local function series_of(comp)
	local out = {}
	if #comp.backups > 0 or #comp.orphans > 0 or next(comp.parts) == nil then out[1] = { comp } end
	for _, pname in ipairs(vakap.sorted_keys(comp.parts)) do out[#out + 1] = { comp.parts[pname], pname } end
	return out
end

-- A part gone (status's word: stale, and not stored by the last backup,
-- which succeeded), with --forget-gone: every backup of it goes.
local function forget_all(folder, row, items)
	for _, b in ipairs(folder.backups) do
		row.forgotten[#row.forgotten + 1] = { stamp = b.stamp, size = b.data and b.data.size }
		items[#items + 1] = b
		row.freed = row.freed + (b.data and b.data.size or 0)
	end
	return row
end

-- One series of backups (a component's own, or one of its parts') under
-- policy: what it keeps and forgets in row; what to forget (backups, then
-- leftovers) added to items.  -> row
local function decide_series(ctx, policy, folder, row, items)
	if row.gone then return forget_all(folder, row, items) end
	local keep, forget, reasons = vakap.retention.apply(policy, folder.backups)
	for _, b in ipairs(keep) do
		row.kept[#row.kept + 1] = { stamp = b.stamp, reasons = reasons[b] }
	end
	for _, b in ipairs(forget) do
		-- the newest is kept by any policy check_policy accepts; never delete it regardless
		if b ~= folder.backups[1] then
			row.forgotten[#row.forgotten + 1] = { stamp = b.stamp, size = b.data and b.data.size }
			items[#items + 1] = b
			row.freed = row.freed + (b.data and b.data.size or 0)
		end
	end
	for _, o in ipairs(ctx.repository:leftovers(folder, ctx.now)) do
		row.orphans[#row.orphans + 1] = o.key
		items[#items + 1] = o
		row.freed = row.freed + (o.size or 0)
	end
	return row
end

-- Writes a killed run left unfinished over a day ago (temporary files,
-- incomplete uploads): a row of their own, and removed with the rest.
local function unfinished_writes(site, ctx, rows, items)
	local left, err = ctx.repository:unfinished(site.name, ctx.now)
	if not left then error(err, 0) end
	if #left == 0 then return end
	local row = { component = "(unfinished)", kept = {}, forgotten = {}, orphans = {}, freed = 0 }
	for _, it in ipairs(left) do
		row.orphans[#row.orphans + 1] = it.key
		row.freed = row.freed + (it.size or 0)
		items[#items + 1] = it
	end
	rows[#rows + 1] = row
end

-- The ops whose records a site keeps but that are configured no more:
-- status shows them apart; rotate retires them.
local function retired_ops(cat, ctx)
	local configured, out = {}, {}
	if not ctx.ops then return out end
	for _, name in ipairs(ctx.ops) do configured[name] = true end
	for _, name in ipairs(vakap.sorted_keys(cat.ops)) do
		if not configured[name] then out[#out + 1] = { op = name, entry = cat.ops[name] } end
	end
	return out
end

-- What rotate would do on site: rows per component (per part), and what
-- to forget: backups and leftovers.
local function decide(site, ctx)
	local cat, err = ctx.repository:list(site.name)
	if not cat then error("cannot list storage: " .. err, 0) end
	local rows, items, gone = {}, {}, {}
	if ctx.args and ctx.args.forget_gone then
		gone = ctx.repository:gone(cat, ctx.now, ctx.stale_after or site.config.stale_after or ctx.settings.stale_after)
	end
	for _, name in ipairs(vakap.sorted_keys(cat.components)) do
		local policy = policy_for(site, ctx, name)
		if not policy then
			error(("%s: no retention policy: set retention = { ... } in vakap.lua, the site or the component")
				:format(name), 0)
		end
		for _, s in ipairs(series_of(cat.components[name])) do
			local row = { component = name, part = s[2], kept = {}, forgotten = {}, orphans = {}, freed = 0 }
			row.gone = s[2] and gone[name .. "/" .. s[2]] or nil
			rows[#rows + 1] = decide_series(ctx, policy, s[1], row, items)
		end
	end
	unfinished_writes(site, ctx, rows, items)
	return rows, items, retired_ops(cat, ctx)
end

local function summary_line(site, r, verb)
	local parts = { ("keep %d"):format(#r.kept), ("%s %d"):format(verb, #r.forgotten) }
	if r.gone then parts[#parts + 1] = "gone: every backup" end
	if #r.orphans > 0 then parts[#parts + 1] = ("%d leftover data objects"):format(#r.orphans) end
	if r.freed > 0 then parts[#parts + 1] = ("%s freed"):format(vakap.human_size(r.freed)) end
	return ("%-20s %-14s %s"):format(site, r.part and r.component .. "/" .. r.part or r.component,
		table.concat(parts, ", "))
end

op "rotate" {
	description = "Delete the backups no retention rule keeps",
	lock = true,

	run = function(site, ctx)
		local rows, items, retired = decide(site, ctx)
		-- manifests first, then data: the repository's forget
		local ok, err = ctx.repository:forget(items)
		if not ok then return { components = rows }, err end
		local names = {}
		for _, r in ipairs(retired) do
			ok, err = ctx.repository:forget_runs(site.name, r.entry)
			if not ok then return { components = rows }, ("retiring the records of %s: %s"):format(r.op, err) end
			names[#names + 1] = r.op
		end
		return { components = rows, retired_ops = names }
	end,

	plan = function(site, ctx)
		local rows, _, retired = decide(site, ctx)
		local names = {}
		for _, r in ipairs(retired) do names[#names + 1] = r.op end
		return { components = rows, retired_ops = names, dry_run = true }
	end,

	report = function(results, ctx)
		local lines = {}
		for _, res in ipairs(results) do
			local comps = res.result and res.result.components or {}
			local verb = res.result and res.result.dry_run and "would forget" or "forgot"
			for _, r in ipairs(comps) do
				lines[#lines + 1] = summary_line(res.site, r, verb)
				if ctx and ctx.explain then
					for _, k in ipairs(r.kept) do
						lines[#lines + 1] = ("    %s  keep    %s"):format(k.stamp, table.concat(k.reasons, ", "))
					end
					for _, f in ipairs(r.forgotten) do
						lines[#lines + 1] = ("    %s  forget  no rule keeps it"):format(f.stamp)
					end
					for _, o in ipairs(r.orphans) do
						lines[#lines + 1] = ("    %s  remove  data without a manifest, over a day old"):format(o)
					end
				end
			end
			local retired = res.result and res.result.retired_ops or {}
			if #retired > 0 then
				lines[#lines + 1] = ("%-20s %-14s %s the records of ops no longer configured: %s"):format(res.site,
					"-", res.result.dry_run and "would retire" or "retired", table.concat(retired, ", "))
			end
			if not res.ok then
				lines[#lines + 1] = ("%-20s %-14s FAILED  %s"):format(res.site, "-", res.error)
			end
		end
		return table.concat(lines, "\n")
	end,
}

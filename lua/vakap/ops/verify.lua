-- The verify op (vakap verify [FILTER] [--all]): for the newest backup of
-- each component and part (or every one, with --all), download it, check
-- its SHA-256 against the manifest and its signature against the signer,
-- decrypt, decompress, and check the structure of what comes out (the
-- component's inspect: a tar read to its end, a dump's completion line, a
-- pg_dump archive's table of contents).  The outcome is recorded beside
-- the backup, in the name of a small object (STAMP.verify-ok.json or
-- STAMP.verify-failed.json), so status shows it from its listing alone.

-- Check one backup.  -> { what was found } | nil, problem
local function check_one(site, ctx, series, b)
	local repo = ctx.repository
	local manifest, err = repo:manifest(b, site)
	if not manifest then return nil, err end
	local src
	src, err = repo:open(b)
	if not src then return nil, err end
	local s, perr = repo:plaintext(site, manifest, src)
	if not s then
		src:close()
		return nil, perr
	end
	local c = site:component(series.component)
	local found, ierr
	if c and c.def.inspect then
		found, ierr = c.def.inspect(c, s, manifest)
	else
		local n, derr = vakap.drain(s)
		found, ierr = n and { bytes = n }, derr
	end
	s:close()
	return found, ierr
end

op "verify" {
	description = "Download the newest backups and check them to their last byte",
	record = false,

	run = function(site, ctx)
		local listing, err = ctx.repository:list(site.name)
		if not listing then error("cannot list storage: " .. err, 0) end
		local rows, problems = {}, {}
		for _, s in ipairs(listing.series) do
			local todo = (ctx.args or {}).all and s.backups or { s.backups[1] }
			for _, b in ipairs(todo) do
				local ok, found, problem = pcall(check_one, site, ctx, s, b)
				if not ok then found, problem = nil, found end
				local row = { component = s.label, stamp = b.stamp, ok = found ~= nil,
					found = found, problem = problem }
				rows[#rows + 1] = row
				local recorded, rerr = ctx.repository:record_verification(b, row.ok, problem or found)
				if not recorded then vakap.log.warn("%s", rerr) end
				if not row.ok then
					problems[#problems + 1] = ("%s %s: %s"):format(row.component, b.stamp, problem)
				end
			end
		end
		if #rows == 0 then return { backups = rows }, "no backups to verify" end
		return { backups = rows }, #problems > 0 and table.concat(problems, "; ") or nil
	end,

	report = function(results)
		local lines = {}
		for _, r in ipairs(results) do
			for _, b in ipairs(r.result and r.result.backups or {}) do
				local detail = b.problem or ""
				if b.ok then
					local f = b.found or {}
					detail = vakap.human_size(f.bytes or 0) .. (f.entries and (", %d entries"):format(f.entries) or "")
						.. (f.complete == true and ", complete" or "") .. (f.toc and (", table of contents " .. f.toc) or "")
				end
				lines[#lines + 1] = ("%-20s %-18s %s  %-6s %s"):format(r.site, b.component, b.stamp,
					b.ok and "ok" or "FAILED", detail)
			end
			if not r.ok and not (r.result and r.result.backups and #r.result.backups > 0) then
				lines[#lines + 1] = ("%-20s %-18s FAILED  %s"):format(r.site, "-", r.error)
			end
		end
		return table.concat(lines, "\n")
	end,
}

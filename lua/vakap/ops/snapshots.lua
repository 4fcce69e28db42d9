-- The snapshots op (vakap snapshots SITE [COMPONENT[/PART]]): the stored
-- backups of a site, newest first, with time, size, compression,
-- encryption and signer (from each manifest) and the last verification.

-- A manifest field that is set (JSON null is not).
local function present(v)
	return v ~= nil and v ~= vakap.json.null
end

op "snapshots" {
	description = "List a site's stored backups, newest first",
	record = false,

	run = function(site, ctx)
		local repo = ctx.repository
		local listing, err = repo:list(site.name)
		if not listing then error("cannot list storage: " .. err, 0) end
		local series = listing.series
		local want = ctx.args and ctx.args.component
		if want then
			local s, ferr = repo:find(series, want)
			if not s then error(ferr, 0) end
			series = { s }
		end
		local rows = {}
		for _, s in ipairs(series) do
			for _, b in ipairs(s.backups) do
				local m, merr = repo:manifest(b, site)
				local e = m and m.encryption
				rows[#rows + 1] = {
					component = s.label, stamp = b.stamp, time = vakap.iso(b.time),
					size = b.data and b.data.size, object = b.data and b.data.key,
					compression = m and m.compression, sha256 = m and m.sha256,
					encryption = present(e) and e.type or (m and "none") or nil,
					recipients = present(e) and e.recipients or nil,
					signer = present(e) and present(e.signer) and e.signer or nil,
					verified = b.verify and (b.verify.ok and "ok" or "failed") or nil,
					problem = merr,
				}
			end
		end
		table.sort(rows, function(x, y)
			if x.stamp ~= y.stamp then return x.stamp > y.stamp end
			return x.component < y.component
		end)
		return { backups = rows }
	end,

	report = function(results)
		local lines = { ("%-18s %-21s %10s  %-6s %-18s %-16s %s"):format("COMPONENT", "TIME", "SIZE",
			"COMPR", "ENCRYPTION", "SIGNER", "VERIFIED") }
		for _, r in ipairs(results) do
			if not r.ok then
				lines[#lines + 1] = ("%s: FAILED: %s"):format(r.site, r.error)
			else
				for _, b in ipairs(r.result.backups) do
					local enc = b.encryption == "gpg" and ("gpg, %d recipient%s"):format(#b.recipients,
						#b.recipients == 1 and "" or "s") or b.encryption or "?"
					lines[#lines + 1] = ("%-18s %-21s %10s  %-6s %-18s %-16s %s"):format(b.component, b.time,
						b.size and vakap.human_size(b.size) or "-", b.compression or "?", enc,
						b.signer and b.signer:sub(-16) or "-", b.problem or b.verified or "-")
				end
			end
		end
		return table.concat(lines, "\n")
	end,
}

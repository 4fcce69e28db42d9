-- The check op: can each site's host be reached, does each component find
-- what it needs there (its directory, its command), and is every key its
-- backups are encrypted to or signed with usable, and for how long?

-- One row per key: usable (and until when), expiring soon, or not usable.
local function key_rows(site, ctx, rows, problems)
	local enc = ctx.repository:encryption(site)
	if not enc then return end
	local now = vakap.now()
	for _, k in ipairs(vakap.encryption.keys(enc)) do
		local what = k.role == "recipient" and "gpg recipient" or "gpg signer"
		local warning = vakap.encryption.expiry_warning(k, now)
		local detail = k.problem or warning or ("%s (%s), expires %s"):format(k.fingerprint, k.uid,
			k.expires and os.date("!%Y-%m-%d", k.expires) or "never")
		rows[#rows + 1] = { component = what, state = k.problem and "FAILED" or warning and "warn" or "ok",
			ok = not k.problem, detail = detail, fingerprint = k.fingerprint, expires = k.expires }
		if k.problem then problems[#problems + 1] = k.problem end
	end
	-- as backup does before any data moves: every key, and the signing key
	-- signing a few bytes (its passphrase at hand)
	if enc.sign and #problems == 0 then
		local ok, err = pcall(ctx.repository.writer, ctx.repository, site)
		rows[#rows + 1] = { component = "gpg signing", ok = ok, state = ok and "ok" or "FAILED",
			detail = ok and "the signing key signs" or err }
		if not ok then problems[#problems + 1] = err end
	end
end

-- What rotate would remove: data objects without a manifest and
-- unfinished writes, over a day old.  A row, and a problem when any.
local function leftover_rows(site, ctx, rows, problems)
	local repo = ctx.repository
	local listing, err = repo:list(site.name)
	if not listing then error("cannot list storage: " .. err, 0) end
	local orphans, unfinished = 0, nil
	for _, s in ipairs(listing.series) do orphans = orphans + #repo:leftovers(s, ctx.now) end
	unfinished, err = repo:unfinished(site.name, ctx.now)
	if not unfinished then error(err, 0) end
	local detail = ("%d data object%s without a manifest, %d unfinished write%s, over a day old")
		:format(orphans, orphans == 1 and "" or "s", #unfinished, #unfinished == 1 and "" or "s")
	local clean = orphans + #unfinished == 0
	rows[#rows + 1] = { component = "storage", ok = clean, state = clean and "ok" or "FAILED",
		detail = clean and "no leftovers" or detail .. ": vakap rotate removes them" }
	if not clean then problems[#problems + 1] = "storage: " .. detail end
end

op "check" {
	description = "Check that each site's host, components and keys are usable",
	record = false,

	run = function(site, ctx)
		local rows, problems = {}, {}
		key_rows(site, ctx, rows, problems)
		leftover_rows(site, ctx, rows, problems)
		site:connection()
		for _, c in ipairs(site.components) do
			local ok, err = true, nil
			if c.def.check then
				local fine, res, e = pcall(c.def.check, c, site)
				if not fine then
					ok, err = false, res
				elseif not res then
					ok, err = false, e or "check failed"
				end
			end
			rows[#rows + 1] = { component = c.name, ok = ok, state = ok and "ok" or "FAILED", detail = err }
			if not ok then problems[#problems + 1] = ("%s: %s"):format(c.name, err) end
		end
		return { host = site.host, components = rows },
			#problems > 0 and table.concat(problems, "; ") or nil
	end,

	report = function(results)
		local lines = {}
		for _, r in ipairs(results) do
			if not r.result then
				lines[#lines + 1] = ("%-20s %-14s FAILED  %s"):format(r.site, "-", r.error)
			else
				for _, c in ipairs(r.result.components) do
					lines[#lines + 1] = ("%-20s %-14s %-7s %s"):format(r.site, c.component,
						c.state, c.detail or "")
				end
			end
		end
		return table.concat(lines, "\n")
	end,
}

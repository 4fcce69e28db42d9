-- The restore op (vakap restore SITE COMPONENT[/PART] [--at TIME]
-- (--to FILE | --into-host [--target X])): the newest backup at or
-- before TIME, checked on the way (SHA-256 against the manifest, the
-- signature when one was made), and
--   --to FILE      its plaintext written to FILE, atomically: a failed
--                  check leaves nothing;
--   --into-host    streamed into the component's restore (a database
--                  reloaded, a directory extracted), over the original or
--                  into --target.  Nothing is replaced before the whole
--                  backup has been checked: the stored object is fetched
--                  to a temporary file and read through once, then
--                  restored from that checked copy.

local here = vakap.localhost

-- --to FILE: the plaintext of src (the stored object) into
-- FILE.vakap-tmp, renamed into place.
local function to_file(site, ctx, src, manifest, path, force)
	if here:stat(path) and not force then
		return nil, ("%s exists: remove it, or give --force to replace it"):format(path)
	end
	local s, err = ctx.repository:plaintext(site, manifest, src)
	if not s then return nil, err end
	local tmp = path .. ".vakap-tmp"
	here:remove(tmp)
	local n
	n, err = here:write(s, tmp, { progress = function(b) ctx.progress(b, "restore") end })
	s:close()
	if not n then return nil, err end
	local ok, rerr = here:rename(tmp, path, { replace = force })
	if not ok then
		here:remove(tmp)
		return nil, rerr
	end
	return n
end

-- --into-host: fetch and check first, restore from the checked copy.
local function into_host(site, ctx, c, b, manifest, target)
	local repo = ctx.repository
	local copy = here:temp_path("restore")
	local src, err = repo:fetch(b, manifest)
	if not src then return nil, err end
	local n
	n, err = here:write(src, copy, { mode = 384 })
	src:close()
	if not n then return nil, err end
	local function done(...)
		here:remove(copy)
		return ...
	end
	local s, perr = repo:plaintext(site, manifest, here:read(copy))
	if not s then return done(nil, perr) end
	local bytes, derr = vakap.drain(s)
	s:close()
	if not bytes then return done(nil, "the backup does not check out, nothing was restored: " .. derr) end
	s = repo:plaintext(site, manifest, here:read(copy))
	local ok, rerr = c.def.restore(c, site, s, { target = target, part = manifest.part, manifest = manifest })
	s:close()
	if not ok then return done(nil, rerr) end
	return done(bytes)
end

-- The backup a restore is asked for: the newest of the series at or
-- before --at.  -> series, backup, manifest; raises saying what is missing
local function chosen(site, ctx, a)
	local repo = ctx.repository
	local listing, err = repo:list(site.name)
	if not listing then error("cannot list storage: " .. err, 0) end
	local s
	s, err = repo:find(listing.series, a.component)
	if not s then error(err, 0) end
	local b = repo:pick(s, a.at)
	if not b then
		error(("no backup of %s at or before %s"):format(a.component, vakap.iso(a.at or vakap.now())), 0)
	end
	local manifest
	manifest, err = repo:manifest(b, site)
	if not manifest then error(err, 0) end
	return s, b, manifest
end

op "restore" {
	description = "Restore a backup: to a file, or into the site's host",
	record = false,
	lock = true,

	run = function(site, ctx)
		local a = ctx.args or {}
		local s, b, manifest = chosen(site, ctx, a)
		local row = { component = s.label, stamp = b.stamp, time = vakap.iso(b.time), object = b.data and b.data.key }
		local n, err
		if a.to then
			local src, gerr = ctx.repository:open(b)
			if not src then error(gerr, 0) end
			n, err = to_file(site, ctx, src, manifest, a.to, a.force)
			row.to = a.to
		else
			local c = site:component(s.component)
			if not c then
				error(("%s has backups of '%s', but no such component in its configuration to restore into")
					:format(site.name, s.component), 0)
			end
			n, err = into_host(site, ctx, c, b, manifest, a.target)
			row.into = a.target or "the original"
		end
		if not n then return { restored = row }, err end
		row.bytes = n
		return { restored = row }
	end,

	report = function(results)
		local lines = {}
		for _, r in ipairs(results) do
			local x = r.result and r.result.restored
			if r.ok and x then
				lines[#lines + 1] = ("%s %s: restored the backup of %s (%s) %s"):format(r.site, x.component,
					x.time, vakap.human_size(x.bytes), x.to and ("to " .. x.to) or ("into " .. x.into))
			else
				lines[#lines + 1] = ("%s: restore FAILED: %s"):format(r.site, r.error)
			end
		end
		return table.concat(lines, "\n")
	end,
}

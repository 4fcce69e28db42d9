-- The backup op: each component's stream (or each of its parts', one at a
-- time), compressed, encrypted, hashed and stored; then, only when the
-- whole stream ended cleanly, its manifest.
local vakap = require("vakap.api").vakap
local catalog = require "vakap.catalog"
local encryption = require "vakap.encryption"
local proc = require "vakap.proc"
local util = require "vakap.util"

local extensions = { zstd = "zst", gzip = "gz" }

local function compression(site, ctx)
	local spec = site.config.compress or ctx.settings.compress
	local alg, level = spec:match("^(%a+):?(%d*)$")
	return alg, tonumber(level)
end

-- zstd's worker threads: compress_threads, else one per CPU up to 4, none
-- on one CPU (the pipeline's own thread then compresses)
local function zstd_threads(ctx)
	local n = ctx.settings.compress_threads
	if n then return n end
	local cpus = vakap.compress.cpus()
	return cpus > 1 and math.min(cpus, 4) or 0
end

-- "db", or "db/shop" for the part shop of the component db
local function label(component, part)
	return part and component .. "/" .. part or component
end

-- The newest stored object of each component (and part), from one
-- listing of the site: { [label] = { size, time } }.  Where the storage
-- splits an upload into parts, it starts from the size; a new backup is
-- stamped after the time, so two runs in one second do not collide.
local function previous(site, ctx)
	local found = {}
	local entries = ctx.storage:list(site.name .. "/")
	if not entries then return found end
	local function note(lbl, folder)
		local newest = folder.backups[1]
		local t = newest and newest.time
		for _, o in ipairs(folder.orphans) do
			local ot = util.parse_time(o.key:match("(%d+T%d+Z)[^/]*$") or "")
			if ot and (not t or ot > t) then t = ot end
		end
		found[lbl] = { size = newest and newest.data and newest.data.size, time = t }
	end
	for name, comp in pairs(catalog.scan(site.name, entries).components) do
		note(name, comp)
		for pname, part in pairs(comp.parts) do note(label(name, pname), part) end
	end
	return found
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

-- enc: the prepared encryption, or nil; prev: the newest stored object's
-- { size, time }, or nil; part: one of the component's parts, or nil.
-- -> manifest | nil, err
local function backup_component(site, c, ctx, enc, prev, part)
	local pname = part and part.name
	local started, t0 = util.now(), proc.clock()
	if prev and prev.time and started <= prev.time then started = prev.time + 1 end
	local size_hint = prev and prev.size
	local stamp = util.stamp(started)
	local src, info = c.def.backup(c, site, ctx, part)
	if not src then return nil, info end
	local source <close> = src
	info = info or {}
	local ext, s = info.ext or "out", source
	local alg, level = compression(site, ctx)
	if info.compressed or alg == "none" then
		alg = "none"
	else
		if alg == "zstd" then
			s = vakap.compress.zstd(s, level, zstd_threads(ctx))
		else
			s = vakap.compress[alg](s, level)
		end
		ext = ext .. "." .. extensions[alg]
	end
	if enc then
		s = encryption.encrypt(s, enc, alg ~= "none" or info.compressed)
		ext = ext .. ".gpg"
	end
	local hashed <close> = vakap.hash.sha256(s)
	local key = catalog.data_key(site.name, c.name, stamp, ext, pname)
	-- the chain is read on a thread of its own, so that it goes on while
	-- the storage stores what it took (closed before anything below is
	-- looked at)
	local ahead <close> = vakap.stream.ahead(hashed)
	local put, err = ctx.storage:put(key, ahead, {
		progress = function(bytes) ctx.progress(bytes, label(c.name, pname)) end,
		size_hint = size_hint,
	})
	ahead:close()
	local srcinfo = source:info()
	if not put then return nil, err end
	local manifest = {
		format = 1,
		vakap = ctx.version,
		site = site.name,
		component = c.name,
		part = part,
		type = c.type,
		host = site.host,
		time = util.iso(started),
		stamp = stamp,
		object = key,
		ext = ext,
		size = put.size,
		sha256 = hashed:info().sha256,
		input_bytes = srcinfo.bytes,
		compression = alg,
		encryption = enc and encryption.manifest(enc) or vakap.json.null,
		options = c.options,
		source = { command = info.command, exit_status = srcinfo.exit_status },
		duration = proc.clock() - t0,
	}
	local ok, merr = ctx.storage:put_string(catalog.manifest_key(site.name, c.name, stamp, pname),
		vakap.json.encode(manifest))
	if not ok then
		ctx.storage:delete({ key })
		return nil, "writing the manifest: " .. merr
	end
	return manifest
end

return vakap.op "backup" {
	description = "Back up every component of the site to storage",
	lock = true,

	run = function(site, ctx)
		local rows, failed = {}, {}
		-- every key is checked before any data is read: fail closed
		local enc = encryption.for_site(site.config, ctx.settings)
		enc = enc and encryption.prepare(enc)
		local prev = previous(site, ctx)
		local function fail(c, pname, err)
			rows[#rows + 1] = { component = c.name, part = pname, ok = false, error = err }
			failed[#failed + 1] = ("%s: %s"):format(label(c.name, pname), err)
		end
		for _, c in ipairs(site.components) do
			local okp, parts, perr = pcall(parts_of, site, c, ctx)
			if not (okp and parts) then fail(c, nil, okp and perr or parts) end
			for _, part in ipairs(okp and parts or {}) do
				local pname = part and part.name or nil
				local ok, m, err = pcall(backup_component, site, c, ctx, enc, prev[label(c.name, pname)], part or nil)
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

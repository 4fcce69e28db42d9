-- The repository: the one owner of the stored format, on top of a storage
-- (storage/*).  Every read and write of backups, manifests and records
-- goes through here, and the rules of the format are kept here alone:
--
--   SITE/COMPONENT[/PART]/STAMP.EXT            the data
--   SITE/COMPONENT[/PART]/STAMP.json           its manifest, written last
--   SITE/COMPONENT[/PART]/STAMP.verify-ok.json what verify found (or
--                                              STAMP.verify-failed.json)
--   SITE/_ops/OP.ok.json                       the last run of an op (or
--                                              OP.failed.json)
--
-- (catalog.lua, private to this module, names the keys and reads a
-- listing back.)
--
--  * A backup exists when its manifest exists.  store writes the data,
--    then the manifest, and only once the whole stream ended cleanly.
--  * forget deletes manifests before data: a backup stops existing before
--    its data goes.
--  * A data object without a manifest (a failed run's) is a leftover;
--    leftovers says which are old enough to remove.
--  * plaintext checks the stored bytes against the manifest's SHA-256 and
--    the signature against the signer the manifest names, as it reads.
--
-- Ops get the repository as ctx.repository: an object without fields, so
-- the storage under it (and its delete) is out of their reach.
local catalog = require "vakap.catalog"
local compress = require "vakap.compress"
local encryption = require "vakap.encryption"
local gpg = require "vakap.gpg"
local hash = require "vakap.hash"
local proc = require "vakap.proc"
local sandbox = require "vakap.sandbox"
local stream = require "vakap.stream"
local util = require "vakap.util"

local json = util.json
local M = {}

local Repo, Writer = {}, {}

-- repository or writer -> its state: { storage, settings, version } for a
-- repository; { repo = that, site, enc, alg, level, prev } for a writer
local state = setmetatable({}, { __mode = "k" })

-- A data object without a manifest is removed once this old (seconds).
M.leftover_age = 86400

-- The state of the repository (or writer) a method was called on; a
-- call with a dot instead of a colon is the caller's mistake.
local function own(self, method)
	local st = state[self]
	if not st then
		error(("call %s with a colon, not a dot: %s(...)"):format(method, method), 3)
	end
	return st
end

-- A caller's mistake with an argument: raised at the caller's line.
local function need(ok, method, what)
	if not ok then error(("%s: %s"):format(method, what), 3) end
end

local function is_backup(b)
	return type(b) == "table" and type(b.manifest) == "table"
end

local function is_site(site)
	return type(site) == "table" and type(site.name) == "string" and type(site.config) == "table"
end

-- storage: a storage backend; opts: { settings (vakap.lua's), version }
-- -> repository
function M.open(storage, opts)
	opts = opts or {}
	local repo = sandbox.object(Repo, "the repository")
	state[repo] = { storage = storage, settings = opts.settings or {}, version = opts.version }
	return repo
end

-- "db" or "db/shop" (the part shop of the component db)
function M.label(component, part)
	return part and (component .. "/" .. part) or component
end

-- The series of a scan, sorted by label: a component's own backups (when
-- it has some) and each of its parts'.
local function series_of(comps)
	local out = {}
	for name, comp in pairs(comps) do
		if #comp.backups > 0 or #comp.orphans > 0 then
			out[#out + 1] = { component = name, label = name, backups = comp.backups, orphans = comp.orphans }
		end
		for part, p in pairs(comp.parts) do
			out[#out + 1] = { component = name, part = part, label = M.label(name, part),
				backups = p.backups, orphans = p.orphans }
		end
	end
	table.sort(out, function(a, b) return a.label < b.label end)
	return out
end

-- What the storage holds of a site, from one listing: -> {
--   series = { { component, part, label, backups, orphans } ... } (by label),
--   components = { [name] = { backups, orphans, parts = { [part] = { backups, orphans } } } },
--   ops = { [op] = { key, size, mtime, ok } } } | nil, err
-- A backup is { stamp, time, manifest = entry, data = entry | nil,
-- verify = { ok, time, key } | nil }, newest first; orphans are entries.
-- only: "COMPONENT" or "COMPONENT/PART", to list that folder alone.
function Repo:list(site_name, only)
	local st = own(self, "repository:list")
	need(type(site_name) == "string", "repository:list", "give the site's name: ctx.repository:list(site.name)")
	need(only == nil or type(only) == "string", "repository:list", 'only is "COMPONENT" or "COMPONENT/PART"')
	local prefix = site_name .. "/"
	if only then
		local cname, pname = only:match("^([^/]+)/(.+)$")
		prefix = catalog.folder(site_name, cname or only, pname) .. "/"
	end
	local entries, err = st.storage:list(prefix)
	if not entries then return nil, err end
	local found = catalog.scan(site_name, entries)
	found.series = series_of(found.components)
	return found
end

-- The series named "COMPONENT" or "COMPONENT/PART" in a listing's
-- series -> series | nil, err
function Repo:find(series, name)
	need(type(series) == "table", "repository:find",
		"give a listing's series: ctx.repository:find(listing.series, name)")
	for _, s in ipairs(series) do
		if s.label == name then return s end
	end
	local names = {}
	for _, s in ipairs(series) do names[#names + 1] = s.label end
	return nil, ("no backups of '%s'%s"):format(name,
		#names > 0 and ("; there are backups of: " .. table.concat(names, ", ")) or "")
end

-- The newest backup of a series at or before `at` (seconds; nil: now).
function Repo:pick(series, at)
	need(type(series) == "table" and type(series.backups) == "table", "repository:pick",
		"give one series of a listing")
	for _, b in ipairs(series.backups) do
		if not at or b.time <= at then return b end
	end
	return nil
end

-- The encryption a site's backups are read with (its own, else
-- vakap.lua's), and the signers whose signature reading them requires.
local function trust(st, site)
	local enc = site and encryption.for_site(site.config, st.settings)
	if enc == nil then enc = st.settings.encrypt or nil end
	return encryption.trusted(enc), enc
end

local signed_header = "-----BEGIN PGP SIGNED MESSAGE-----"

-- The text of a manifest, its signature checked: required, by one of
-- trusted, when any is configured; a bad one is refused in any case.
-- -> the JSON text | nil, err
local function checked_text(key, data, trusted, enc)
	local signed = data:sub(1, #signed_header) == signed_header
	if not signed then
		if #trusted == 0 then return data end
		return nil, ("the manifest %s is not signed, and signing is configured: it may be forged; "
			.. "refusing it"):format(key)
	end
	local text, sigs = gpg.verify(data, { homedir = enc and enc.homedir or nil })
	if not text then return nil, ("the manifest %s: %s"):format(key, sigs) end
	local good = {}
	for _, sg in ipairs(sigs) do
		if sg.status == "bad" then
			return nil, ("the manifest %s was changed after it was signed (by %s): refusing it"):format(key, sg.fpr)
		end
		if sg.status == "good" then good[sg.fpr] = true end
	end
	if #trusted == 0 then return text end
	for _, f in ipairs(trusted) do
		if good[f] then return text end
	end
	return nil, ("the manifest %s is not signed by a trusted signer (%s): it may be forged; refusing it")
		:format(key, table.concat(trusted, ", "))
end

-- The manifest of backup b, checked against the signers configured for
-- site (or vakap.lua's when no site is given) -> table | nil, err
function Repo:manifest(b, site)
	local st = own(self, "repository:manifest")
	need(is_backup(b), "repository:manifest", "give a backup of a listing's series")
	need(site == nil or is_site(site), "repository:manifest", "give the site the op runs on, or nothing")
	local data, err = st.storage:get_string(b.manifest.key)
	if not data then return nil, "reading the manifest: " .. err end
	local text
	text, err = checked_text(b.manifest.key, data, trust(st, site))
	if not text then return nil, err end
	local m = util.decode(text)
	if type(m) ~= "table" or type(m.object) ~= "string" or type(m.sha256) ~= "string" then
		return nil, ("the manifest %s is not one vakap wrote"):format(b.manifest.key)
	end
	return m
end

-- A manifest field that is set (JSON null is not).
local function present(v)
	return v ~= nil and v ~= json.null
end

-- The encryption a site's backups are stored with: its own, else
-- vakap.lua's; nil for none.
function Repo:encryption(site)
	local st = own(self, "repository:encryption")
	need(is_site(site), "repository:encryption", "give the site the op runs on")
	return encryption.for_site(site.config, st.settings)
end

-- The options to decrypt with: the keyring of the encryption the site (or
-- vakap.lua) names, and the signers whose good signature is required:
-- the ones configured; with none configured, the one the manifest names.
local function gpg_options(st, site, manifest)
	local trusted, enc = trust(st, site)
	local e = manifest.encryption
	local named = present(e) and present(e.signer) and e.signer or nil
	return {
		homedir = enc and enc.homedir or nil,
		passphrase_file = enc and enc.passphrase_file or nil,
		signers = #trusted > 0 and trusted or nil,
		signer = #trusted == 0 and named or nil,
	}, #trusted > 0
end

-- The stored object of backup b, as it is stored.  -> stream | nil, err
function Repo:open(b)
	local st = own(self, "repository:open")
	need(type(b) == "table", "repository:open", "give a backup of a listing's series")
	if not b.data then return nil, "its data object is missing" end
	return st.storage:get(b.data.key)
end

-- The stored object of backup b, its SHA-256 checked against the
-- manifest as it is read: a changed byte fails the stream.
-- -> stream | nil, err
function Repo:fetch(b, manifest)
	need(type(manifest) == "table", "repository:fetch", "give the backup's manifest (ctx.repository:manifest(b))")
	local src, err = self:open(b)
	if not src then return nil, err end
	return hash.sha256(src, manifest.sha256)
end

-- src (a stored object's bytes: from open, or a copy of them) -> its
-- plaintext stream: the SHA-256 checked against the manifest's, then
-- decrypted (the signature checked against the manifest's signer) and
-- decompressed.  -> stream | nil, err
function Repo:plaintext(site, manifest, src)
	local st = own(self, "repository:plaintext")
	need(is_site(site), "repository:plaintext", "give the site the op runs on")
	need(type(manifest) == "table", "repository:plaintext",
		"give the backup's manifest (ctx.repository:manifest(b))")
	need(src ~= nil, "repository:plaintext", "give the stored object's bytes (ctx.repository:open(b))")
	local s = hash.sha256(src, manifest.sha256)
	local e = manifest.encryption
	local opts, required = gpg_options(st, site, manifest)
	if present(e) then
		if e.type ~= "gpg" then return nil, ("encryption '%s' is not known here"):format(tostring(e.type)) end
		s = gpg.decrypt(s, opts)
	elseif required then
		return nil, ("%s is stored unencrypted, so unsigned, and signing is configured: refusing it")
			:format(manifest.object)
	end
	if manifest.compression == "zstd" then
		s = compress.unzstd(s)
	elseif manifest.compression == "gzip" then
		s = compress.gunzip(s)
	elseif manifest.compression ~= "none" then
		return nil, ("compression '%s' is not known here"):format(tostring(manifest.compression))
	end
	return s
end

-- Storing ------------------------------------------------------------

local extensions = { zstd = "zst", gzip = "gz" }

-- zstd's worker threads: compress_threads, else one per CPU up to 4, none
-- on one CPU (the pipeline's own thread then compresses)
local function zstd_threads(settings)
	local n = settings.compress_threads
	if n then return n end
	local cpus = compress.cpus()
	return cpus > 1 and math.min(cpus, 4) or 0
end

-- The newest stored object of each series, from a listing: { [label] =
-- { size, time } }.  Where the storage splits an upload into parts, it
-- starts from the size; a new backup is stamped after the time, so two
-- runs in one second do not collide.
local function previous(listing)
	local found = {}
	for _, s in ipairs(listing and listing.series or {}) do
		local newest = s.backups[1]
		local t = newest and newest.time
		for _, o in ipairs(s.orphans) do
			local ot = util.parse_time(o.key:match("(%d+T%d+Z)[^/]*$") or "")
			if ot and (not t or ot > t) then t = ot end
		end
		found[s.label] = { size = newest and newest.data and newest.data.size, time = t }
	end
	return found
end

-- A writer of a site's backups.  Every key the site's backups are
-- encrypted to or signed with is checked first, before any data is read:
-- raises naming a key that cannot be used (fail closed).
function Repo:writer(site)
	local st = own(self, "repository:writer")
	need(is_site(site), "repository:writer", "give the site the op runs on")
	local enc = encryption.for_site(site.config, st.settings)
	enc = enc and encryption.prepare(enc)
	local alg, level = (site.config.compress or st.settings.compress):match("^(%a+):?(%d*)$")
	local w = sandbox.object(Writer, "a backup writer")
	state[w] = { repo = st, site = site, enc = enc, alg = alg, level = tonumber(level),
		prev = previous(self:list(site.name)) }
	return w
end

-- src through compression, then encryption.  -> stream, ext, compression
local function encode(w, src, info)
	local ext, s, alg = info.ext or "out", src, w.alg
	if info.compressed or alg == "none" then
		alg = "none"
	else
		if alg == "zstd" then
			s = compress.zstd(s, w.level, zstd_threads(w.repo.settings))
		else
			s = compress[alg](s, w.level)
		end
		ext = ext .. "." .. extensions[alg]
	end
	if w.enc then
		s = encryption.encrypt(s, w.enc, alg ~= "none" or info.compressed)
		ext = ext .. ".gpg"
	end
	return s, ext, alg
end

-- What the manifest of a stored object records.  t: what store saw.
local function manifest_of(w, c, part, t)
	return {
		format = 1,
		vakap = w.repo.version,
		site = w.site.name,
		component = c.name,
		part = part,
		type = c.type,
		host = w.site.host,
		time = util.iso(t.started),
		stamp = t.stamp,
		object = t.key,
		ext = t.ext,
		size = t.size,
		sha256 = t.sha256,
		input_bytes = t.input_bytes,
		compression = t.compression,
		encryption = w.enc and encryption.manifest(w.enc) or json.null,
		options = c.options,
		source = { command = t.command, exit_status = t.exit_status },
		duration = proc.clock() - t.t0,
	}
end

-- A manifest as text: JSON, a field a line (so that no line is long),
-- cleartext-signed by the signing key when one is configured: then
-- restore and verify refuse a manifest its signature does not vouch for.
-- -> text | nil, err
local function manifest_text(w, manifest)
	local lines = {}
	for _, k in ipairs(util.sorted_keys(manifest)) do
		lines[#lines + 1] = ("%s:%s"):format(json.encode(k), json.encode(manifest[k]))
	end
	local text = "{\n" .. table.concat(lines, ",\n") .. "\n}\n"
	if not (w.enc and w.enc.signer) then return text end
	local signed, err = gpg.clearsign(text, { signer = w.enc.signer, homedir = w.enc.homedir,
		passphrase_file = w.enc.passphrase_file })
	if not signed then return nil, "signing the manifest: " .. err end
	return signed
end

-- The manifest, written once the data is stored whole: from then on the
-- backup exists.  When it cannot be written, nothing is deleted: whether
-- a write whose answer was lost took place is the storage's to say, and
-- a data object without a manifest is a leftover that check reports and
-- rotate removes.  -> manifest | nil, err
local function commit(w, c, pname, manifest)
	local text, err = manifest_text(w, manifest)
	if not text then return nil, err end
	local ok
	ok, err = w.repo.storage:put_string(catalog.manifest_key(w.site.name, c.name, manifest.stamp, pname), text)
	if not ok then
		return nil, ("writing the manifest: %s (the data object %s is left for rotate)"):format(err, manifest.object)
	end
	return manifest
end

-- The checks a source's end must pass before anything is stored as whole
-- (stream.tail): it wrote something, unless the component says empty is
-- normal (info.empty); it ends with its completion line (info.marker).
local function checked(src, c, info)
	local what = info.command and info.command[1] or c.type
	return stream.tail(src, {
		empty = not info.empty and ("%s wrote nothing: an empty backup is not stored%s"):format(what,
			info.empty_hint or "") or nil,
		marker = info.marker,
		unmarked = info.marker and ("%s's output does not end with its completion line (%q): it was cut short")
			:format(what, info.marker) or nil,
	})
end

-- Collisions within a run: two backups of a series in one second are
-- stamped a second apart.  Only within seconds: a previous stamp far
-- ahead (a clock that was wrong) does not push every later one.
M.collision_window = 10

local function stamp_time(prev)
	local now = util.now()
	if prev and prev.time and now <= prev.time and prev.time - now < M.collision_window then
		return prev.time + 1
	end
	return now
end

-- writer:store(c, part, open, progress) -> manifest | nil, err
--   c: the component instance; part: one of its parts, or nil;
--   open() -> the source stream and what it is ({ ext, compressed,
--   command, empty (true: empty output is normal), marker (the text its
--   last 4 KiB must hold: a completion line) }) | nil, err;
--   progress(bytes) as the data is stored.
-- The source goes through compression, encryption and SHA-256 into the
-- storage; the manifest follows only if all of it ended cleanly.
function Writer:store(c, part, open, progress)
	local w = own(self, "writer:store")
	need(type(c) == "table" and type(c.name) == "string", "writer:store", "give one of the site's components")
	need(part == nil or type(part) == "table" and type(part.name) == "string", "writer:store",
		"give the part as parts() listed it, or nil")
	need(type(open) == "function", "writer:store", "give a function that opens the component's stream")
	local pname = part and part.name
	local prev = w.prev[M.label(c.name, pname)]
	local t = { started = stamp_time(prev), t0 = proc.clock() }
	t.stamp = util.stamp(t.started)
	local src, info = open()
	if not src then return nil, info end
	local source <close> = src
	info = info or {}
	local s
	s, t.ext, t.compression = encode(w, checked(source, c, info), info)
	local hashed <close> = hash.sha256(s)
	t.key = catalog.data_key(w.site.name, c.name, t.stamp, t.ext, pname)
	-- the chain is read on a thread of its own, so that it goes on while
	-- the storage stores what it took (closed before anything below is
	-- looked at)
	local ahead <close> = stream.ahead(hashed)
	local put, err = w.repo.storage:put(t.key, ahead, { progress = progress, size_hint = prev and prev.size })
	ahead:close()
	local srcinfo = source:info()
	if not put then return nil, err end
	t.size, t.sha256, t.command = put.size, hashed:info().sha256, info.command
	t.input_bytes, t.exit_status = srcinfo.bytes, srcinfo.exit_status
	return commit(w, c, pname, manifest_of(w, c, part, t))
end

-- Records ------------------------------------------------------------

-- Record that a run of op on a site started (before it does anything):
-- a run that never records its end (killed, its machine gone) shows as
-- interrupted.  -> true | nil, err
function Repo:record_start(site_name, op_name, started)
	local st = own(self, "repository:record_start")
	need(type(site_name) == "string" and type(op_name) == "string" and type(started) == "number",
		"repository:record_start", "give the site's and the op's names, and the run's start")
	local rec = { op = op_name, site = site_name, time = util.iso(started), host = proc.hostname(),
		pid = proc.pid(), vakap = st.version }
	return st.storage:put_string(catalog.op_key(site_name, op_name, "started"), json.encode(rec), { replace = true })
end

-- Record a run of op on a site (out: { ok, error, result, duration };
-- started: seconds), replacing the record of the other outcome, one in
-- the earlier form, and the record that it started.  -> true | nil, err
function Repo:record_run(site_name, op_name, out, started)
	local st = own(self, "repository:record_run")
	need(type(site_name) == "string" and type(op_name) == "string", "repository:record_run",
		"give the site's and the op's names")
	need(type(out) == "table" and type(started) == "number", "repository:record_run",
		"give the run's outcome and its start")
	local rec = {
		op = op_name, site = site_name, time = util.iso(started), ok = out.ok,
		error = out.error, result = out.result, duration = out.duration, vakap = st.version,
	}
	local ok, err = st.storage:put_string(catalog.op_key(site_name, op_name, out.ok), json.encode(rec),
		{ replace = true })
	if not ok then return nil, err end
	st.storage:delete({ catalog.op_key(site_name, op_name, not out.ok), catalog.op_key(site_name, op_name),
		catalog.op_key(site_name, op_name, "started") })
	return true
end

-- A record read whole, or nil.
local function read_record(storage, key)
	local data = storage:get_string(key)
	local rec = data and util.decode(data)
	return type(rec) == "table" and rec or nil
end

-- A run that started after the last one ended, and never ended itself:
-- still running (its process alive on this machine; on another machine,
-- for a day after it started, since it cannot be asked), or interrupted.
local function unfinished(storage, entry, now)
	local rec = read_record(storage, entry.started.key) or {}
	local t = util.parse_time(tostring(rec.time or "")) or entry.started.mtime or now
	local running
	if rec.host == proc.hostname() then
		running = type(rec.pid) == "number" and proc.alive(math.tointeger(rec.pid))
	else
		running = now - t < 86400
	end
	return { state = running and "running" or "interrupted", time = util.iso(t), ok = false,
		host = rec.host, pid = rec.pid,
		error = running and ("running since %s on %s"):format(util.iso(t), tostring(rec.host))
			or ("started %s on %s and never ended: interrupted"):format(util.iso(t), tostring(rec.host)) }
end

-- The last run of an op, from a listing's ops entry: a success from the
-- listing alone; a failure's message (and a record in the earlier form)
-- read from the record; a run that started after it and has not ended,
-- read from its start record.  now: the time of the question.
-- -> { state = "ok" | "failed" | "running" | "interrupted" | "unreadable",
--      time, ok, error }
function Repo:last_run(entry, now)
	local st = own(self, "repository:last_run")
	need(type(entry) == "table" and (entry.key or entry.started), "repository:last_run",
		"give an entry of a listing's ops")
	now = now or util.now()
	if entry.started and (not entry.key or (entry.started.mtime or 0) > (entry.mtime or 0)) then
		return unfinished(st.storage, entry, now)
	end
	if entry.ok then return { state = "ok", time = entry.mtime and util.iso(entry.mtime), ok = true } end
	local rec = read_record(st.storage, entry.key)
	if not rec then return { state = "unreadable", ok = false } end
	return { state = rec.ok and "ok" or "failed", time = rec.time, ok = rec.ok,
		error = rec.error ~= json.null and rec.error or nil }
end

-- The parts (COMPONENT/PART) the last backup of a site stored, when that
-- backup succeeded: { [label] = true } | nil.
local function last_stored(storage, listing)
	local entry = listing.ops.backup
	if not entry or not entry.key or entry.ok == false then return nil end
	local rec = read_record(storage, entry.key)
	local result = rec and rec.ok == true and type(rec.result) == "table" and rec.result
	if not result then return nil end
	local out = {}
	for _, r in ipairs(type(result.components) == "table" and result.components or {}) do
		if type(r) == "table" and r.ok and r.part then out[M.label(r.component, r.part)] = true end
	end
	return out
end

-- The parts of a listing that are gone: stale at time now (older than
-- stale_after), and not stored by the last backup, which succeeded (a
-- database dropped since, which all = true no longer lists).  Status
-- shows them without counting them; rotate --forget-gone removes them.
-- -> { [label] = true }
function Repo:gone(listing, now, stale_after)
	local st = own(self, "repository:gone")
	need(type(listing) == "table" and type(listing.ops) == "table" and type(listing.series) == "table",
		"repository:gone", "give a listing (ctx.repository:list(site.name))")
	need(type(now) == "number" and type(stale_after) == "number", "repository:gone",
		"give the time (ctx.now) and the age past which a backup is stale")
	local out, stored = {}, nil
	for _, s in ipairs(listing.series) do
		local newest = s.part and s.backups[1]
		if newest and now - newest.time > stale_after then
			stored = stored or last_stored(st.storage, listing) or false
			if not stored then return out end
			if not stored[s.label] then out[s.label] = true end
		end
	end
	return out
end

-- Record what verify found of backup b beside it, the outcome in the
-- name (so a listing tells it), replacing the other outcome's record.
-- -> true | nil, err
function Repo:record_verification(b, ok, detail)
	local st = own(self, "repository:record_verification")
	need(is_backup(b), "repository:record_verification", "give a backup of a listing's series")
	local key = catalog.verify_key(b.manifest.key, ok)
	local rec = { time = util.iso(util.now()), ok = ok, detail = detail, vakap = st.version }
	local done, err = st.storage:put_string(key, json.encode(rec), { replace = true })
	if not done then return nil, ("cannot record the verification in %s: %s"):format(key, err) end
	local other = catalog.verify_key(b.manifest.key, not ok)
	if b.verify and b.verify.key == other then st.storage:delete({ other }) end
	return true
end

-- Forgetting ---------------------------------------------------------

-- The leftovers of a series (data objects without a manifest) old enough
-- at time now to be removed.  -> entries
function Repo:leftovers(series, now)
	need(type(series) == "table" and type(series.orphans) == "table", "repository:leftovers",
		"give one series of a listing")
	need(type(now) == "number", "repository:leftovers", "give the time (ctx.now)")
	local old, out = now - M.leftover_age, {}
	for _, o in ipairs(series.orphans) do
		if o.mtime and o.mtime < old then out[#out + 1] = o end
	end
	return out
end

-- The writes of a site that a killed run left unfinished (temporary
-- files, incomplete uploads: no listing shows them) old enough at time
-- now to be removed.  -> { { key, mtime, what } ... } | nil, err
function Repo:unfinished(site_name, now)
	local st = own(self, "repository:unfinished")
	need(type(site_name) == "string" and type(now) == "number", "repository:unfinished",
		"give the site's name and the time (ctx.now)")
	return st.storage:leftovers(site_name .. "/", now - M.leftover_age)
end

-- Forget backups and remove leftovers (items: backups, leftover entries
-- of listings, and unfinished writes, in any mix): every manifest first,
-- since a backup stops existing when its manifest goes; then the data and
-- verification records; then the unfinished writes.  -> true | nil, err
function Repo:forget(items)
	local st = own(self, "repository:forget")
	need(type(items) == "table", "repository:forget", "give a list of backups and leftovers")
	local manifests, data, unfinished = {}, {}, {}
	for _, it in ipairs(items) do
		if it.what then
			unfinished[#unfinished + 1] = it
		elseif it.manifest then
			manifests[#manifests + 1] = it.manifest.key
			if it.verify then data[#data + 1] = it.verify.key end
			if it.data then data[#data + 1] = it.data.key end
		else
			data[#data + 1] = it.key
		end
	end
	local storage = st.storage
	if #manifests > 0 then
		local ok, err = storage:delete(manifests)
		if not ok then return nil, "deleting manifests: " .. err end
	end
	if #data > 0 then
		local ok, err = storage:delete(data)
		if not ok then return nil, "deleting data: " .. err end
	end
	if #unfinished > 0 then
		local ok, err = storage:remove_leftovers(unfinished)
		if not ok then return nil, "removing unfinished writes: " .. err end
	end
	return true
end

-- The records of an op's runs on a site (from a listing's ops entry), to
-- retire an op no longer configured.  -> true | nil, err
function Repo:forget_runs(site_name, entry)
	local st = own(self, "repository:forget_runs")
	need(type(site_name) == "string" and type(entry) == "table", "repository:forget_runs",
		"give the site's name and an entry of a listing's ops")
	local keys = {}
	if entry.key then keys[#keys + 1] = entry.key end
	if entry.started then keys[#keys + 1] = entry.started.key end
	if #keys == 0 then return true end
	return st.storage:delete(keys)
end

-- The storage, for people and for the lock's name: "dir /var/backups".
function Repo:describe()
	return own(self, "repository:describe").storage:describe()
end

-- A time-limited link to backup b's data.  -> url | nil, err
function Repo:presign(b, seconds)
	local storage = own(self, "repository:presign").storage
	if not storage.presign then
		return nil, ("vakap url needs s3 storage; %s holds plain files"):format(storage:describe())
	end
	return storage:presign(b.data.key, seconds)
end

return M

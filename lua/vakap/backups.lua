-- Reading stored backups back: the series a site has (a component, or a
-- part of one, like one database), choosing a backup by time, its
-- manifest, and the stream of its plaintext -- decrypted, decompressed,
-- with its SHA-256 and signature checked on the way, so that a changed
-- byte fails the stream instead of ending it.
local catalog = require "vakap.catalog"
local compress = require "vakap.compress"
local encryption = require "vakap.encryption"
local gpg = require "vakap.gpg"
local hash = require "vakap.hash"
local util = require "vakap.util"

local M = {}

-- "db" or "db/shop" (a part)
function M.label(s)
	return s.part and (s.component .. "/" .. s.part) or s.component
end

-- Every series of site's backups, from one listing, sorted by label:
-- { { component, part, backups (newest first), orphans } ... } | nil, err
function M.series(storage, site_name)
	local entries, err = storage:list(site_name .. "/")
	if not entries then return nil, err end
	local out = {}
	for name, comp in pairs(catalog.scan(site_name, entries).components) do
		if #comp.backups > 0 or #comp.orphans > 0 then
			out[#out + 1] = { component = name, backups = comp.backups, orphans = comp.orphans }
		end
		for part, p in pairs(comp.parts or {}) do
			out[#out + 1] = { component = name, part = part, backups = p.backups, orphans = p.orphans }
		end
	end
	table.sort(out, function(a, b) return M.label(a) < M.label(b) end)
	return out
end

-- The series named "COMPONENT" or "COMPONENT/PART" -> series | nil, err
function M.find(series, name)
	for _, s in ipairs(series) do
		if M.label(s) == name then return s end
	end
	local names = {}
	for _, s in ipairs(series) do names[#names + 1] = M.label(s) end
	return nil, ("no backups of '%s'%s"):format(name,
		#names > 0 and ("; there are backups of: " .. table.concat(names, ", ")) or "")
end

-- The newest backup of a series at or before `at` (seconds; nil: now).
function M.pick(s, at)
	for _, b in ipairs(s.backups) do
		if not at or b.time <= at then return b end
	end
	return nil
end

-- The manifest of backup b -> table | nil, err
function M.manifest(storage, b)
	local data, err = storage:get_string(b.manifest.key)
	if not data then return nil, "reading the manifest: " .. err end
	local m = util.decode(data)
	if type(m) ~= "table" or type(m.object) ~= "string" or type(m.sha256) ~= "string" then
		return nil, ("the manifest %s is not one vakap wrote"):format(b.manifest.key)
	end
	return m
end

-- A manifest field that is set (JSON null is not).
local function present(v)
	return v ~= nil and v ~= util.json.null
end
M.present = present

-- The options to decrypt with: the keyring of the encryption the site (or
-- vakap.lua) names, and the signer the manifest recorded, whose good
-- signature is then required.
function M.gpg_options(site_config, settings, manifest)
	local enc = encryption.for_site(site_config, settings)
		or (settings.encrypt ~= nil and settings.encrypt) or nil
	local e = manifest.encryption
	return {
		homedir = enc and enc.homedir or nil,
		passphrase_file = enc and enc.passphrase_file or nil,
		signer = present(e) and present(e.signer) and e.signer or nil,
	}
end

-- src (the stored object's bytes) -> its plaintext stream.  The SHA-256
-- is checked against the manifest's, the signature against its signer.
function M.plaintext(src, manifest, gpg_opts)
	local s = hash.sha256(src, manifest.sha256)
	local e = manifest.encryption
	if present(e) then
		if e.type ~= "gpg" then return nil, ("encryption '%s' is not known here"):format(tostring(e.type)) end
		s = gpg.decrypt(s, gpg_opts or {})
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

-- Read s to its end, discarding it, keeping its last `keep` bytes.
-- -> bytes, tail | nil, err
function M.drain(s, keep)
	local n, tail = 0, ""
	keep = keep or 0
	while true do
		local chunk, err = s:read(131072)
		if not chunk then
			if err then return nil, err end
			return n, tail
		end
		n = n + #chunk
		if keep > 0 then tail = (tail .. chunk):sub(-keep) end
	end
end

-- An inspect for dumps that end with a line saying they are complete.
function M.ends_with(marker, what)
	return function(_, s)
		local n, tail = M.drain(s, 512)
		if not n then return nil, tail end
		if not tail:find(marker, 1, true) then
			return nil, ("%s does not end with its completion line (\"%s\"): it was cut short"):format(what, marker)
		end
		return { bytes = n, complete = true }
	end
end

return M

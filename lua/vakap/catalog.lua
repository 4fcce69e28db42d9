-- The storage layout, and reading a listing back into backups: the key
-- layout of repository.lua, private to it (nothing else builds a key or
-- scans a listing).
--
--   SITE/COMPONENT/20261121T220000Z.sql.zst.gpg   the data
--   SITE/COMPONENT/20261121T220000Z.json          its manifest, written last
--   SITE/COMPONENT/PART/20261121T220000Z.sql.zst  a part of a component that
--   SITE/COMPONENT/PART/20261121T220000Z.json     stores several (a database)
--   SITE/COMPONENT/20261121T220000Z.verify-ok.json     what vakap verify found
--   SITE/_ops/OP.ok.json                          the last run of an op (or OP.failed.json)
--
-- A backup exists when its manifest exists.
local util = require "vakap.util"

local M = {}

M.ops_folder = "_ops"

-- A part's name as one segment of a key: letters, digits, '_', '-' and
-- '.' as they are (but not a leading '.'), any other byte as %XX.
function M.part_segment(name)
	local seg = name:gsub("[^A-Za-z0-9_.-]", function(c) return ("%%%02X"):format(c:byte()) end)
	return (seg:gsub("^%.", "%%2E"))
end

function M.part_name(segment)
	return (segment:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

-- SITE/COMPONENT, or SITE/COMPONENT/PART for a part
function M.folder(site, component, part)
	if part then return ("%s/%s/%s"):format(site, component, M.part_segment(part)) end
	return ("%s/%s"):format(site, component)
end

function M.data_key(site, component, stamp, ext, part)
	return ("%s/%s.%s"):format(M.folder(site, component, part), stamp, ext)
end

function M.manifest_key(site, component, stamp, part)
	return ("%s/%s.json"):format(M.folder(site, component, part), stamp)
end

-- Where verify records its result beside a backup: the outcome is in the
-- name, so a listing tells it without reading a byte.
function M.verify_key(manifest_key, ok)
	return (manifest_key:gsub("%.json$", ok and ".verify-ok.json" or ".verify-failed.json"))
end

-- The record of an op's last run on a site: its outcome in the name
-- (OP.ok.json, OP.failed.json; ok = "started": OP.started.json, written
-- when a run starts), so status knows it from the listing; the name
-- without an outcome is how earlier versions wrote it.
function M.op_key(site, op, ok)
	local outcome = ok == nil and "" or ok == "started" and ".started" or ok and ".ok" or ".failed"
	return ("%s/%s/%s%s.json"):format(site, M.ops_folder, op, outcome)
end

-- A file of a folder, by its stamp: the manifest or the data.
local function add(folder, stamp, ext, e)
	local b = folder.by_stamp[stamp] or { stamp = stamp, time = util.parse_time(stamp) }
	folder.by_stamp[stamp] = b
	if ext == "json" then
		b.manifest = e
	elseif ext == "verify-ok.json" or ext == "verify-failed.json" then
		b.verify = { ok = ext == "verify-ok.json", time = e.mtime, key = e.key }
	elseif not ext:find("%.json$") then
		b.data = e
	end
end

-- by_stamp -> backups (newest first) and orphans
local function settle(folder)
	folder.backups, folder.orphans = {}, {}
	for _, b in pairs(folder.by_stamp) do
		if b.manifest then
			folder.backups[#folder.backups + 1] = b
		elseif b.data then
			folder.orphans[#folder.orphans + 1] = b.data
		end
	end
	table.sort(folder.backups, function(a, b) return a.stamp > b.stamp end)
	folder.by_stamp = nil
end

-- An op's record in the listing: the newest outcome (OP.ok.json,
-- OP.failed.json, or OP.json as earlier versions wrote it), and the
-- record that a run started (OP.started.json).
local function add_op(ops, name, e)
	local op, outcome = name:match("^(.+)%.(%a+)$")
	if outcome ~= "ok" and outcome ~= "failed" and outcome ~= "started" then op, outcome = name, nil end
	local rec = ops[op] or {}
	ops[op] = rec
	if outcome == "started" then
		rec.started = { key = e.key, mtime = e.mtime }
	elseif not rec.key or (e.mtime or 0) > (rec.mtime or 0) then
		rec.key, rec.size, rec.mtime = e.key, e.size, e.mtime
		if outcome then rec.ok = outcome == "ok" else rec.ok = nil end
	end
end

-- A listing of SITE/ -> {
--   components = { [name] = { backups = { newest first: { stamp, time,
--     manifest = entry, data = entry | nil } }, orphans = { entries },
--     parts = { [part name] = { backups, orphans } } } },
--   ops = { [name] = { key, size, mtime, ok (from the name: true, false,
--     or nil for the earlier form), started = { key, mtime } | nil } } }
--   (key is nil when a run started and none ever ended)
-- Orphans are data objects whose manifest does not exist.
function M.scan(site, entries)
	local comps, ops = {}, {}
	local prefix = site .. "/"
	for _, e in ipairs(entries) do
		local rest = e.key:sub(1, #prefix) == prefix and e.key:sub(#prefix + 1) or ""
		local comp, seg, file = rest:match("^([^/]+)/([^/]+)/([^/]+)$")
		if not comp then comp, file = rest:match("^([^/]+)/([^/]+)$") end
		local stamp, ext = (file or ""):match("^(%d%d%d%d%d%d%d%dT%d%d%d%d%d%dZ)%.(.+)$")
		if comp == M.ops_folder then
			local name = not seg and file:match("^(.+)%.json$")
			if name then add_op(ops, name, e) end
		elseif stamp then
			local c = comps[comp] or { by_stamp = {}, parts = {} }
			comps[comp] = c
			local folder = c
			if seg then
				local name = M.part_name(seg)
				folder = c.parts[name] or { by_stamp = {} }
				c.parts[name] = folder
			end
			add(folder, stamp, ext, e)
		end
	end
	for _, c in pairs(comps) do
		settle(c)
		for _, p in pairs(c.parts) do settle(p) end
	end
	return { components = comps, ops = ops }
end

return M

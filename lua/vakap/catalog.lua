-- The storage layout, and reading a listing back into backups:
--
--   SITE/COMPONENT/20261121T220000Z.sql.zst.gpg   the data
--   SITE/COMPONENT/20261121T220000Z.json          its manifest, written last
--   SITE/_ops/OP.json                             the last run of an op
--
-- A backup exists when its manifest exists.
local util = require "vakap.util"

local M = {}

M.ops_folder = "_ops"

function M.data_key(site, component, stamp, ext)
	return ("%s/%s/%s.%s"):format(site, component, stamp, ext)
end

function M.manifest_key(site, component, stamp)
	return ("%s/%s/%s.json"):format(site, component, stamp)
end

function M.op_key(site, op)
	return ("%s/%s/%s.json"):format(site, M.ops_folder, op)
end

-- A listing of SITE/ -> {
--   components = { [name] = { backups = { newest first: { stamp, time,
--     manifest = entry, data = entry | nil } }, orphans = { entries } } },
--   ops = { [name] = entry } }
-- Orphans are data objects whose manifest does not exist.
function M.scan(site, entries)
	local comps, ops = {}, {}
	local prefix = site .. "/"
	for _, e in ipairs(entries) do
		local rest = e.key:sub(1, #prefix) == prefix and e.key:sub(#prefix + 1)
		local comp, file = (rest or ""):match("^([^/]+)/([^/]+)$")
		if comp == M.ops_folder then
			local op = file:match("^(.+)%.json$")
			if op then ops[op] = e end
		elseif comp then
			local stamp, ext = file:match("^(%d%d%d%d%d%d%d%dT%d%d%d%d%d%dZ)%.(.+)$")
			if stamp then
				local c = comps[comp] or { by_stamp = {} }
				comps[comp] = c
				local b = c.by_stamp[stamp] or { stamp = stamp, time = util.parse_time(stamp) }
				c.by_stamp[stamp] = b
				if ext == "json" then
					b.manifest = e
				elseif not ext:find("%.json$") then
					b.data = e
				end
			end
		end
	end
	for _, c in pairs(comps) do
		c.backups, c.orphans = {}, {}
		for _, b in pairs(c.by_stamp) do
			if b.manifest then
				c.backups[#c.backups + 1] = b
			elseif b.data then
				c.orphans[#c.orphans + 1] = b.data
			end
		end
		table.sort(c.backups, function(a, b) return a.stamp > b.stamp end)
		c.by_stamp = nil
	end
	return { components = comps, ops = ops }
end

return M

-- Choosing sites: FILTER is a site name or glob ("web*"), "tag:NAME" or
-- "host:NAME" (a glob too); -x FILTER excludes.  No filter means every site.
local util = require "vakap.util"

local M = {}

local function glob_match(glob, s)
	if not util.is_glob(glob) then return glob == s end
	return s:match(util.glob_to_pattern(glob)) ~= nil
end

-- Does one filter select the site?
function M.matches(f, site)
	local kind, value = f:match("^(%a+):(.*)$")
	if kind == "tag" then
		for _, t in ipairs(site.tags) do
			if glob_match(value, t) then return true end
		end
		return false
	elseif kind == "host" then
		return glob_match(value, site.host)
	end
	return glob_match(f, site.name)
end

-- -> the sites in declared order | nil, err (a filter that matches nothing
-- is a mistake, most likely a typo)
function M.select(sites, filters, excludes)
	local chosen, out = {}, {}
	for _, f in ipairs(filters or {}) do
		local any = false
		for _, s in ipairs(sites) do
			if M.matches(f, s) then chosen[s], any = true, true end
		end
		if not any then return nil, ("no site matches '%s'"):format(f) end
	end
	for _, s in ipairs(sites) do
		local keep = #(filters or {}) == 0 or chosen[s]
		for _, x in ipairs(excludes or {}) do
			if M.matches(x, s) then keep = false end
		end
		if keep then out[#out + 1] = s end
	end
	return out
end

return M

-- Turning results into text for people (the JSON form is the results
-- themselves).
local util = require "vakap.util"

local M = {}

local function scalar(v)
	if type(v) == "string" then return v end
	if v == util.json.null then return "null" end
	return tostring(v)
end

-- Flatten a result table into "key: value" lines, nested keys dotted.
local function flatten(v, prefix, out)
	if type(v) ~= "table" then
		out[#out + 1] = ("%s: %s"):format(prefix ~= "" and prefix or "result", scalar(v))
		return
	end
	local keys = util.sorted_keys(v)
	if #keys == 0 then
		if prefix ~= "" then out[#out + 1] = prefix .. ": (empty)" end
		return
	end
	for _, k in ipairs(keys) do
		local name = math.type(k) == "integer" and ("%s[%d]"):format(prefix, k)
			or (prefix ~= "" and prefix .. "." .. k or k)
		flatten(v[k], name, out)
	end
end
M.flatten = flatten

-- The default report of an op: a block per site.
function M.default(results)
	local lines = {}
	for _, r in ipairs(results) do
		lines[#lines + 1] = ("%s: %s (%.1fs)%s"):format(r.site, r.ok and "ok" or "FAILED", r.duration or 0,
			r.error and (" " .. r.error) or "")
		if r.result ~= nil then
			local sub = {}
			flatten(r.result, "", sub)
			for _, l in ipairs(sub) do lines[#lines + 1] = "  " .. l end
		end
	end
	return table.concat(lines, "\n")
end

-- "backup: 3 sites, 2 ok, 1 failed (foo)"
function M.summary(opname, results)
	local failed = {}
	for _, r in ipairs(results) do
		if not r.ok then failed[#failed + 1] = r.site end
	end
	local s = ("%s: %d site%s, %d ok, %d failed"):format(opname, #results, #results == 1 and "" or "s",
		#results - #failed, #failed)
	if #failed > 0 then
		local shown = {}
		for i = 1, math.min(#failed, 10) do shown[i] = failed[i] end
		s = s .. " (" .. table.concat(shown, ", ") .. (#failed > 10 and ", ..." or "") .. ")"
	end
	return s, #failed
end

return M

-- Typed options: the declarations components, ops, sites and settings
-- make of what they accept, and the checks that enforce them at load time.
--
-- A spec maps each option name to { type, required = bool, default = v,
-- check = fn(v) -> ok, err }, where type is one of the names below.
local util = require "vakap.util"

local M = {}

local function is_list_of_strings(v)
	if type(v) ~= "table" then return false end
	local n = 0
	for k, x in pairs(v) do
		if math.type(k) ~= "integer" or type(x) ~= "string" then return false end
		n = n + 1
	end
	return n == #v
end

M.types = {
	string = function(v) return type(v) == "string" end,
	integer = function(v) return math.type(v) == "integer" end,
	number = function(v) return type(v) == "number" end,
	boolean = function(v) return type(v) == "boolean" end,
	table = function(v) return type(v) == "table" end,
	["function"] = function(v) return type(v) == "function" end,
	list = is_list_of_strings,
	name = util.valid_name,
	duration = function(v) return util.duration(v) ~= nil end,
	any = function(v) return v ~= nil end,
}

local type_words = {
	list = "a list of strings",
	name = "a name of letters, digits, '.', '_' and '-' that starts with a letter or digit",
	duration = 'a duration like "26h" or "7d"',
	integer = "an integer",
	any = "a value",
}

local function describe(t)
	return type_words[t] or ("a " .. t)
end

local function typename(v)
	return math.type(v) or type(v)
end

-- Edit distance (optimal string alignment: a swap of two letters is one
-- edit), to suggest the name a typo meant.
local function distance(a, b)
	local d = {}
	for i = 0, #a do d[i] = { [0] = i } end
	for j = 0, #b do d[0][j] = j end
	for i = 1, #a do
		for j = 1, #b do
			local cost = a:byte(i) == b:byte(j) and 0 or 1
			d[i][j] = math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
			if i > 1 and j > 1 and a:byte(i) == b:byte(j - 1) and a:byte(i - 1) == b:byte(j) then
				d[i][j] = math.min(d[i][j], d[i - 2][j - 2] + 1)
			end
		end
	end
	return d[#a][#b]
end

function M.suggest(word, candidates)
	local best, bestd
	for _, c in ipairs(candidates) do
		local d = distance(word, c)
		if d <= math.max(1, #word // 3) and (not bestd or d < bestd) then
			best, bestd = c, d
		end
	end
	return best and (" (did you mean '%s'?)"):format(best) or ""
end

-- Check one value against one option spec.  -> value | nil, message
function M.check_value(what, opt, v)
	if v == nil then
		if opt.required then return nil, ("%s is required"):format(what) end
		local d = opt.default
		if type(d) == "table" then
			local copy = {}
			for k, x in pairs(d) do copy[k] = x end
			d = copy
		end
		return d
	end
	local ok = M.types[opt.type]
	if not ok then error(("%s: unknown option type '%s'"):format(what, tostring(opt.type)), 0) end
	if not ok(v) then
		return nil, ("%s must be %s, not %s"):format(what, describe(opt.type),
			type(v) == "string" and ("'%s'"):format(v) or typename(v))
	end
	if opt.check then
		local good, err = opt.check(v)
		if not good then return nil, ("%s: %s"):format(what, err) end
	end
	return v
end

-- Check the table `given` against `spec`.  Keys that are not strings are
-- left to the caller (a site's list of components).  Returns a new table
-- of the checked values with defaults filled in | nil, message.
function M.check(spec, given, label)
	local out, names = {}, util.sorted_keys(spec)
	for k in pairs(given) do
		if type(k) == "string" and spec[k] == nil then
			return nil, ("%s: unknown option '%s'%s"):format(label, k, M.suggest(k, names))
		end
	end
	for _, k in ipairs(names) do
		local v, err = M.check_value(("%s: option '%s'"):format(label, k), spec[k], given[k])
		if err then return nil, err end
		out[k] = v
	end
	return out
end

-- Check that a spec itself is well formed (for operators' components).
function M.check_spec(spec, label)
	if type(spec) ~= "table" then return nil, label .. ": options must be a table" end
	for k, opt in pairs(spec) do
		if type(k) ~= "string" or type(opt) ~= "table" then
			return nil, ("%s: option %s must be declared as a table { type = ... }"):format(label, tostring(k))
		end
		if not M.types[opt.type] then
			local names = util.sorted_keys(M.types)
			return nil, ("%s: option '%s' has unknown type '%s' (one of %s)"):format(
				label, k, tostring(opt.type), table.concat(names, ", "))
		end
	end
	return true
end

return M

-- Small shared helpers: names, durations, times, sizes, JSON.
local cjson = require "cjson.safe"

local M = {}

M.json = cjson.new()
M.json.encode_sparse_array(true)
M.json.encode_invalid_numbers(false)

-- A site or component name: letters, digits, '.', '_', '-', starting
-- with a letter or digit (so never "." or ".." or a hidden file).
-- The longest name of a site, component, tag or op.
M.name_max = 128

function M.valid_name(s)
	return type(s) == "string" and #s <= M.name_max and s:match("^[A-Za-z0-9][A-Za-z0-9._-]*$") ~= nil
end

-- A value the operator wrote, as a message may show it: control bytes
-- escaped (a NUL too), at most `max` (80) bytes of it.
function M.display(v, max)
	if type(v) ~= "string" then return "(a " .. type(v) .. ")" end
	max = max or 80
	local cut = #v > max
	local shown = v:sub(1, max):gsub("[%c\\]", function(c) return ("\\%d"):format(c:byte()) end)
	return "'" .. shown .. (cut and ("...' (%d bytes)"):format(#v) or "'")
end

local units = { s = 1, m = 60, h = 3600, d = 86400, w = 7 * 86400, y = 365 * 86400 }

-- "26h", "30d", "1h30m", "90s" or a number of seconds -> seconds | nil, err
function M.duration(v)
	if math.type(v) == "integer" and v >= 0 then return v end
	if type(v) ~= "string" or v == "" then
		return nil, ("'%s' is not a duration (like \"26h\", \"7d\", \"1h30m\")"):format(tostring(v))
	end
	local total, rest = 0, v
	while rest ~= "" do
		local n, u, tail = rest:match("^(%d+)([smhdwy])(.*)$")
		if not n then
			return nil, ("'%s' is not a duration (like \"26h\", \"7d\", \"1h30m\")"):format(v)
		end
		total, rest = total + tonumber(n) * units[u], tail
	end
	return total
end

-- seconds -> "3d 4h", "5m 2s", "12s"
function M.human_duration(secs)
	secs = math.floor(secs + 0.5)
	if secs < 60 then return secs .. "s" end
	local parts = {}
	for _, u in ipairs { { "d", 86400 }, { "h", 3600 }, { "m", 60 }, { "s", 1 } } do
		local n = secs // u[2]
		if n > 0 then
			parts[#parts + 1] = n .. u[1]
			secs = secs - n * u[2]
		end
		if #parts == 2 then break end
	end
	return table.concat(parts, " ")
end

function M.human_size(n)
	if n == nil then return "-" end
	local units_ = { "B", "KiB", "MiB", "GiB", "TiB" }
	local i = 1
	while n >= 1024 and i < #units_ do
		n, i = n / 1024, i + 1
	end
	return i == 1 and ("%d B"):format(n) or ("%.1f %s"):format(n, units_[i])
end

-- The time of this run.  VAKAP_NOW (seconds since the epoch) sets the clock,
-- for tests only.
function M.now()
	local fake = os.getenv("VAKAP_NOW")
	if fake and fake ~= "" then
		return assert(math.tointeger(tonumber(fake)), "VAKAP_NOW must be an integer")
	end
	return os.time()
end

-- seconds -> "20261121T220000Z" (the stamp in object names)
function M.stamp(t)
	return os.date("!%Y%m%dT%H%M%SZ", t)
end

-- seconds -> "2026-11-21T22:00:00Z"
function M.iso(t)
	return os.date("!%Y-%m-%dT%H:%M:%SZ", t)
end

-- UTC fields -> seconds since the epoch, whatever the local time zone.
local function timegm(y, mo, d, h, mi, s)
	-- days from civil, after Howard Hinnant's published algorithm
	y = mo <= 2 and y - 1 or y
	local era = (y >= 0 and y or y - 399) // 400
	local yoe = y - era * 400
	local doy = (153 * (mo + (mo > 2 and -3 or 9)) + 2) // 5 + d - 1
	local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
	local days = era * 146097 + doe - 719468
	return days * 86400 + h * 3600 + mi * 60 + s
end
M.timegm = timegm

-- "20261121T220000Z" or "2026-11-21T22:00:00Z" or "2026-11-21" -> seconds
function M.parse_time(s)
	local y, mo, d, h, mi, sec = s:match("^(%d%d%d%d)(%d%d)(%d%d)T(%d%d)(%d%d)(%d%d)Z$")
	if not y then
		y, mo, d, h, mi, sec = s:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)[T ](%d%d):(%d%d):?(%d*)Z?$")
	end
	if not y then
		y, mo, d = s:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)$")
		h, mi, sec = "0", "0", "0"
	end
	local bad = ("'%s' is not a time (like 2026-11-21T22:00:00Z)"):format(s)
	if not y then return nil, bad end
	y, mo, d, h, mi, sec = tonumber(y), tonumber(mo), tonumber(d), tonumber(h), tonumber(mi), tonumber(sec) or 0
	local t = timegm(y, mo, d, h, mi, sec)
	-- reject what timegm would silently carry over: month 13, day 45, 25:61
	if os.date("!%Y%m%d%H%M%S", t) ~= ("%04d%02d%02d%02d%02d%02d"):format(y, mo, d, h, mi, sec) then
		return nil, bad
	end
	return t
end

-- A shell-style glob ("web*", "acme-?", "[ab]*") -> Lua pattern
function M.glob_to_pattern(g)
	local out, i = { "^" }, 1
	while i <= #g do
		local c = g:sub(i, i)
		if c == "*" then
			out[#out + 1] = ".*"
		elseif c == "?" then
			out[#out + 1] = "."
		elseif c == "[" then
			local close = g:find("]", i + 2, true)
			if not close then
				out[#out + 1] = "%["
			else
				local set = g:sub(i + 1, close - 1):gsub("^!", "^"):gsub("%%", "%%%%")
				out[#out + 1] = "[" .. set .. "]"
				i = close
			end
		else
			out[#out + 1] = c:gsub("%W", "%%%0")
		end
		i = i + 1
	end
	out[#out + 1] = "$"
	return table.concat(out)
end

function M.is_glob(s)
	return s:find("[*?[]") ~= nil
end

-- Sorted keys of a table.
function M.sorted_keys(t)
	local keys = {}
	for k in pairs(t) do keys[#keys + 1] = k end
	table.sort(keys, function(a, b)
		local na, nb = type(a) == "number", type(b) == "number"
		if na ~= nb then return na end
		if na then return a < b end
		return tostring(a) < tostring(b)
	end)
	return keys
end

-- A copy of v that JSON can carry: functions and userdata become strings,
-- cycles are cut.
function M.plain(v, seen)
	local t = type(v)
	if t == "table" then
		seen = seen or {}
		if seen[v] then return "(cycle)" end
		seen[v] = true
		local out = {}
		for k, x in pairs(v) do
			if type(k) == "string" or math.type(k) == "integer" then
				out[k] = M.plain(x, seen)
			end
		end
		seen[v] = nil
		return out
	elseif t == "number" and (v ~= v or v == math.huge or v == -math.huge) then
		return tostring(v)
	elseif t == "function" or t == "userdata" or t == "thread" then
		return tostring(v)
	end
	return v
end

-- Decode JSON, with integral numbers as Lua integers (cjson makes every
-- number a float).  -> value | nil, err
local function integers(v)
	if type(v) == "table" then
		for k, x in pairs(v) do v[k] = integers(x) end
		return v
	end
	return math.type(v) == "float" and math.tointeger(v) or v
end

function M.decode(s)
	local v, err = M.json.decode(s)
	if v == nil then return nil, err end
	return integers(v)
end

-- Trim the trailing newlines of command output.
function M.chomp(s)
	return (s:gsub("\n+$", ""))
end

-- The whole of a small file (a configuration), or nil if it cannot be read.
function M.read_file(path)
	local f = io.open(path, "rb")
	if not f then return nil end
	local text = f:read("a")
	f:close()
	return text
end

return M

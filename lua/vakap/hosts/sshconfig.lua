-- Where an SSH host is and how to log in to it: a site's `host` setting
-- ("user@name:port", "name", "user@name", "[v6]:port"), read together with
-- the operator's ~/.ssh/config as OpenSSH reads it (Host blocks with * and
-- ? patterns and !negations, the first value found for an option wins,
-- IdentityFile accumulates) and vakap's `ssh = { ... }` settings.
-- Pure: files are read through the `read` function given to resolve.
local util = require "vakap.util"

local M = {}

-- "user@name:port" -> { user =, host =, port = } | nil, err
function M.parse_host(spec)
	if type(spec) ~= "string" or spec == "" then
		return nil, "a host is \"local\" or [user@]name[:port]"
	end
	if #spec > 255 or spec:find("%c") then
		return nil, ("host %s is not [user@]name[:port]: no control characters, 255 bytes at most")
			:format(util.display(spec))
	end
	local bad = ("host '%s' is not [user@]name[:port]"):format(spec)
	local user, rest = spec:match("^([^@]*)@(.*)$")
	if user == "" then return nil, ("host '%s': the user before '@' is empty"):format(spec) end
	rest = rest or spec
	local host, port
	if rest:sub(1, 1) == "[" then
		local tail
		host, tail = rest:match("^%[([^%]]+)%](.*)$")
		port = tail and tail:match("^:(%d+)$")
		if not host or (tail ~= "" and not port) then
			return nil, ("host '%s': an IPv6 address is written [addr] or [addr]:port"):format(spec)
		end
	elseif select(2, rest:gsub(":", "")) == 1 then
		host, port = rest:match("^([^:]*):(%d+)$")
		if not host then return nil, ("host '%s': the port after ':' must be a number"):format(spec) end
	else
		host = rest -- a name, or a bare IPv6 address
	end
	if host == "" or host:find("[%s/@'\"\\]") or host:sub(1, 1) == "-" then return nil, bad end
	local n = tonumber(port)
	if port and (n < 1 or n > 65535) then
		return nil, ("host '%s': port %s is not from 1 to 65535"):format(spec, port)
	end
	return { user = user, host = host, port = n }
end

-- A Host pattern (* any run, ? one character) -> Lua pattern
local function pattern(p)
	return "^" .. p:gsub("[%^%$%(%)%%%.%[%]%+%-]", "%%%0"):gsub("%*", ".*"):gsub("%?", ".") .. "$"
end

-- Whether a Host line's patterns select name: one positive pattern
-- matches and no negated one does.
function M.host_matches(patterns, name)
	local any = false
	name = name:lower()
	for _, p in ipairs(patterns) do
		local neg = p:sub(1, 1) == "!"
		if neg then p = p:sub(2) end
		if name:match(pattern(p:lower())) then
			if neg then return false end
			any = true
		end
	end
	return any
end

-- Split a config line into keyword and arguments: "Key value",
-- "Key=value", "Key = value", arguments in double quotes.
local function split_line(line)
	local key, rest = line:match("^%s*([%w]+)%s*=?%s*(.-)%s*$")
	if not key then return nil end
	local args = {}
	local i = 1
	while i <= #rest do
		local c = rest:sub(i, i)
		if c:match("%s") then
			i = i + 1
		elseif c == '"' then
			local close = rest:find('"', i + 1, true)
			if not close then return key, nil end
			args[#args + 1] = rest:sub(i + 1, close - 1)
			i = close + 1
		else
			local word = rest:match("^[^%s\"]+", i)
			args[#args + 1] = word
			i = i + #word
		end
	end
	return key:lower(), args
end

-- The options we use, and whether an option takes every value given
-- (IdentityFile) or the first one.
local used = {
	hostname = "one", user = "one", port = "one", identityfile = "all",
	userknownhostsfile = "one", connecttimeout = "one", serveraliveinterval = "one",
}

-- Parse config text into blocks: { { patterns = {...} | nil (before any
-- Host: every host), match = true (a Match block: never applies), where,
-- options = { { key, args, where } } } }.  include(path_or_glob) ->
-- { text, path } list, for Include.  -> blocks | nil, err
function M.parse(text, path, include, depth)
	depth = depth or 0
	local blocks = { { options = {}, where = path .. ":0" } }
	local lineno = 0
	for line in (text .. "\n"):gmatch("([^\n]*)\n") do
		lineno = lineno + 1
		local where = ("%s:%d"):format(path, lineno)
		if not line:match("^%s*$") and not line:match("^%s*#") then
			local key, args = split_line(line)
			if not key or not args then return nil, where .. ": cannot read this line" end
			if key == "host" then
				if #args == 0 then return nil, where .. ": Host needs a pattern" end
				blocks[#blocks + 1] = { patterns = args, options = {}, where = where }
			elseif key == "match" then
				blocks[#blocks + 1] = { match = true, options = {}, where = where }
			elseif key == "include" then
				if depth >= 8 then return nil, where .. ": Include nested too deep" end
				for _, arg in ipairs(args) do
					for _, inc in ipairs(include and include(arg) or {}) do
						local sub, err = M.parse(inc.text, inc.path, include, depth + 1)
						if not sub then return nil, err end
						-- the included lines belong to the block they are in
						local cur = blocks[#blocks]
						for i, b in ipairs(sub) do
							if i == 1 then
								for _, o in ipairs(b.options) do cur.options[#cur.options + 1] = o end
							else
								blocks[#blocks + 1] = b
							end
						end
					end
				end
			elseif used[key] then
				if #args == 0 then return nil, ("%s: %s needs a value"):format(where, key) end
				local opts = blocks[#blocks].options
				opts[#opts + 1] = { key = key, args = args, where = where }
			end
		end
	end
	return blocks
end

-- The options that apply to name: { hostname = {args, where}, ...,
-- identityfile = { {args, where}... } }.
function M.lookup(blocks, name)
	local out = { identityfile = {} }
	for _, b in ipairs(blocks) do
		if not b.match and (b.patterns == nil or M.host_matches(b.patterns, name)) then
			for _, o in ipairs(b.options) do
				if used[o.key] == "all" then
					local list = out[o.key]
					list[#list + 1] = o
				elseif out[o.key] == nil then
					out[o.key] = o
				end
			end
		end
	end
	return out
end

-- Expand ~ and %-tokens in a path: t = { d = home, u = local user,
-- h = remote host, r = remote user, p = port, n = the name given,
-- l = this machine's name }.  -> string | nil, err
function M.expand(s, t, where)
	if s == "~" or s:sub(1, 2) == "~/" then s = t.d .. s:sub(2) end
	local bad
	s = s:gsub("%%(.)", function(c)
		if c == "%" then return "%" end
		local v = t[c]
		if v == nil then bad = bad or c; return "" end
		return tostring(v)
	end)
	if bad then return nil, ("%s: %%%s is not a token vakap expands (%%d %%u %%h %%r %%p %%n %%l %%%%)"):format(where, bad) end
	return s
end

local default_keys = { "id_ed25519", "id_ecdsa", "id_rsa" }

-- Each of args expanded (M.expand).  -> list | nil, err
local function expand_all(args, tokens, where)
	local out = {}
	for _, a in ipairs(args) do
		local p, e = M.expand(a, tokens, where)
		if not p then return nil, e end
		out[#out + 1] = p
	end
	return out
end

-- The blocks of the ssh config file settings name, if it exists.
-- -> blocks | nil, err
local function read_config(settings, env)
	local cfgpath = settings.config
	local text = cfgpath and env.read(cfgpath)
	if not text then return {} end
	return M.parse(text, cfgpath, env.include)
end

-- The identity files: vakap's setting, else the config's, else the
-- defaults that exist.  -> list | nil, err
local function identity_files(settings, o, env, tokens)
	if settings.identity_files then return settings.identity_files end
	local out = {}
	if #o.identityfile == 0 then
		for _, k in ipairs(default_keys) do
			local p = env.home .. "/.ssh/" .. k
			if env.exists(p) then out[#out + 1] = p end
		end
		return out
	end
	for _, opt in ipairs(o.identityfile) do
		local paths, e = expand_all(opt.args, tokens, opt.where)
		if not paths then return nil, e end
		for _, p in ipairs(paths) do
			if p:sub(1, 1) ~= "/" then p = env.home .. "/.ssh/" .. p end
			out[#out + 1] = p
		end
	end
	return out
end

-- The known_hosts files: vakap's setting, else the config's, else
-- OpenSSH's defaults (and the system's file, unless vakap names one).
-- -> files to read, the file new keys go to | nil, err
local function known_hosts(settings, o, env, tokens)
	local user_files
	if settings.known_hosts then
		user_files = { settings.known_hosts }
	elseif o.userknownhostsfile then
		local e
		user_files, e = expand_all(o.userknownhostsfile.args, tokens, o.userknownhostsfile.where)
		if not user_files then return nil, e end
	else
		user_files = { env.home .. "/.ssh/known_hosts", env.home .. "/.ssh/known_hosts2" }
	end
	local files = {}
	for _, f in ipairs(user_files) do files[#files + 1] = f end
	if not settings.known_hosts then files[#files + 1] = "/etc/ssh/ssh_known_hosts" end
	return files, user_files[1]
end

-- Everything needed to connect to a site's host.
--   spec: the site's host; settings: vakap's ssh settings (known_hosts,
--   config, identity_files, connect_timeout, keepalive), paths expanded;
--   env: { home, user (local), hostname (local), read = fn(path) -> text |
--   nil, exists = fn(path) -> bool, include = fn(pattern) -> {{text, path}} }
-- -> { host, port, user, label, identity_files, known_hosts = {...},
--      known_hosts_file (where new keys go), connect_timeout, keepalive,
--      alias } | nil, err
function M.resolve(spec, settings, env)
	local given, err = M.parse_host(spec)
	if not given then return nil, err end
	settings = settings or {}
	local blocks, perr = read_config(settings, env)
	if not blocks then return nil, perr end
	local o = M.lookup(blocks, given.host)
	local function one(key) return o[key] and o[key].args[1] end
	local t = { alias = given.host, host = given.host, label = spec }
	if one("hostname") then
		local h, herr = M.expand(one("hostname"), { h = given.host, n = given.host }, o.hostname.where)
		if not h then return nil, herr end
		t.host = h
	end
	t.user = given.user or one("user") or env.user
	local port = given.port or one("port") or 22
	t.port = math.tointeger(tonumber(port))
	if not t.port or t.port < 1 or t.port > 65535 then
		return nil, ("%s: Port %s is not from 1 to 65535"):format(o.port.where, tostring(port))
	end
	local tokens = { d = env.home, u = env.user, h = t.host, r = t.user, p = t.port, n = given.host,
		l = env.hostname }
	t.identity_files, err = identity_files(settings, o, env, tokens)
	if not t.identity_files then return nil, err end
	t.known_hosts, t.known_hosts_file = known_hosts(settings, o, env, tokens)
	if not t.known_hosts then return nil, t.known_hosts_file end
	t.connect_timeout = settings.connect_timeout or tonumber(one("connecttimeout")) or 10
	t.keepalive = settings.keepalive or tonumber(one("serveraliveinterval")) or 30
	return t
end

return M

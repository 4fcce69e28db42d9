-- Loading what the operator writes: vakap.lua, components.d/, ops.d/ and
-- sites.d/, each file in its own restricted environment.  Everything is
-- checked before anything runs; every mistake is an error naming the file
-- and line.
local api = require "vakap.api"
local encryption = require "vakap.encryption"
local fs = require "vakap.fs"
local hosts = require "vakap.hosts"
local schema = require "vakap.schema"
local util = require "vakap.util"

local M = {}

M.builtin_components = { "files", "command", "mysql", "postgres" }
M.builtin_ops = { "backup", "status", "check", "rotate", "restore", "verify", "snapshots" }

local compressors = { zstd = true, gzip = true, none = true }

local function check_compress(v)
	local alg, level = v:match("^(%a+):?(%d*)$")
	if not alg or not compressors[alg] then
		return nil, ("'%s' is not a compression (zstd, gzip or none, optionally with a level: \"zstd:6\")"):format(v)
	end
	if level ~= "" and alg == "none" then return nil, "'none' takes no level" end
	return true
end

local function is_gpg(v)
	return type(v) == "table" and v.kind == "gpg", "must be declared with gpg { recipients = { ... } }"
end

-- ssh = { ... }: how SSH hosts are reached (see hosts/sshconfig.lua)
local ssh_spec = {
	known_hosts = { type = "string" },
	config = { type = "string" },
	identity_files = { type = "list" },
	connect_timeout = { type = "integer", check = function(v) return v >= 1 and v <= 600, "must be from 1 to 600 (seconds)" end },
	keepalive = { type = "integer", check = function(v) return v >= 0 and v <= 3600, "must be from 0 (none) to 3600 (seconds)" end },
}

local function check_ssh(v)
	local ok, err = schema.check(ssh_spec, v, "ssh")
	return ok ~= nil, err
end

local settings_spec = {
	storage = { type = "table" },
	encrypt = { type = "table", check = is_gpg },
	compress = { type = "string", default = "zstd", check = check_compress },
	compress_threads = { type = "integer", check = function(v) return v >= 0 and v <= 64, "must be from 0 to 64" end },
	retention = { type = "table", check = api.check_retention },
	stale_after = { type = "duration", default = "26h" },
	jobs = { type = "integer", default = 4, check = function(v) return v >= 1 and v <= 256, "must be from 1 to 256" end },
	lock_dir = { type = "string", default = "/tmp/vakap-locks-" .. (os.getenv("USER") or "user") },
	sites = { type = "string", default = "sites.d" },
	ops = { type = "string", default = "ops.d" },
	components = { type = "string", default = "components.d" },
	ssh = { type = "table", default = {}, check = check_ssh },
}

local site_spec = {
	host = { type = "string", required = true, check = hosts.check },
	tags = { type = "list", default = {} },
	root = { type = "string" },
	description = { type = "string" },
	vars = { type = "table", default = {} },
	stale_after = { type = "duration" },
	compress = { type = "string", check = check_compress },
	retention = { type = "table", check = api.check_retention },
	encrypt = { type = "any", check = function(v)
		if v == false then return true end
		local ok = is_gpg(v)
		return ok, "must be gpg { recipients = { ... } }, or false for no encryption"
	end },
}

local function copy(t)
	local c = {}
	for k, v in pairs(t) do c[k] = v end
	return c
end

-- What every restricted environment offers: the parts of the standard
-- library that touch nothing outside the program, copied so that a file
-- that changes them changes only its own.
local function base_env()
	return {
		assert = assert, error = error, ipairs = ipairs, next = next,
		pairs = pairs, pcall = pcall, select = select, tonumber = tonumber,
		tostring = tostring, type = type, xpcall = xpcall,
		rawequal = rawequal, rawget = rawget, rawlen = rawlen,
		setmetatable = setmetatable, getmetatable = getmetatable,
		string = copy(string), table = copy(table), math = copy(math), utf8 = copy(utf8),
		os = { time = os.time, date = os.date, clock = os.clock, getenv = os.getenv },
	}
end

-- An environment exposing `names` (plus the base), where reading an unknown
-- name or assigning a global is an error at the line that does it.
-- on_assign(t, k, v) takes assignments instead; `assigned` is read first.
local function sandbox(names, on_assign, assigned)
	local env = base_env()
	for k, v in pairs(names) do env[k] = v end
	return setmetatable({}, {
		__index = function(_, k)
			local v = assigned and assigned[k]
			if v == nil then v = env[k] end
			if v == nil then
				local known = util.sorted_keys(env)
				error(("unknown name '%s'%s"):format(tostring(k), schema.suggest(tostring(k), known)), 2)
			end
			return v
		end,
		__newindex = function(t, k, v)
			if on_assign then return on_assign(t, k, v) end
			error(("assignment to global '%s': declare it 'local'"):format(tostring(k)), 2)
		end,
	})
end

local function run_file(path, env)
	local f, err = io.open(path, "rb")
	if not f then error(err, 0) end
	local src = f:read("a")
	f:close()
	local chunk, cerr = load(src, "@" .. path, "t", env)
	if not chunk then error(cerr, 0) end
	local ok, rerr = pcall(chunk)
	if not ok then error(rerr, 0) end
end

local function join(dir, name)
	if name:sub(1, 1) == "/" then return name end
	if dir == "." then return name end
	return dir .. "/" .. name
end

-- The *.lua files of a directory, sorted; none if it does not exist.
local function lua_files(dir)
	local names = fs.list(dir)
	if not names then return {} end
	local out = {}
	for _, n in ipairs(names) do
		if n:match("^[^.].*%.lua$") then out[#out + 1] = join(dir, n) end
	end
	table.sort(out)
	return out
end

-- gpg { recipients = {...}, sign =, homedir =, passphrase_file = }, in
-- vakap.lua and sites.d; paths are relative to the configuration.
local function gpg_constructor(cfg)
	return function(opts)
		local where = api.where(2)
		if type(opts) ~= "table" then
			error(("%s: gpg expects a table of options: gpg { recipients = { \"FINGERPRINT\" } }"):format(where), 0)
		end
		local enc, err = schema.check(encryption.spec, opts, where .. ": gpg")
		if not enc then error(err, 0) end
		enc.kind, enc.where = "gpg", where
		if enc.homedir then enc.homedir = join(cfg.dir, enc.homedir) end
		if enc.passphrase_file then enc.passphrase_file = join(cfg.dir, enc.passphrase_file) end
		return enc
	end
end

local s3_spec = {
	bucket = { type = "string", required = true,
		check = function(v) return v:match("^[%w.-]+$") ~= nil, "is letters, digits, '.' and '-'" end },
	prefix = { type = "string", default = "" },
	region = { type = "string" },
	endpoint = { type = "string",
		check = function(v) return v:match("^https?://[^/]+/?$") ~= nil, "is a URL like https://s3.example.com" end },
	profile = { type = "string" },
	path_style = { type = "boolean" },
	retries = { type = "integer", check = function(v) return v >= 0 and v <= 20, "must be from 0 to 20" end },
	retry_base_ms = { type = "integer", check = function(v) return v >= 1, "must be at least 1" end },
	stall_timeout = { type = "integer", check = function(v) return v >= 1, "must be at least 1 (seconds)" end },
}

-- s3 { bucket =, prefix =, region =, endpoint =, profile =, path_style = }
local function s3_constructor(opts)
	local where = api.where(2)
	if type(opts) ~= "table" then
		error(("%s: s3 expects a table of options: s3 { bucket = \"my-backups\" }"):format(where), 0)
	end
	local decl, err = schema.check(s3_spec, opts, where .. ": s3")
	if not decl then error(err, 0) end
	decl.kind, decl.where = "s3", where
	return decl
end

local function load_settings(cfg, path)
	local given = {}
	local env = sandbox({
		gpg = gpg_constructor(cfg),
		s3 = s3_constructor,
		dir = function(p)
			local where = api.where(2)
			if type(p) ~= "string" or p == "" then
				error(("%s: dir expects a path: dir \"/var/backups/vakap\""):format(where), 0)
			end
			return { kind = "dir", path = join(cfg.dir, p), where = where }
		end,
	}, function(_, k, v)
		if settings_spec[k] == nil then
			error(("unknown setting '%s'%s"):format(tostring(k),
				schema.suggest(tostring(k), util.sorted_keys(settings_spec))), 2)
		end
		local _, err = schema.check_value(("setting '%s'"):format(k), settings_spec[k], v)
		if err then error(err, 2) end
		given[k] = v
	end, given)
	run_file(path, env)
	local s, err = schema.check(settings_spec, given, path)
	if not s then error(err, 0) end
	s.stale_after = util.duration(s.stale_after)
	s.lock_dir = join(cfg.dir, s.lock_dir)
	s.ssh = schema.check(ssh_spec, s.ssh, path)
	-- paths relative to vakap.lua; ~ is the home directory (hosts/ssh.lua)
	local function rel(p) return p:sub(1, 1) == "~" and p or join(cfg.dir, p) end
	for _, k in ipairs({ "known_hosts", "config" }) do
		if s.ssh[k] then s.ssh[k] = rel(s.ssh[k]) end
	end
	for i, p in ipairs(s.ssh.identity_files or {}) do s.ssh.identity_files[i] = rel(p) end
	s.storage = s.storage or { kind = "dir", path = join(cfg.dir, "backups"), where = "(default)" }
	if s.storage.kind == nil then
		error(("%s: storage must be declared with dir \"PATH\" or s3 { bucket = ... }"):format(path), 0)
	end
	return s
end

local Instance = {}

-- A component constructor for sites.d: mysql { ... } -> an instance,
-- pending until a site takes it.
local function constructor(def, pending)
	return function(opts)
		local where = api.where(2)
		if type(opts) ~= "table" then
			error(("%s: %s expects a table of options: %s { ... }"):format(where, def.type, def.type), 0)
		end
		local label = ("%s: %s"):format(where, def.type)
		local checked, err = schema.check(def.options, opts, label)
		if not checked then error(err, 0) end
		for k in pairs(opts) do
			if type(k) ~= "string" then
				error(("%s: options must be named (name = value)"):format(label), 0)
			end
		end
		if def.validate then
			local ok, why = def.validate(checked)
			if not ok then error(("%s: %s"):format(label, why), 0) end
		end
		checked.name = checked.name or def.type
		local inst = setmetatable({ type = def.type, options = checked, where = where, def = def }, Instance)
		pending[inst] = true
		return inst
	end
end

local function load_sites(cfg, files)
	local names, pending = {}, {}
	for tname, def in pairs(cfg.components) do names[tname] = constructor(def, pending) end
	names.site = function(name)
		local where = api.where(2)
		local token = { where = where, what = ("site '%s' has no table: site \"%s\" { host = ..., ... }"):format(name, name) }
		pending[token] = true
		if not util.valid_name(name) then
			error(("%s: site name %s must be letters, digits, '.', '_' and '-', starting with a letter or digit")
				:format(where, type(name) == "string" and ("'%s'"):format(name) or "(a " .. type(name) .. ")"), 0)
		end
		return function(spec)
			pending[token] = nil
			if type(spec) ~= "table" then
				error(("%s: site '%s' expects a table: site \"%s\" { host = ..., ... }"):format(where, name, name), 0)
			end
			local prev = cfg.sites_by_name[name]
			if prev then
				error(("%s: site '%s' is already defined at %s"):format(where, name, prev.where), 0)
			end
			local site, err = schema.check(site_spec, spec, ("%s: site '%s'"):format(where, name))
			if not site then error(err, 0) end
			site.name, site.where, site.components = name, where, {}
			if site.stale_after then site.stale_after = util.duration(site.stale_after) end
			for _, tag in ipairs(site.tags) do
				if not util.valid_name(tag) then
					error(("%s: site '%s': tag '%s' must be letters, digits, '.', '_' and '-'"):format(where, name, tag), 0)
				end
			end
			local seen = {}
			for k, c in pairs(spec) do
				if type(k) ~= "string" then
					if math.type(k) ~= "integer" or getmetatable(c) ~= Instance then
						error(("%s: site '%s': entry %s is not a component (files { ... }, command { ... }, ...)")
							:format(where, name, tostring(k)), 0)
					end
				end
			end
			for _, c in ipairs(spec) do
				local cname = c.options.name
				if seen[cname] then
					error(("%s: site '%s' has two components named '%s' (the other at %s): give one name = \"...\"")
						:format(c.where, name, cname, seen[cname].where), 0)
				end
				seen[cname] = c
				pending[c] = nil
				c.name = cname
				site.components[#site.components + 1] = c
			end
			cfg.sites[#cfg.sites + 1] = site
			cfg.sites_by_name[name] = site
			return site
		end
	end
	names.vakap = api.vakap
	names.gpg = gpg_constructor(cfg)
	for _, path in ipairs(files) do
		run_file(path, sandbox(names))
		local first
		for p in pairs(pending) do
			if not first or p.where < first.where then first = p end
		end
		if first then
			error(("%s: %s"):format(first.where, first.what or
				("%s { ... } is outside any site: put it in a site \"NAME\" { ... }"):format(first.type)), 0)
		end
	end
end

-- Names a component type may not take: sites.d files already see them.
local reserved = base_env()
reserved.site, reserved.vakap, reserved.gpg = true, true, true

local function register(kind, registry, builtin, path)
	return function(name)
		local decl = (kind == "op" and api.op or api.component)(name, 2)
		return function(def)
			local obj = decl(def)
			if kind == "component" and reserved[name] then
				error(("%s: component type '%s' would hide the name '%s' that sites.d files use: choose another")
					:format(obj.where, name, name), 0)
			end
			if registry[name] and not builtin[name] then
				error(("%s: %s '%s' is already defined at %s"):format(obj.where, kind, name, registry[name].where), 0)
			end
			obj.file = path
			registry[name] = obj
			builtin[name] = nil -- the operator's replaces the built-in one
			return obj
		end
	end
end

local function load_decls(kind, registry, files)
	local builtin = {}
	for name in pairs(registry) do builtin[name] = true end
	for _, path in ipairs(files) do
		local declare = register(kind, registry, builtin, path)
		-- vakap.op "x" { } (as the built-in ops write it) registers too
		local vakap = copy(api.vakap)
		vakap[kind] = declare
		run_file(path, sandbox({ vakap = vakap, [kind] = declare }))
	end
end

-- Find the configuration file: -c, $VAKAP_CONFIG, ./vakap.lua.
function M.find(explicit)
	local path = explicit or os.getenv("VAKAP_CONFIG")
	if path and path ~= "" then
		if not fs.stat(path) then error(("cannot read configuration %s: no such file"):format(path), 0) end
		return path
	end
	if fs.stat("vakap.lua") then return "vakap.lua" end
	error("no configuration: ./vakap.lua not found; use -c FILE or set VAKAP_CONFIG", 0)
end

-- Load everything.  -> cfg, or raises with "file:line: message".
function M.load(path)
	local cfg = {
		file = path,
		dir = path:match("^(.*)/[^/]*$") or ".",
		sites = {}, sites_by_name = {},
		ops = {}, components = {},
	}
	cfg.settings = load_settings(cfg, path)
	for _, name in ipairs(M.builtin_components) do
		cfg.components[name] = require("vakap.components." .. name)
	end
	for _, name in ipairs(M.builtin_ops) do
		cfg.ops[name] = require("vakap.ops." .. name)
	end
	local s = cfg.settings
	load_decls("component", cfg.components, lua_files(join(cfg.dir, s.components)))
	load_decls("op", cfg.ops, lua_files(join(cfg.dir, s.ops)))
	load_sites(cfg, lua_files(join(cfg.dir, s.sites)))
	return cfg
end

M.join = join

return M

-- Loading what the operator writes: vakap.lua, components.d/, ops.d/ and
-- sites.d/, each file in its own restricted environment.  Everything is
-- checked before anything runs; every mistake is an error naming the file
-- and line.
local api = require "vakap.api"
local encryption = require "vakap.encryption"
local fs = require "vakap.fs"
local hosts = require "vakap.hosts"
local sandbox = require "vakap.sandbox"
local schema = require "vakap.schema"
local util = require "vakap.util"

local M = {}

M.builtin_components = { "files", "command", "mysql", "postgres" }
M.builtin_ops = { "backup", "status", "check", "rotate", "restore", "verify", "snapshots" }

-- Where the sites' locks go unless lock_dir says: a directory private to
-- the user, never a shared one like /tmp (fs.private_dir checks it is).
function M.default_lock_dir()
	local runtime = os.getenv("XDG_RUNTIME_DIR")
	if runtime and runtime:sub(1, 1) == "/" then return runtime .. "/vakap/locks" end
	local home = os.getenv("HOME")
	if home == "/root" or not home or home:sub(1, 1) ~= "/" then return "/run/vakap/locks" end
	return home .. "/.cache/vakap/locks"
end

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
	lock_dir = { type = "string", default = M.default_lock_dir() },
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
	local env = sandbox.new({
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
	sandbox.run_file(path, env)
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

-- The components of a site's table (its list part), each name once.
local function take_components(site, spec, pending)
	local where, name = site.where, site.name
	for k, c in pairs(spec) do
		if type(k) ~= "string" then
			if math.type(k) ~= "integer" or getmetatable(c) ~= Instance then
				error(("%s: site '%s': entry %s is not a component (files { ... }, command { ... }, ...)")
					:format(where, name, tostring(k)), 0)
			end
		end
	end
	local seen = {}
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
end

-- site "NAME" { spec }: checked, its components taken, added to cfg.
local function declare_site(cfg, name, where, spec, pending)
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
			error(("%s: site '%s': tag %s must be letters, digits, '.', '_' and '-'"):format(where, name,
				util.display(tag)), 0)
		end
	end
	take_components(site, spec, pending)
	cfg.sites[#cfg.sites + 1] = site
	cfg.sites_by_name[name] = site
	return site
end

-- The `site` of sites.d files: site "NAME" { ... }
local function site_function(cfg, pending)
	return function(name)
		local where = api.where(2)
		if not util.valid_name(name) then
			error(("%s: site name %s must be letters, digits, '.', '_' and '-', starting with a letter or digit, "
				.. "%d bytes at most"):format(where, util.display(name), util.name_max), 0)
		end
		local token = { where = where, what = ("site '%s' has no table: site \"%s\" { host = ..., ... }"):format(name, name) }
		pending[token] = true
		return function(spec)
			pending[token] = nil
			return declare_site(cfg, name, where, spec, pending)
		end
	end
end

-- What a sites.d file left unfinished (a component outside any site, a
-- site without its table): an error at the first of them.
local function check_pending(pending)
	local first
	for p in pairs(pending) do
		if not first or p.where < first.where then first = p end
	end
	if first then
		error(("%s: %s"):format(first.where, first.what or
			("%s { ... } is outside any site: put it in a site \"NAME\" { ... }"):format(first.type)), 0)
	end
end

local function load_sites(cfg, files)
	local names, pending = {}, {}
	for tname, def in pairs(cfg.components) do names[tname] = constructor(def, pending) end
	names.site = site_function(cfg, pending)
	-- an inventory is data: pure helpers only, and no environment to read
	names.vakap = sandbox.readonly(api.declarative(api.vakap), "vakap")
	names.gpg = gpg_constructor(cfg)
	for _, path in ipairs(files) do
		local env = sandbox.new(names)
		rawset(env, "os", { time = os.time, date = os.date, clock = os.clock })
		sandbox.run_file(path, env)
		check_pending(pending)
	end
end

-- Names a component type may not take: sites.d files already see them.
local reserved = sandbox.base_env()
reserved.site, reserved.vakap, reserved.gpg = true, true, true

-- The `op` or `component` of a declaration file: the declaration checked
-- (api.op, api.component), then handed to accept(name, obj).
local function declarer(kind, accept)
	return function(name)
		local decl = (kind == "op" and api.op or api.component)(name, 2)
		return function(def)
			local obj = decl(def)
			if kind == "component" and reserved[name] then
				error(("%s: component type '%s' would hide the name '%s' that sites.d files use: choose another")
					:format(obj.where, name, name), 0)
			end
			accept(name, obj)
			return obj
		end
	end
end

-- Run one file of declarations, built-in or the operator's, in the
-- environment each gets: `op` (or `component`), and a read-only `vakap`
-- whose vakap.op (vakap.component) is that same function.
local function run_declarations(kind, src, chunkname, accept)
	local declare = declarer(kind, accept)
	local v = sandbox.copy(api.vakap)
	v[kind] = declare
	sandbox.run(src, chunkname, sandbox.new({ vakap = sandbox.readonly(v, "vakap"), [kind] = declare }))
end

local kind_dirs = { component = "components", op = "ops" }

-- A built-in file's source: compiled into the binary (tools/bin2c.lua
-- makes each one a module vakap.builtin.ops.NAME returning its text), else
-- found in the Lua path (the tree's lua/: VAKAP_LUA_DIR, busted).
-- -> source, chunkname
local function builtin_source(kind, name)
	local dir = kind_dirs[kind]
	local embedded = ("vakap.builtin.%s.%s"):format(dir, name)
	if package.preload[embedded] then
		return require(embedded), ("@lua/vakap/%s/%s.lua"):format(dir, name)
	end
	local path = package.searchpath(("vakap.%s.%s"):format(dir, name), package.path)
	if not path then
		error(("the built-in %s '%s' is missing: no lua/vakap/%s/%s.lua"):format(kind, name, dir, name), 0)
	end
	return sandbox.read(path), "@" .. path
end

local builtins = {}

-- The built-in op or component `name`, declared as the operator's own
-- are, in the same environment; loaded once.  -> its declaration
function M.builtin(kind, name)
	local key = kind .. ":" .. name
	if not builtins[key] then
		local src, chunkname = builtin_source(kind, name)
		run_declarations(kind, src, chunkname, function(declared, obj)
			if declared ~= name then
				error(("%s: declares the %s '%s' in the file of '%s'"):format(obj.where, kind, declared, name), 0)
			end
			builtins[key] = obj
		end)
		if not builtins[key] then
			error(("%s: declares no %s '%s'"):format(chunkname:sub(2), kind, name), 0)
		end
	end
	return builtins[key]
end

local function load_decls(kind, registry, files)
	local builtin = {}
	for name in pairs(registry) do builtin[name] = true end
	for _, path in ipairs(files) do
		run_declarations(kind, sandbox.read(path), "@" .. path, function(name, obj)
			if registry[name] and not builtin[name] then
				error(("%s: %s '%s' is already defined at %s"):format(obj.where, kind, name, registry[name].where), 0)
			end
			obj.file = path
			registry[name] = obj
			builtin[name] = nil -- the operator's replaces the built-in one
		end)
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
		cfg.components[name] = M.builtin("component", name)
	end
	for _, name in ipairs(M.builtin_ops) do
		cfg.ops[name] = M.builtin("op", name)
	end
	local s = cfg.settings
	load_decls("component", cfg.components, lua_files(join(cfg.dir, s.components)))
	load_decls("op", cfg.ops, lua_files(join(cfg.dir, s.ops)))
	load_sites(cfg, lua_files(join(cfg.dir, s.sites)))
	return cfg
end

M.join = join

return M

-- postgres { database = "acme" } or postgres { all = true }: pg_dump of one
-- database, or of every database of the cluster, one object each, and
-- then the cluster's roles and tablespaces (pg_dumpall --globals-only).
--
-- Every client runs with -w: it never asks for a password; one comes
-- from ~/.pgpass of the user the dump runs as, or is not needed (peer).
local db = vakap.db

local formats = {
	-- pg_dump's own archive, compressed, read by pg_restore (it has no
	-- completion line: pg_dump's exit status, and verify's listing of its
	-- table of contents, say it is whole)
	custom = { flags = { "-Fc" }, ext = "dump", compressed = true },
	-- SQL; --clean so that it restores over the database it came from
	plain = { flags = { "-Fp", "--clean", "--if-exists" }, ext = "sql", compressed = false,
		marker = "-- PostgreSQL database dump complete" },
}

-- The roles and tablespaces (pg_dumpall --globals-only): not a format
-- of the option, so apart.
local globals_format = { ext = "sql", compressed = false, marker = "-- PostgreSQL database cluster dump complete" }

-- The part holding the globals, beside one part per database.  A
-- database's part is its name, but one that begins with "_" or "%" gets a
-- "%" before it: no database's part is the globals', whatever its name.
local globals_part = "_globals"

local function part_name(database)
	return database:find("^[_%%]") and "%" .. database or database
end

local no_password = "a password never goes on a command line: put it in ~/.pgpass of the user the dump runs as"

local list_query = "SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY datname"

-- A client's argv: as_user, the tool, never a password prompt, then how to
-- reach the server.
local function client(o, tool)
	local argv = db.append(db.command(o.as_user, tool), { "-w" })
	if o.host then db.append(argv, { "-h", o.host }) end
	if o.port then db.append(argv, { "-p", tostring(o.port) }) end
	if o.user then db.append(argv, { "-U", o.user }) end
	return argv
end

-- A database name as -d takes it: one with '=' or a URI's start would be
-- read as connection parameters, so it goes quoted in dbname='...'.
local function dbname(name)
	if name:find("=", 1, true) or name:match("^postgres[a-z]*:") then
		return "dbname='" .. name:gsub("[\\']", "\\%0") .. "'"
	end
	return name
end

-- psql, not reading ~/.psqlrc, in database name
local function psql(o, name, args)
	return db.append(db.append(client(o, "psql"), { "-X", "-d", dbname(name) }), args)
end

local function dump_argv(o, name)
	local argv = db.append(client(o, "pg_dump"), formats[o.format].flags)
	return db.append(db.append(argv, o.pg_dump_options), { "-d", dbname(name) })
end

-- The names the query prints (one column, records ending in NUL), run in
-- the database postgres, unless psql_options name another.
local function names(o, site, query)
	local argv = db.append(db.append(psql(o, "postgres", { "-At", "-0" }), o.psql_options), { "-c", query })
	local out, err = db.output(site, argv)
	if not out then return nil, err end
	local list = {}
	for name in out:gmatch("([^\0]*)\0") do list[#list + 1] = name end
	return list
end

-- The format of a stored object from its manifest's extension, else the
-- component's own.
local function format_of(o, manifest)
	local ext = manifest and type(manifest.ext) == "string" and manifest.ext:match("^[^.]+")
	for name, f in pairs(formats) do
		if f.ext == ext then return name end
	end
	return o.format
end

-- Create the database name unless the cluster has it.  -> true | nil, err
local function ensure_database(o, site, name)
	local have, err = names(o, site, "SELECT datname FROM pg_database")
	if not have then return nil, err end
	for _, n in ipairs(have) do
		if n == name then return true end
	end
	return db.output(site, db.append(client(o, "createdb"), { "--", name }))
end

local function restore_argv(o, format, name)
	if format == "custom" then
		return db.append(client(o, "pg_restore"), { "--clean", "--if-exists", "--single-transaction", "-d", dbname(name) })
	end
	local argv = psql(o, name, { "-v", "ON_ERROR_STOP=1", "--single-transaction", "-f", "-" })
	return db.append(argv, o.psql_options)
end

local dump_complete = vakap.ends_with("-- PostgreSQL database dump complete", "the dump")
local cluster_complete = vakap.ends_with("-- PostgreSQL database cluster dump complete", "the globals dump")

-- The dump, schema only, read to nowhere (pg_dump still locks every table
-- it would read, which takes the privilege to read it); and the globals'
-- dump: the dump user has what the real dumps need, or check says not.
local function privileges(self, site)
	local o = self.options
	local parts = { { database = o.database } }
	if o.all then
		local err
		parts, err = self.def.parts(self, site)
		if not parts then return nil, err end
	end
	for _, p in ipairs(parts) do
		local argv, what
		if p.globals then
			argv, what = db.append(client(o, "pg_dumpall"), { "--globals-only" }), "the dump of the globals"
		else
			argv = dump_argv(o, p.database)
			table.insert(argv, #argv - 1, "--schema-only")
			what = ("the dump of %s, schema only"):format(p.database)
		end
		local ok, err = db.dry_dump(site, argv, what)
		if not ok then return nil, err end
	end
	return true
end

component "postgres" {
	description = "A PostgreSQL database (or every one, and the globals), dumped with pg_dump",
	options = {
		database = { type = "string" },
		all = { type = "boolean", default = false },
		globals = { type = "boolean", default = true },
		user = { type = "string" },
		as_user = { type = "string", check = db.user_name },
		host = { type = "string" },
		port = { type = "integer" },
		format = { type = "string", default = "custom", check = function(v)
			return formats[v] ~= nil, 'must be "custom" or "plain"'
		end },
		psql_options = { type = "list", default = {} },
		pg_dump_options = { type = "list", default = {} },
		password = { type = "any", check = db.refuse(no_password) },
	},
	validate = db.one_database_or_all,

	-- all = true: one part per database that takes connections, and the
	-- globals (unless globals = false)
	parts = function(self, site)
		local o = self.options
		if not o.all then return false end
		local list, err = names(o, site, list_query)
		if not list then return nil, err end
		local parts = {}
		for _, name in ipairs(list) do parts[#parts + 1] = { name = part_name(name), database = name } end
		if o.globals then parts[#parts + 1] = { name = globals_part, globals = true } end
		return parts
	end,

	backup = function(self, site, _, part)
		local o = self.options
		local argv, f
		if part and part.globals then
			argv, f = db.append(client(o, "pg_dumpall"), { "--globals-only" }), globals_format
		else
			argv, f = dump_argv(o, part and part.database or o.database), formats[o.format]
		end
		local s, err = site:spawn(argv)
		if not s then return nil, err end
		return s, { ext = f.ext, compressed = f.compressed, command = argv, marker = f.marker }
	end,

	-- Into opts.target, else the database the dump came from, created when
	-- it does not exist: pg_restore --clean --if-exists, or psql, each in
	-- one transaction.  The globals go to the cluster, where roles that
	-- exist already (the one restoring, at least) are reported and kept.
	restore = function(self, site, s, opts)
		opts = opts or {}
		local o = self.options
		local part = opts.part or {}
		if part.globals then
			if opts.target then return nil, "the globals are restored into the cluster, not into a database" end
			local n, err = site:feed(db.append(psql(o, "postgres", { "-f", "-" }), o.psql_options), s)
			if not n then return nil, err end
			return true
		end
		local name = opts.target or part.database or o.database
		if not name then
			return nil, ("component '%s' backs up every database: say which to restore into (target)"):format(self.name)
		end
		local ok, err = ensure_database(o, site, name)
		if not ok then return nil, err end
		local n, ferr = site:feed(restore_argv(o, format_of(o, opts.manifest), name), s)
		if not n then return nil, ferr end
		return true
	end,

	-- A plain dump (and the globals) ends with pg_dump's completion line;
	-- a custom archive starts with its signature and, where pg_restore is
	-- installed here, lists its table of contents.
	inspect = function(self, s, manifest)
		local part = manifest and type(manifest.part) == "table" and manifest.part or {}
		if part.globals then return cluster_complete(self, s) end
		if format_of(self.options, manifest) == "plain" then return dump_complete(self, s) end
		local head, err = s:read(5)
		if head ~= "PGDMP" then
			return nil, err or "not a pg_dump custom archive (it does not start with PGDMP)"
		end
		if not vakap.localhost:which("pg_restore") then
			local n, derr = vakap.drain(s)
			if not n then return nil, derr end
			return { bytes = n + 5, toc = "not listed: no pg_restore here" }
		end
		-- pg_restore stops once it has the table of contents: the rest is
		-- read through after it, so the digest covers the whole object
		local n, ferr = vakap.localhost:feed({ "sh", "-c",
			"{ printf PGDMP; cat; } | { pg_restore --list > /dev/null; rc=$?; cat > /dev/null; exit $rc; }" }, s)
		if not n then return nil, "pg_restore cannot list its table of contents: " .. ferr end
		return { bytes = n + 5, toc = "listed" }
	end,

	-- The clients are there, and connect (to the database, if one is named).
	check = function(self, site)
		local o = self.options
		local tools = { "psql", "pg_dump" }
		if o.all and o.globals then tools[#tools + 1] = "pg_dumpall" end
		local ok, err = db.check_tools(site, o.as_user, tools)
		if not ok then return nil, err end
		ok, err = db.output(site, db.append(psql(o, o.database or "postgres", { "-At", "-c", "SELECT 1" }),
			o.psql_options))
		if not ok then return nil, err end
		return privileges(self, site)
	end,

	describe = function(self)
		local o = self.options
		return (o.all and (o.globals and "every database and the globals" or "every database")
			or "database " .. o.database) .. (" (%s)"):format(o.format) .. (o.as_user and " as " .. o.as_user or "")
	end,
}

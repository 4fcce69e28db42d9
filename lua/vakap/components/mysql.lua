-- mysql { database = "acme" } or mysql { all = true }: mysqldump of one
-- database, or of every database of the server, one object each.
--
-- Credentials never appear on a command line: they come from the option
-- files of the user the dump runs as (~/.my.cnf), or from defaults_file,
-- given to every client as --defaults-extra-file, its first argument.
local db = vakap.db

local system_schemas = {
	information_schema = true, performance_schema = true, sys = true, mysql = true,
}

-- What mysqldump is given before the operator's options, which come after
-- them and so can undo one with its --skip- form (--skip-events).
local dump_defaults = { "--single-transaction", "--routines", "--triggers", "--events", "--hex-blob" }

local no_password = "a password never goes on a command line: put it in the [client] section of "
	.. "~/.my.cnf of the user the dump runs as, or of a file named by defaults_file"

-- How the clients read an option (my_getopt): a long one may carry
-- --loose- or --maximum- before its name, spell '-' as '_', and be any
-- unambiguous prefix (--pass); short ones cluster (-qpSECRET: -q, then
-- -p with SECRET).  -> the option as shown in a refusal (never the
-- secret), or nil when it is not a password
local function password_flag(a)
	local long = a:match("^%-%-([^=]+)")
	if long then
		long = long:gsub("_", "-"):gsub("^loose%-", ""):gsub("^maximum%-", "")
		if #long >= 3 and ("password"):sub(1, #long) == long then return "--" .. a:match("^%-%-([^=]+)") end
		return nil
	end
	local cluster = a:match("^%-(%a+)")
	if cluster and cluster:find("p", 1, true) then return "-" .. cluster:sub(1, cluster:find("p", 1, true)) end
	return nil
end

local function no_password_flag(v)
	for _, a in ipairs(v) do
		local shown = password_flag(a)
		if shown then
			return nil, ("'%s%s': %s"):format(shown, #shown < #a and "..." or "", no_password)
		end
	end
	return true
end

local function validate(o)
	local ok, err = db.one_database_or_all(o)
	if not ok then return nil, err end
	for _, t in ipairs(o.ignore_tables) do
		local tdb = t:match("^([^.]+)%.")
		if o.database and tdb and tdb ~= o.database then
			return nil, ("ignore_tables: '%s' is not a table of database '%s'"):format(t, o.database)
		end
	end
	return true
end

-- A client's argv: as_user, the tool, the defaults file first, then how
-- to reach the server.
local function client(o, tool)
	local argv = db.command(o.as_user, tool)
	if o.defaults_file then argv[#argv + 1] = "--defaults-extra-file=" .. o.defaults_file end
	if o.user then argv[#argv + 1] = "--user=" .. o.user end
	if o.socket then argv[#argv + 1] = "--socket=" .. o.socket end
	if o.host then argv[#argv + 1] = "--host=" .. o.host end
	if o.port then argv[#argv + 1] = "--port=" .. o.port end
	return argv
end

-- mysqldump's argv for database name: ignore_tables "T" is the table T
-- of every database dumped, "DB.T" the table T of DB only.
local function dump_argv(o, name)
	local argv = db.append(db.append(client(o, "mysqldump"), dump_defaults), o.options)
	for _, t in ipairs(o.ignore_tables) do
		local tdb = t:match("^([^.]+)%.")
		if not tdb then
			argv[#argv + 1] = ("--ignore-table=%s.%s"):format(name, t)
		elseif tdb == name then
			argv[#argv + 1] = "--ignore-table=" .. t
		end
	end
	return db.append(argv, { "--", name })
end

-- mysql -B escapes \, newline, tab and NUL in what it prints
local unescape = { ["\\"] = "\\", n = "\n", t = "\t", ["0"] = "\0" }

-- The databases of the server, system schemas too.  -> names | nil, err
local function databases(o, site)
	local out, err = db.output(site, db.append(client(o, "mysql"), { "-N", "-B", "-e", "SHOW DATABASES" }))
	if not out then return nil, err end
	local names = {}
	for line in out:gmatch("[^\n]+") do
		names[#names + 1] = line:gsub("\\(.)", unescape)
	end
	return names
end

local function quote_ident(name)
	return "`" .. name:gsub("`", "``") .. "`"
end

-- Create the database name unless the server has it (so that restoring
-- into one that exists takes no CREATE privilege).  -> true | nil, err
local function ensure_database(o, site, name)
	local have, err = databases(o, site)
	if not have then return nil, err end
	for _, n in ipairs(have) do
		if n == name then return true end
	end
	return db.output(site, db.append(client(o, "mysql"), { "-e", "CREATE DATABASE " .. quote_ident(name) }))
end

local marker = "-- Dump completed"
local complete = vakap.ends_with(marker, "the dump")

-- Whether mysqldump was told to leave out its comments, and with them its
-- completion line.
local function uncommented(opts)
	for _, o in ipairs(type(opts) == "table" and opts or {}) do
		if o == "--skip-comments" or o == "--compact" then return true end
	end
	return false
end

-- The dump, run with every row filtered out (--where=0), read to
-- nowhere: the dump user can read every table, view, trigger, routine and
-- event the real dump reads, or check says which it cannot.
local function privileges(self, site)
	local list = { self.options.database }
	if self.options.all then
		local parts, err = self.def.parts(self, site)
		if not parts then return nil, err end
		list = {}
		for i, p in ipairs(parts) do list[i] = p.database end
	end
	for _, name in ipairs(list) do
		local argv = dump_argv(self.options, name)
		table.insert(argv, #argv - 1, "--where=0")
		local ok, err = db.dry_dump(site, argv, ("the dump of %s, with no rows"):format(name))
		if not ok then return nil, err end
	end
	return true
end

component "mysql" {
	description = "A MySQL or MariaDB database (or every one), dumped with mysqldump",
	options = {
		database = { type = "string" },
		all = { type = "boolean", default = false },
		user = { type = "string" },
		defaults_file = { type = "string", check = db.absolute },
		as_user = { type = "string", check = db.user_name },
		socket = { type = "string", check = db.absolute },
		host = { type = "string" },
		port = { type = "integer" },
		options = { type = "list", default = {}, check = no_password_flag },
		ignore_tables = { type = "list", default = {} },
		password = { type = "any", check = db.refuse(no_password) },
	},
	validate = validate,

	-- all = true: one part per database, the system schemas left out
	parts = function(self, site)
		if not self.options.all then return false end
		local names, err = databases(self.options, site)
		if not names then return nil, err end
		local parts = {}
		for _, name in ipairs(names) do
			if not system_schemas[name:lower()] then
				parts[#parts + 1] = { name = name, database = name }
			end
		end
		if #parts == 0 then return nil, "all = true: the server has no database but its system schemas" end
		return parts
	end,

	backup = function(self, site, _, part)
		local argv = dump_argv(self.options, part and part.database or self.options.database)
		local s, err = site:spawn(argv)
		if not s then return nil, err end
		-- checked before the backup is stored as whole
		return s, { ext = "sql", compressed = false, command = argv,
			marker = not uncommented(self.options.options) and marker or nil }
	end,

	-- Into opts.target, else the database the dump came from, created when
	-- it does not exist.  The dump drops and recreates each of its tables.
	restore = function(self, site, s, opts)
		opts = opts or {}
		local o = self.options
		local name = opts.target or (opts.part and opts.part.database) or o.database
		if not name then
			return nil, ("component '%s' backs up every database: say which to restore into (target)"):format(self.name)
		end
		local ok, err = ensure_database(o, site, name)
		if not ok then return nil, err end
		local n, ferr = site:feed(db.append(client(o, "mysql"), { "--database=" .. name }), s)
		if not n then return nil, ferr end
		return true
	end,

	-- The clients are there, and connect (to the database, if one is named).
	-- mysqldump's last line says it completed (unless told to leave out
	-- its comments).
	inspect = function(self, s, manifest)
		local opts = manifest and manifest.options and manifest.options.options or self.options.options or {}
		if uncommented(opts) then
			local n, err = vakap.drain(s)
			if not n then return nil, err end
			return { bytes = n, complete = "not told (--skip-comments)" }
		end
		return complete(self, s)
	end,

	check = function(self, site)
		local o = self.options
		local ok, err = db.check_tools(site, o.as_user, { "mysqldump", "mysql" })
		if not ok then return nil, err end
		local argv = db.append(client(o, "mysql"), { "-N", "-B", "-e", "SELECT 1" })
		if o.database then argv[#argv + 1] = "--database=" .. o.database end
		ok, err = db.output(site, argv)
		if not ok then return nil, err end
		return privileges(self, site)
	end,

	describe = function(self)
		local o = self.options
		return (o.all and "every database" or "database " .. o.database) .. (o.as_user and " as " .. o.as_user or "")
	end,
}

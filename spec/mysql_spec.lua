-- The mysql component: the argument lists it builds (what reaches the
-- server is tested end to end against MariaDB in tests/e2e/test_mysql.sh).
local fake = require "fakehost"
local mysql = require("vakap.config").builtin("component", "mysql")
local stream = require "vakap.stream"

local defaults = { "--single-transaction", "--routines", "--triggers", "--events", "--hex-blob" }

-- defaults with extra items at the end
local function dump(...)
	local argv = { "mysqldump" }
	for _, a in ipairs(defaults) do argv[#argv + 1] = a end
	for _, a in ipairs { ... } do argv[#argv + 1] = a end
	return argv
end

local function instance(opts)
	return assert(fake.instance(mysql, opts))
end

local backup_argv = fake.backup

describe("the mysql component", function()
	describe("options", function()
		it("takes a database, or all = true", function()
			assert.truthy(fake.instance(mysql, { database = "shop" }))
			assert.truthy(fake.instance(mysql, { all = true }))
		end)

		it("wants a database or all = true, not both, not neither", function()
			local want = 'give either database = "NAME" or all = true'
			assert.same({ nil, want }, { fake.instance(mysql, {}) })
			assert.same({ nil, want }, { fake.instance(mysql, { database = "shop", all = true }) })
		end)

		it("refuses a password, saying where it goes", function()
			local c, err = fake.instance(mysql, { database = "shop", password = "s3cret" })
			assert.is_nil(c)
			assert.truthy(err:find("option 'password': a password never goes on a command line", 1, true))
			assert.truthy(err:find("defaults_file", 1, true))
		end)

		it("refuses a password among the options, in any spelling mysqldump takes, never repeating it", function()
			local shown = { ["--password=s3cret"] = "--password...", ["--password"] = "--password",
				["--pass=s3cret"] = "--pass...", ["--passw"] = "--passw", ["-ps3cret"] = "-p...", ["-p"] = "-p",
				["--loose-password=s3cret"] = "--loose-password...", ["--loose_pass=s3cret"] = "--loose_pass...",
				["--maximum-password=s3cret"] = "--maximum-password...", ["-qps3cret"] = "-qp...",
				["-Bvps3cret"] = "-Bvp..." }
			for a, want in pairs(shown) do
				local c, err = fake.instance(mysql, { database = "shop", options = { "--quick", a } })
				assert.is_nil(c, a)
				assert.truthy(err:find(("'%s': a password never goes"):format(want), 1, true), err)
				assert.falsy(err:find("s3cret", 1, true), err)
			end
		end)

		it("takes options that only look like a password flag", function()
			for _, a in ipairs { "-P3307", "--port=3307", "--pipe", "--print-defaults", "--skip-events" } do
				assert.truthy(fake.instance(mysql, { database = "shop", options = { a } }), a)
			end
		end)

		it("wants absolute paths for defaults_file and socket", function()
			assert.is_nil(fake.instance(mysql, { database = "shop", defaults_file = "my.cnf" }))
			assert.is_nil(fake.instance(mysql, { database = "shop", socket = "run/mysqld.sock" }))
		end)

		it("refuses to ignore a table of another database than the one dumped", function()
			assert.same({ nil, "ignore_tables: 'blog.cache' is not a table of database 'shop'" },
				{ fake.instance(mysql, { database = "shop", ignore_tables = { "blog.cache" } }) })
		end)
	end)

	describe("backup", function()
		it("runs mysqldump with the defaults, the database last after --", function()
			local argv, info = backup_argv(instance { database = "shop" })
			assert.same(dump("--", "shop"), argv)
			assert.same({ "sql", false }, { info.ext, info.compressed })
		end)

		it("gives the defaults file first, then how to reach the server", function()
			local argv = backup_argv(instance { database = "shop", defaults_file = "/etc/vakap/my.cnf",
				user = "backup", socket = "/run/mysqld/mysqld.sock", host = "db.internal", port = 3307 })
			assert.same({ "mysqldump", "--defaults-extra-file=/etc/vakap/my.cnf", "--user=backup",
				"--socket=/run/mysqld/mysqld.sock", "--host=db.internal", "--port=3307" },
				{ table.unpack(argv, 1, 6) })
			assert.same(defaults, { table.unpack(argv, 7, 11) })
		end)

		it("adds the operator's options after the defaults, so they can undo one", function()
			local argv = backup_argv(instance { database = "shop", options = { "--skip-events", "--max-allowed-packet=1G" } })
			assert.same(dump("--skip-events", "--max-allowed-packet=1G", "--", "shop"), argv)
		end)

		it("ignores tables of the database, with the database's name added when not given", function()
			local argv = backup_argv(instance { database = "shop", ignore_tables = { "cache", "shop.sessions", "it's a \"table\"" } })
			assert.same(dump("--ignore-table=shop.cache", "--ignore-table=shop.sessions",
				"--ignore-table=shop.it's a \"table\"", "--", "shop"), argv)
		end)

		it("runs as another user through sudo -n", function()
			local argv = backup_argv(instance { database = "shop", as_user = "mysql", defaults_file = "/etc/my.cnf" })
			assert.same({ "sudo", "-n", "-u", "mysql", "--", "mysqldump", "--defaults-extra-file=/etc/my.cnf" },
				{ table.unpack(argv, 1, 7) })
		end)

		it("passes a database name that looks like an option, or has spaces, as it is", function()
			assert.same(dump("--", "-x my db"), (backup_argv(instance { database = "-x my db" })))
		end)

		it("never puts a password in the command", function()
			local argv = backup_argv(instance { database = "shop", defaults_file = "/etc/my.cnf", user = "backup" })
			for _, a in ipairs(argv) do assert.falsy(a:find("^%-p") or a:find("^%-%-pass"), a) end
		end)
	end)

	describe("parts", function()
		local listing = "information_schema\nblog\nmysql\nperformance_schema\nshop\nsys\nweird\\tname\\\\x\n"

		it("is false for one database, and runs nothing", function()
			local site, host = fake.site()
			assert.is_false(mysql.parts(instance { database = "shop" }, site, {}))
			assert.same({}, host.ran)
		end)

		it("lists the databases with SHOW DATABASES, leaving the system schemas out", function()
			local site, host = fake.site(function() return listing end)
			local parts = mysql.parts(instance { all = true, socket = "/run/m.sock" }, site, {})
			assert.same({ { "mysql", "--socket=/run/m.sock", "-N", "-B", "-e", "SHOW DATABASES" } }, host.ran)
			assert.same({
				{ name = "blog", database = "blog" },
				{ name = "shop", database = "shop" },
				{ name = "weird\tname\\x", database = "weird\tname\\x" },
			}, parts)
		end)

		it("dumps each part, ignoring a bare table in each and DB.T in DB only", function()
			local c = instance { all = true, ignore_tables = { "cache", "shop.sessions" } }
			assert.same(dump("--ignore-table=blog.cache", "--", "blog"),
				(backup_argv(c, { name = "blog", database = "blog" })))
			assert.same(dump("--ignore-table=shop.cache", "--ignore-table=shop.sessions", "--", "shop"),
				(backup_argv(c, { name = "shop", database = "shop" })))
		end)

		it("fails with the client's message when the databases cannot be listed", function()
			local site = fake.site(function() return nil, "mysql exited with status 1: ERROR 1045 (28000): Access denied" end)
			assert.same({ nil, "mysql exited with status 1: ERROR 1045 (28000): Access denied" },
				{ mysql.parts(instance { all = true }, site, {}) })
		end)

		it("fails when the server has only its system schemas", function()
			local site = fake.site(function() return "information_schema\nmysql\nperformance_schema\nsys\n" end)
			assert.same({ nil, "all = true: the server has no database but its system schemas" },
				{ mysql.parts(instance { all = true }, site, {}) })
		end)
	end)

	describe("restore", function()
		-- a site whose server has the databases named in `have`
		local function server(have)
			return fake.site(function(argv)
				if argv[#argv] == "SHOW DATABASES" then return have end
				return ""
			end)
		end

		it("feeds the dump to mysql in the database it came from", function()
			local site, host = server("mysql\nshop\n")
			local c = instance { database = "shop", defaults_file = "/etc/my.cnf" }
			assert.same({ true }, { mysql.restore(c, site, stream.string("DUMP"), {}) })
			assert.same({
				{ "mysql", "--defaults-extra-file=/etc/my.cnf", "-N", "-B", "-e", "SHOW DATABASES" },
				{ "mysql", "--defaults-extra-file=/etc/my.cnf", "--database=shop" },
			}, host.ran)
			assert.same({ "DUMP" }, host.fed)
		end)

		it("creates a missing target first, quoting it in SQL only", function()
			local site, host = server("shop\n")
			assert.is_true(mysql.restore(instance { database = "shop" }, site, stream.string(""), { target = "new`db" }))
			assert.same({ "mysql", "-e", "CREATE DATABASE `new``db`" }, host.ran[2])
			assert.same({ "mysql", "--database=new`db" }, host.ran[3])
		end)

		it("restores a part into its own database", function()
			local site, host = server("blog\n")
			assert.is_true(mysql.restore(instance { all = true }, site, stream.string(""),
				{ part = { name = "blog", database = "blog" } }))
			assert.same({ "mysql", "--database=blog" }, host.ran[2])
		end)

		it("wants a target for all = true without a part", function()
			local site = fake.site()
			assert.same({ nil, "component 'mysql' backs up every database: say which to restore into (target)" },
				{ mysql.restore(instance { all = true }, site, stream.string(""), {}) })
		end)

		it("returns mysql's failure", function()
			local site = fake.site(function(argv)
				if argv[#argv] == "--database=shop" then return nil, "mysql exited with status 1: ERROR 1064" end
				return "shop\n"
			end)
			assert.same({ nil, "mysql exited with status 1: ERROR 1064" },
				{ mysql.restore(instance { database = "shop" }, site, stream.string("x"), {}) })
		end)
	end)

	describe("check", function()
		it("finds the clients, connects to the database, and dumps it with no rows", function()
			local site, host = fake.site()
			assert.same({ true }, { mysql.check(instance { database = "shop" }, site) })
			assert.same({ { "mysql", "-N", "-B", "-e", "SELECT 1", "--database=shop" },
				{ "mysqldump", "--single-transaction", "--routines", "--triggers", "--events", "--hex-blob",
					"--where=0", "--", "shop" } }, host.ran)
		end)

		it("wants sudo for as_user", function()
			local site = fake.site(nil, { sudo = true })
			assert.same({ nil, "as_user needs sudo: sudo: command not found in PATH" },
				{ mysql.check(instance { database = "shop", as_user = "mysql" }, site) })
		end)

		it("wants mysqldump", function()
			local site = fake.site(nil, { mysqldump = true })
			assert.same({ nil, "mysqldump: command not found in PATH" }, { mysql.check(instance { all = true }, site) })
		end)

		it("returns the client's failure to connect", function()
			local site = fake.site(function() return nil, "mysql exited with status 1: ERROR 2002" end)
			assert.same({ nil, "mysql exited with status 1: ERROR 2002" }, { mysql.check(instance { all = true }, site) })
		end)
	end)

	it("describes itself", function()
		assert.equal("database shop", mysql.describe(instance { database = "shop" }))
		assert.equal("every database as mysql", mysql.describe(instance { all = true, as_user = "mysql" }))
	end)
end)

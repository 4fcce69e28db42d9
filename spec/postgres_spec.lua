-- The postgres component: the argument lists it builds (what reaches the
-- server is tested end to end in tests/e2e/test_postgres.sh).
local fake = require "fakehost"
local postgres = require("vakap.config").builtin("component", "postgres")
local stream = require "vakap.stream"

local function instance(opts)
	return assert(fake.instance(postgres, opts))
end

local backup_argv = fake.backup

local list_query = "SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY datname"

describe("the postgres component", function()
	describe("options", function()
		it("wants a database or all = true, not both, not neither", function()
			local want = 'give either database = "NAME" or all = true'
			assert.same({ nil, want }, { fake.instance(postgres, {}) })
			assert.same({ nil, want }, { fake.instance(postgres, { database = "shop", all = true }) })
		end)

		it("takes the custom and plain formats only", function()
			assert.equal("custom", instance({ database = "shop" }).options.format)
			assert.truthy(fake.instance(postgres, { database = "shop", format = "plain" }))
			assert.same({ nil, "postgres: option 'format': must be \"custom\" or \"plain\"" },
				{ fake.instance(postgres, { database = "shop", format = "tar" }) })
		end)

		it("refuses a password, saying where it goes", function()
			local c, err = fake.instance(postgres, { database = "shop", password = "s3cret" })
			assert.is_nil(c)
			assert.truthy(err:find("a password never goes on a command line: put it in ~/.pgpass", 1, true))
		end)
	end)

	describe("backup", function()
		it("runs pg_dump -Fc, never prompting, and says the archive is compressed", function()
			local argv, info = backup_argv(instance { database = "shop" })
			assert.same({ "pg_dump", "-w", "-Fc", "-d", "shop" }, argv)
			assert.same({ "dump", true }, { info.ext, info.compressed })
		end)

		it("dumps plain SQL that restores over the database it came from", function()
			local argv, info = backup_argv(instance { database = "shop", format = "plain" })
			assert.same({ "pg_dump", "-w", "-Fp", "--clean", "--if-exists", "-d", "shop" }, argv)
			assert.same({ "sql", false }, { info.ext, info.compressed })
		end)

		it("reaches the server as told, as another user, with the operator's pg_dump options", function()
			local argv = backup_argv(instance { database = "shop", host = "/run/postgresql", port = 5433, user = "backup",
				as_user = "postgres", pg_dump_options = { "--exclude-table=audit log", "--no-owner" } })
			assert.same({ "sudo", "-n", "-u", "postgres", "--", "pg_dump", "-w", "-h", "/run/postgresql", "-p", "5433",
				"-U", "backup", "-Fc", "--exclude-table=audit log", "--no-owner", "-d", "shop" }, argv)
		end)

		it("quotes a database name pg_dump would take for connection parameters", function()
			assert.same({ "pg_dump", "-w", "-Fc", "-d", [[dbname='a=b\'c']] },
				(backup_argv(instance { database = "a=b'c" })))
			assert.same({ "pg_dump", "-w", "-Fc", "-d", "dbname='postgresql://x'" },
				(backup_argv(instance { database = "postgresql://x" })))
			assert.same({ "pg_dump", "-w", "-Fc", "-d", "my db" }, (backup_argv(instance { database = "my db" })))
		end)

		it("dumps the globals of the _globals part with pg_dumpall", function()
			local argv, info = backup_argv(instance { all = true, port = 5433 }, { name = "_globals", globals = true })
			assert.same({ "pg_dumpall", "-w", "-p", "5433", "--globals-only" }, argv)
			assert.same({ "sql", false }, { info.ext, info.compressed })
		end)

		it("dumps a database part", function()
			local argv = backup_argv(instance { all = true }, { name = "blog", database = "blog" })
			assert.same({ "pg_dump", "-w", "-Fc", "-d", "blog" }, argv)
		end)
	end)

	describe("parts", function()
		it("is false for one database, and runs nothing", function()
			local site, host = fake.site()
			assert.is_false(postgres.parts(instance { database = "shop" }, site, {}))
			assert.same({}, host.ran)
		end)

		it("lists the databases that take connections, then the globals", function()
			local site, host = fake.site(function() return "blog\0post gres\nx\0shop\0" end)
			local parts = postgres.parts(instance { all = true, psql_options = { "-d", "maint" } }, site, {})
			assert.same({ { "psql", "-w", "-X", "-d", "postgres", "-At", "-0", "-d", "maint", "-c", list_query } }, host.ran)
			assert.same({
				{ name = "blog", database = "blog" },
				{ name = "post gres\nx", database = "post gres\nx" },
				{ name = "shop", database = "shop" },
				{ name = "_globals", globals = true },
			}, parts)
		end)

		it("leaves the globals out with globals = false", function()
			local site = fake.site(function() return "shop\0" end)
			assert.same({ { name = "shop", database = "shop" } },
				postgres.parts(instance { all = true, globals = false }, site, {}))
		end)

		it("fails with psql's message", function()
			local site = fake.site(function() return nil, "psql exited with status 2: connection refused" end)
			assert.same({ nil, "psql exited with status 2: connection refused" },
				{ postgres.parts(instance { all = true }, site, {}) })
		end)
	end)

	describe("restore", function()
		-- a site whose cluster has the databases named in `have`
		local function cluster(have)
			return fake.site(function(argv)
				if argv[#argv] == "SELECT datname FROM pg_database" then return have end
				return ""
			end)
		end

		it("restores a custom archive with pg_restore into the existing database, in one transaction", function()
			local site, host = cluster("postgres\0shop\0")
			assert.same({ true }, { postgres.restore(instance { database = "shop" }, site, stream.string("PGDMP"),
				{ manifest = { ext = "dump" } }) })
			assert.same({ "pg_restore", "-w", "--clean", "--if-exists", "--single-transaction", "-d", "shop" },
				host.ran[2])
			assert.same({ "PGDMP" }, host.fed)
			assert.equal(2, #host.ran)
		end)

		it("creates a missing target with createdb first", function()
			local site, host = cluster("postgres\0shop\0")
			assert.is_true(postgres.restore(instance { database = "shop", port = 5433 }, site, stream.string(""),
				{ target = "-new db", manifest = { ext = "dump" } }))
			assert.same({ "createdb", "-w", "-p", "5433", "--", "-new db" }, host.ran[2])
			assert.same({ "pg_restore", "-w", "-p", "5433", "--clean", "--if-exists", "--single-transaction",
				"-d", "-new db" }, host.ran[3])
		end)

		it("restores plain SQL with psql, stopping at the first error, in one transaction", function()
			local site, host = cluster("shop\0")
			assert.is_true(postgres.restore(instance { database = "shop", psql_options = { "-q" } }, site,
				stream.string("SELECT 1;"), { manifest = { ext = "sql.zst" } }))
			assert.same({ "psql", "-w", "-X", "-d", "shop", "-v", "ON_ERROR_STOP=1", "--single-transaction",
				"-f", "-", "-q" }, host.ran[2])
		end)

		it("goes by the stored object's format, not the component's current one", function()
			local site, host = cluster("shop\0")
			assert.is_true(postgres.restore(instance { database = "shop", format = "plain" }, site, stream.string(""),
				{ manifest = { ext = "dump.gpg" } }))
			assert.equal("pg_restore", host.ran[2][1])
		end)

		it("restores a part into its database", function()
			local site, host = cluster("blog\0")
			assert.is_true(postgres.restore(instance { all = true }, site, stream.string(""),
				{ part = { name = "blog", database = "blog" }, manifest = { ext = "dump" } }))
			assert.same("blog", host.ran[2][#host.ran[2]])
		end)

		it("restores the globals into the cluster with psql", function()
			local site, host = cluster("")
			assert.is_true(postgres.restore(instance { all = true }, site, stream.string("CREATE ROLE x;"),
				{ part = { name = "_globals", globals = true }, manifest = { ext = "sql.zst" } }))
			assert.same({ { "psql", "-w", "-X", "-d", "postgres", "-f", "-" } }, host.ran)
			assert.same({ nil, "the globals are restored into the cluster, not into a database" },
				{ postgres.restore(instance { all = true }, site, stream.string(""),
					{ part = { name = "_globals", globals = true }, target = "x" }) })
		end)

		it("wants a target for all = true without a part", function()
			assert.same({ nil, "component 'postgres' backs up every database: say which to restore into (target)" },
				{ postgres.restore(instance { all = true }, cluster(""), stream.string(""), {}) })
		end)

		it("returns the failure to list or create the database", function()
			local site = fake.site(function(argv)
				if argv[1] == "createdb" then return nil, "createdb exited with status 1: permission denied" end
				return ""
			end)
			assert.same({ nil, "createdb exited with status 1: permission denied" },
				{ postgres.restore(instance { database = "shop" }, site, stream.string(""), {}) })
		end)
	end)

	describe("check", function()
		it("finds the clients, connects to the database, and dumps its schema", function()
			local site, host = fake.site()
			assert.same({ true }, { postgres.check(instance { database = "shop" }, site) })
			assert.same({ { "psql", "-w", "-X", "-d", "shop", "-At", "-c", "SELECT 1" },
				{ "pg_dump", "-w", "-Fc", "--schema-only", "-d", "shop" } }, host.ran)
		end)

		it("wants pg_dumpall for the globals", function()
			local site = fake.site(nil, { pg_dumpall = true })
			assert.same({ nil, "pg_dumpall: command not found in PATH" }, { postgres.check(instance { all = true }, site) })
			assert.same({ true }, { postgres.check(instance { all = true, globals = false }, site) })
		end)

		it("wants sudo for as_user", function()
			local site = fake.site(nil, { sudo = true })
			assert.same({ nil, "as_user needs sudo: sudo: command not found in PATH" },
				{ postgres.check(instance { database = "shop", as_user = "postgres" }, site) })
		end)
	end)

	it("describes itself", function()
		assert.equal("database shop (custom)", postgres.describe(instance { database = "shop" }))
		assert.equal("every database and the globals (plain) as postgres",
			postgres.describe(instance { all = true, format = "plain", as_user = "postgres" }))
	end)
end)

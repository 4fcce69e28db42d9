-- config.load: vakap.lua, components.d/, ops.d/ and sites.d/, each checked
-- at load time with the file and line of every mistake.
local config = require "vakap.config"
local tmpdir = require "tmpdir"

describe("config.load", function()
	local dir

	before_each(function()
		dir = tmpdir.make()
	end)

	after_each(function()
		tmpdir.remove(dir)
		dir = nil
	end)

	-- Write files (relative name -> content) into the temp dir; vakap.lua
	-- is empty unless given.  -> the path of vakap.lua
	local function setup(files)
		if not files["vakap.lua"] then tmpdir.write(dir, "vakap.lua", "") end
		for name, content in pairs(files) do tmpdir.write(dir, name, content) end
		return dir .. "/vakap.lua"
	end

	local function load(files)
		return config.load(setup(files))
	end

	-- The error config.load raises for these files (a string).
	local function load_error(files)
		local ok, err = pcall(config.load, setup(files))
		assert.is_false(ok, "config.load should have raised")
		assert.is_string(err)
		return err
	end

	-- Assert that err starts with "DIR/rel:line: " and contains each of
	-- the plain strings in `says`.
	local function assert_error_at(err, rel, line, says)
		local at = ("%s/%s:%d: "):format(dir, rel, line)
		assert.equal(at, err:sub(1, #at), "error not located at " .. at .. ": " .. err)
		for _, s in ipairs(says or {}) do
			assert.truthy(err:find(s, 1, true), ("error lacks %q: %s"):format(s, err))
		end
	end

	local mysql_component = [[
component "mysql" {
  description = "A MySQL database, dumped with mysqldump",
  options = {
    database = { type = "string", required = true },
    user = { type = "string" },
    single_transaction = { type = "boolean", default = true },
  },
  backup = function(self, site) return site:spawn({ "mysqldump", self.options.database }), { ext = "sql" } end,
  restore = function(self, site, s) return site:feed({ "mysql", self.options.database }, s) end,
}
]]

	describe("the happy path", function()
		it("loads a DESIGN.md-like set-up with defaults filled in", function()
			local cfg = load {
				["vakap.lua"] = [[
storage = dir "store"
retention = { last = 3, daily = 7, weekly = 4, monthly = 12, yearly = 3 }
]],
				["components.d/mysql.lua"] = mysql_component,
				["sites.d/acme.lua"] = [[
site "acme" {
  host = "deploy@web1.acme.example",
  tags = { "drupal", "prod" },
  mysql    { database = "acme", user = "backup" },
  files    { path = "/var/www/acme/files", exclude = { "*.log", "cache/" } },
  files    { name = "private", path = "/var/www/acme/private" },
}

site "blog" {
  host = "local",
  files { path = "/srv/blog" },
}
]],
				["sites.d/zeta.lua"] = [[
site "zeta" { host = "local" }
]],
			}
			assert.equal(dir .. "/vakap.lua", cfg.file)
			assert.equal(dir, cfg.dir)
			local s = cfg.settings
			assert.equal(4, s.jobs)
			assert.equal("zstd", s.compress)
			assert.equal(93600, s.stale_after)
			assert.same({ last = 3, daily = 7, weekly = 4, monthly = 12, yearly = 3 }, s.retention)
			assert.equal("dir", s.storage.kind)
			assert.equal(dir .. "/store", s.storage.path)
			assert.equal(dir .. "/vakap.lua:1", s.storage.where)

			local names = {}
			for i, site in ipairs(cfg.sites) do names[i] = site.name end
			assert.same({ "acme", "blog", "zeta" }, names)

			local acme = cfg.sites_by_name.acme
			assert.equal(cfg.sites[1], acme)
			assert.equal("deploy@web1.acme.example", acme.host)
			assert.same({ "drupal", "prod" }, acme.tags)
			assert.same({}, acme.vars)
			assert.equal(dir .. "/sites.d/acme.lua:1", acme.where)

			local comps = {}
			for i, c in ipairs(acme.components) do comps[i] = { c.type, c.name, c.where } end
			assert.same({
				{ "mysql", "mysql", dir .. "/sites.d/acme.lua:4" },
				{ "files", "files", dir .. "/sites.d/acme.lua:5" },
				{ "files", "private", dir .. "/sites.d/acme.lua:6" },
			}, comps)
			assert.same({ database = "acme", user = "backup", single_transaction = true, name = "mysql" },
				acme.components[1].options)
			assert.same({ path = "/var/www/acme/files", exclude = { "*.log", "cache/" },
				follow_symlinks = true, name = "files" }, acme.components[2].options)

			assert.same({}, cfg.sites_by_name.zeta.tags)
			assert.same({}, cfg.sites_by_name.zeta.components)
		end)

		it("stores backups in DIR/backups when vakap.lua declares no storage", function()
			local cfg = load {}
			assert.same({ kind = "dir", path = dir .. "/backups", where = "(default)" }, cfg.settings.storage)
			assert.same({}, cfg.sites)
		end)

		it("keeps an absolute storage path as it is", function()
			local cfg = load { ["vakap.lua"] = 'storage = dir "/var/backups/vakap"\n' }
			assert.equal("/var/backups/vakap", cfg.settings.storage.path)
		end)

		it("takes the settings vakap.lua gives", function()
			local cfg = load { ["vakap.lua"] = 'jobs = 2\ncompress = "gzip:9"\nstale_after = "1h30m"\n' }
			assert.equal(2, cfg.settings.jobs)
			assert.equal("gzip:9", cfg.settings.compress)
			assert.equal(5400, cfg.settings.stale_after)
		end)

		it("reads sites from the directory the sites setting names", function()
			local cfg = load {
				["vakap.lua"] = 'sites = "inventory"\n',
				["inventory/a.lua"] = 'site "a" { host = "local" }\n',
				["sites.d/b.lua"] = 'site "b" { host = "local" }\n',
			}
			assert.equal(1, #cfg.sites)
			assert.equal("a", cfg.sites[1].name)
		end)

		it("ignores files that do not end in .lua and hidden ones", function()
			local cfg = load {
				["sites.d/a.lua"] = 'site "a" { host = "local" }\n',
				["sites.d/b.lua.orig"] = 'this is not lua\n',
				["sites.d/.c.lua"] = 'neither is this\n',
			}
			assert.equal(1, #cfg.sites)
		end)

		it("turns a site's stale_after into seconds", function()
			local cfg = load { ["sites.d/a.lua"] = 'site "a" { host = "local", stale_after = "2d" }\n' }
			assert.equal(172800, cfg.sites[1].stale_after)
		end)

		it("registers the built-in components and ops", function()
			local cfg = load {}
			assert.equal(config.builtin("component", "files"), cfg.components.files)
			assert.equal(config.builtin("component", "command"), cfg.components.command)
			assert.equal(config.builtin("component", "mysql"), cfg.components.mysql)
			assert.equal(config.builtin("component", "postgres"), cfg.components.postgres)
			assert.equal(config.builtin("op", "backup"), cfg.ops.backup)
			assert.equal(config.builtin("op", "status"), cfg.ops.status)
			assert.equal(config.builtin("op", "check"), cfg.ops.check)
		end)

		it("lets a sites.d file use locals, string functions and os.date", function()
			local cfg = load { ["sites.d/a.lua"] = [[
local root = os.date("!%Y") and "/srv" or "/srv"
for _, n in ipairs { "one", "two" } do
  site(n) { host = "local", root = root .. "/" .. string.upper(n) }
end
]] }
			assert.equal(2, #cfg.sites)
			assert.equal("/srv/TWO", cfg.sites[2].root)
		end)
	end)

	describe("vakap.lua", function()
		it("rejects an unknown setting, suggesting the one meant", function()
			local err = load_error { ["vakap.lua"] = 'jobs = 2\nstale_afterr = "26h"\n' }
			assert_error_at(err, "vakap.lua", 2, { "unknown setting 'stale_afterr'", "(did you mean 'stale_after'?)" })
		end)

		it("rejects jobs = 0", function()
			local err = load_error { ["vakap.lua"] = '\njobs = 0\n' }
			assert_error_at(err, "vakap.lua", 2, { "setting 'jobs'", "must be from 1 to 256" })
		end)

		it("rejects more jobs than one wait can poll", function()
			local err = load_error { ["vakap.lua"] = 'jobs = 257\n' }
			assert_error_at(err, "vakap.lua", 1, { "setting 'jobs'", "must be from 1 to 256" })
		end)

		it("rejects jobs that is not an integer", function()
			local err = load_error { ["vakap.lua"] = 'jobs = "four"\n' }
			assert_error_at(err, "vakap.lua", 1, { "setting 'jobs' must be an integer, not 'four'" })
		end)

		it("rejects a stale_after that is not a duration", function()
			local err = load_error { ["vakap.lua"] = 'compress = "zstd"\n\nstale_after = "soon"\n' }
			assert_error_at(err, "vakap.lua", 3, { "setting 'stale_after'", "duration", "'soon'" })
		end)

		it("rejects a compression it does not know", function()
			local err = load_error { ["vakap.lua"] = 'compress = "lz4"\n' }
			assert_error_at(err, "vakap.lua", 1, { "setting 'compress'", "'lz4' is not a compression" })
		end)

		it("rejects a level on no compression", function()
			local err = load_error { ["vakap.lua"] = 'compress = "none:3"\n' }
			assert_error_at(err, "vakap.lua", 1, { "'none' takes no level" })
		end)

		it("rejects storage that is not declared with dir", function()
			local err = load_error { ["vakap.lua"] = 'storage = { path = "/x" }\n' }
			assert.equal(dir .. "/vakap.lua: storage must be declared with dir \"PATH\" or s3 { bucket = ... }", err)
		end)

		it("takes storage = s3 { ... }", function()
			local cfg = load { ["vakap.lua"] = 'storage = s3 { bucket = "my-backups", prefix = "vakap/",\n'
				.. '  region = "eu-west-3", endpoint = "http://127.0.0.1:9000", profile = "b", path_style = true }\n' }
			local st = cfg.settings.storage
			assert.same({ "s3", "my-backups", "vakap/", "eu-west-3", "http://127.0.0.1:9000", "b", true },
				{ st.kind, st.bucket, st.prefix, st.region, st.endpoint, st.profile, st.path_style })
		end)

		it("rejects s3 storage without a bucket, or with a bad endpoint", function()
			local err = load_error { ["vakap.lua"] = 'storage = s3 { prefix = "x" }\n' }
			assert_error_at(err, "vakap.lua", 1, { "s3: option 'bucket' is required" })
			err = load_error { ["vakap.lua"] = '\nstorage = s3 { bucket = "b", endpoint = "s3.example.com" }\n' }
			assert_error_at(err, "vakap.lua", 2, { "s3: option 'endpoint'", "is a URL like https://s3.example.com" })
		end)

		it("rejects dir without a path", function()
			local err = load_error { ["vakap.lua"] = '\nstorage = dir ""\n' }
			assert_error_at(err, "vakap.lua", 2, { "dir expects a path" })
		end)

		it("takes encrypt = gpg { ... }, with paths relative to vakap.lua", function()
			local cfg = load { ["vakap.lua"] = 'encrypt = gpg { recipients = { "ops@example.com", "ABCD" },\n'
				.. '  sign = "backup@example.com", homedir = "keys", passphrase_file = "/etc/vakap/pass" }\n' }
			local enc = cfg.settings.encrypt
			assert.same({ "ops@example.com", "ABCD" }, enc.recipients)
			assert.same({ "gpg", "backup@example.com", dir .. "/keys", "/etc/vakap/pass" },
				{ enc.kind, enc.sign, enc.homedir, enc.passphrase_file })
		end)

		it("rejects gpg without recipients", function()
			local err = load_error { ["vakap.lua"] = '\nencrypt = gpg { recipients = {} }\n' }
			assert_error_at(err, "vakap.lua", 2, { "gpg: option 'recipients'", "name at least one key" })
			err = load_error { ["vakap.lua"] = 'encrypt = gpg { sign = "x" }\n' }
			assert_error_at(err, "vakap.lua", 1, { "gpg: option 'recipients' is required" })
		end)

		it("rejects an unknown gpg option, suggesting the one meant", function()
			local err = load_error { ["vakap.lua"] = 'encrypt = gpg { recipient = { "a" } }\n' }
			assert_error_at(err, "vakap.lua", 1, { "unknown option 'recipient'", "(did you mean 'recipients'?)" })
		end)

		it("rejects encrypt that is not declared with gpg", function()
			local err = load_error { ["vakap.lua"] = 'encrypt = { recipients = { "a" } }\n' }
			assert_error_at(err, "vakap.lua", 1, { "setting 'encrypt'", "must be declared with gpg {" })
		end)

		it("rejects a name it does not offer, suggesting the one meant", function()
			local err = load_error { ["vakap.lua"] = 'storage = dirr "/x"\n' }
			assert_error_at(err, "vakap.lua", 1, { "unknown name 'dirr'", "(did you mean 'dir'?)" })
		end)

		it("reports a syntax error with its file and line", function()
			local err = load_error { ["vakap.lua"] = 'jobs = 2\njobs = = 3\n' }
			assert_error_at(err, "vakap.lua", 2, { "unexpected symbol" })
		end)

		it("does not offer io, require or load", function()
			for _, name in ipairs { "io", "require", "load", "dofile" } do
				local err = load_error { ["vakap.lua"] = ("local x = %s\n"):format(name) }
				assert_error_at(err, "vakap.lua", 1, { ("unknown name '%s'"):format(name) })
			end
		end)
	end)

	describe("sites.d", function()
		it("rejects an unknown component, suggesting a built-in one", function()
			local err = load_error { ["sites.d/a.lua"] = 'site "a" {\n  host = "local",\n  fils { path = "/x" },\n}\n' }
			assert_error_at(err, "sites.d/a.lua", 3, { "unknown name 'fils'", "(did you mean 'files'?)" })
		end)

		it("rejects an unknown component, suggesting one from components.d", function()
			local err = load_error {
				["components.d/mysql.lua"] = mysql_component,
				["sites.d/a.lua"] = 'site "a" {\n  host = "local",\n  mysq { },\n}\n',
			}
			assert_error_at(err, "sites.d/a.lua", 3, { "unknown name 'mysq'", "(did you mean 'mysql'?)" })
		end)

		it("rejects an unknown component option, suggesting the one meant", function()
			local err = load_error { ["sites.d/a.lua"] = 'site "a" {\n  host = "local",\n  files { pth = "/x" },\n}\n' }
			assert_error_at(err, "sites.d/a.lua", 3, { "files: unknown option 'pth' (did you mean 'path'?)" })
		end)

		it("rejects an option of the wrong type", function()
			local err = load_error { ["sites.d/a.lua"] = 'site "a" {\n  host = "local",\n  files { path = 42 },\n}\n' }
			assert_error_at(err, "sites.d/a.lua", 3, { "files: option 'path' must be a string, not integer" })
		end)

		it("rejects an option its check refuses", function()
			local err = load_error { ["sites.d/a.lua"] = 'site "a" {\n  host = "local",\n  files { path = "rel" },\n}\n' }
			assert_error_at(err, "sites.d/a.lua", 3, { "files: option 'path': must be an absolute path" })
		end)

		it("rejects options that do not go together, by the component's validate", function()
			local err = load_error { ["sites.d/a.lua"] = 'site "a" {\n  host = "local",\n  mysql { database = "x", all = true },\n}\n' }
			assert_error_at(err, "sites.d/a.lua", 3, { 'mysql: give either database = "NAME" or all = true' })
		end)

		it("refuses a database password, saying where it goes", function()
			local err = load_error { ["sites.d/a.lua"] = 'site "a" {\n  host = "local",\n  mysql { database = "x",\n  password = "s3cret" },\n}\n' }
			assert_error_at(err, "sites.d/a.lua", 3, { "mysql: option 'password': a password never goes on a command line" })
			assert.falsy(err:find("s3cret", 1, true))
		end)

		it("rejects a component without a required option", function()
			local err = load_error { ["sites.d/a.lua"] = 'site "a" {\n  host = "local",\n  files {},\n}\n' }
			assert_error_at(err, "sites.d/a.lua", 3, { "files: option 'path' is required" })
		end)

		it("rejects a component given something else than a table", function()
			local err = load_error { ["sites.d/a.lua"] = 'site "a" {\n  host = "local",\n  files "/x",\n}\n' }
			assert_error_at(err, "sites.d/a.lua", 3, { "files expects a table of options" })
		end)

		it("rejects a site defined twice, naming both places", function()
			local err = load_error {
				["sites.d/a.lua"] = 'site "acme" { host = "local" }\n',
				["sites.d/b.lua"] = '\n\nsite "acme" { host = "local" }\n',
			}
			assert_error_at(err, "sites.d/b.lua", 3, { ("site 'acme' is already defined at %s/sites.d/a.lua:1"):format(dir) })
		end)

		it("rejects two components of the same name in a site, naming both", function()
			local err = load_error { ["sites.d/a.lua"] = [[
site "a" {
  host = "local",
  files { path = "/one" },
  files { path = "/two" },
}
]] }
			assert_error_at(err, "sites.d/a.lua", 4, {
				("site 'a' has two components named 'files' (the other at %s/sites.d/a.lua:3)"):format(dir),
				'name = "..."',
			})
		end)

		it("rejects a component name that is not a name", function()
			local err = load_error { ["sites.d/a.lua"] = 'site "a" {\n  host = "local",\n  files { name = "a/b", path = "/x" },\n}\n' }
			assert_error_at(err, "sites.d/a.lua", 3, { "files: option 'name' must be a name", "not 'a/b'" })
		end)

		for _, bad in ipairs { "bad name", "../x", "", ".hidden", "a/b" } do
			it(("rejects the site name %q"):format(bad), function()
				local err = load_error { ["sites.d/a.lua"] = ('\nsite %q { host = "local" }\n'):format(bad) }
				assert_error_at(err, "sites.d/a.lua", 2, { ("site name '%s' must be letters, digits"):format(bad) })
			end)
		end

		it("rejects a site name that is not a string", function()
			local err = load_error { ["sites.d/a.lua"] = 'site(42) { host = "local" }\n' }
			assert_error_at(err, "sites.d/a.lua", 1, { "site name (a number) must be" })
		end)

		it("lets a site encrypt to its own keys, or not at all", function()
			local cfg = load {
				["vakap.lua"] = 'encrypt = gpg { recipients = { "all@example.com" } }\n',
				["sites.d/a.lua"] = 'site "own" { host = "local", encrypt = gpg { recipients = { "own@example.com" } } }\n'
					.. 'site "plain" { host = "local", encrypt = false }\nsite "default" { host = "local" }\n',
			}
			assert.same({ "own@example.com" }, cfg.sites_by_name.own.encrypt.recipients)
			assert.is_false(cfg.sites_by_name.plain.encrypt)
			assert.is_nil(cfg.sites_by_name.default.encrypt)
		end)

		it("rejects a site encrypt that is neither gpg { } nor false", function()
			local err = load_error { ["sites.d/a.lua"] = 'site "x" {\n  host = "local",\n  encrypt = true }\n' }
			assert_error_at(err, "sites.d/a.lua", 1, { "site 'x': option 'encrypt'", "must be gpg { recipients = { ... } }, or false" })
		end)

		it("rejects an unknown site option, suggesting the one meant", function()
			local err = load_error { ["sites.d/a.lua"] = 'site "a" {\n  host = "local",\n  tag = { "x" },\n}\n' }
			assert_error_at(err, "sites.d/a.lua", 1, { "site 'a': unknown option 'tag' (did you mean 'tags'?)" })
		end)

		it("rejects a site without a host", function()
			local err = load_error { ["sites.d/a.lua"] = 'site "a" {\n  tags = { "x" },\n}\n' }
			assert_error_at(err, "sites.d/a.lua", 1, { "site 'a': option 'host' is required" })
		end)

		it("rejects tags that are not a list of strings", function()
			local err = load_error { ["sites.d/a.lua"] = 'site "a" { host = "local", tags = "prod" }\n' }
			assert_error_at(err, "sites.d/a.lua", 1, { "site 'a': option 'tags' must be a list of strings, not 'prod'" })
		end)

		it("rejects a tag that is not a name", function()
			local err = load_error { ["sites.d/a.lua"] = 'site "a" { host = "local", tags = { "a b" } }\n' }
			assert_error_at(err, "sites.d/a.lua", 1, { "site 'a': tag 'a b' must be letters" })
		end)

		it("rejects a site entry that is not a component", function()
			local err = load_error { ["sites.d/a.lua"] = 'site "a" { host = "local", "stray" }\n' }
			assert_error_at(err, "sites.d/a.lua", 1, { "site 'a': entry 1 is not a component" })
		end)

		it("rejects assignment to a global", function()
			local err = load_error { ["sites.d/a.lua"] = 'site "a" { host = "local" }\n\nroot = "/srv"\n' }
			assert_error_at(err, "sites.d/a.lua", 3, { "assignment to global 'root'", "'local'" })
		end)

		it("reports a syntax error with its file and line", function()
			local err = load_error { ["sites.d/a.lua"] = 'site "a" {\n  host = "local"\n  files { path = "/x" },\n}\n' }
			assert_error_at(err, "sites.d/a.lua", 3, { "'}' expected" })
		end)

		it("does not offer os.execute or os.exit", function()
			local err = load_error { ["sites.d/a.lua"] = '\nos.execute("true")\n' }
			assert_error_at(err, "sites.d/a.lua", 2, { "attempt to call a nil value (field 'execute')" })
			err = load_error { ["sites.d/a.lua"] = 'os.exit(0)\n' }
			assert_error_at(err, "sites.d/a.lua", 1, { "attempt to call a nil value (field 'exit')" })
		end)

		it("keeps a file's changes to string, table and math to that file", function()
			finally(function()
				string.vakap_spec_marker, table.vakap_spec_marker, math.vakap_spec_marker = nil, nil, nil
			end)
			load { ["sites.d/a.lua"] = [[
string.vakap_spec_marker = true
table.vakap_spec_marker = true
math.vakap_spec_marker = true
]] }
			assert.same({ nil, nil, nil },
				{ string.vakap_spec_marker, table.vakap_spec_marker, math.vakap_spec_marker })
		end)

		it("reports a runtime error with its file and line", function()
			local err = load_error { ["sites.d/a.lua"] = 'local t = nil\nlocal x = t.field\n' }
			assert_error_at(err, "sites.d/a.lua", 2, { "attempt to index" })
		end)

		it("gives sites.d a read-only vakap, nested tables too, so no file changes what another sees", function()
			local err = load_error { ["sites.d/a.lua"] = 'vakap.human_size = nil\n' }
			assert_error_at(err, "sites.d/a.lua", 1, { "vakap is read-only: cannot set 'human_size'" })
			err = load_error { ["sites.d/a.lua"] = '\nvakap.json.null = 0\n' }
			assert_error_at(err, "sites.d/a.lua", 2, { "vakap.json is read-only: cannot set 'null'" })
			local cfg = load { ["sites.d/a.lua"] = 'site "a" { host = "local", root = vakap.human_size(2048) }\n' }
			assert.equal("2.0 KiB", cfg.sites[1].root)
		end)

		it("names the file and line of whatever a file raises, and of a runaway recursion", function()
			assert_error_at(load_error { ["sites.d/a.lua"] = '\nerror(nil)\n' }, "sites.d/a.lua", 2,
				{ "raised nil instead of a message" })
			assert_error_at(load_error { ["sites.d/a.lua"] = 'error({})\n' }, "sites.d/a.lua", 1,
				{ "raised a table instead of a message" })
			assert_error_at(load_error { ["sites.d/a.lua"] = 'local function f() return f() + 1 end\nf()\n' },
				"sites.d/a.lua", 1, { "stack overflow" })
		end)

		it("stops a file that never finishes loading, naming where it was", function()
			local sandbox = require "vakap.sandbox"
			local was = sandbox.load_seconds
			sandbox.load_seconds = 0.3
			local err = load_error { ["sites.d/a.lua"] = 'local n = 0\nwhile true do\n  n = n + 1\nend\n' }
			sandbox.load_seconds = was
			assert.truthy(err:find("sites.d/a.lua:[23]: still running after"), err)
		end)

		it("refuses hostile names and hosts without repeating them whole", function()
			local err = load_error { ["sites.d/a.lua"] = 'site "a" { host = "web\\0evil" }\n' }
			assert_error_at(err, "sites.d/a.lua", 1, { "host 'web\\0evil' is not [user@]name[:port]" })
			err = load_error { ["sites.d/a.lua"] = 'site(string.rep("a", 1000000)) { host = "local" }\n' }
			assert_error_at(err, "sites.d/a.lua", 1, { "(1000000 bytes) must be letters", "128 bytes at most" })
			assert.is_true(#err < 400, #err)
		end)

		it("gives sites.d no primitive, no command, no environment and no string metatable", function()
			local cfg = load { ["sites.d/a.lua"] = [[
site "a" { host = "local", root = "/" .. table.concat({ tostring(vakap.tar), tostring(vakap.gpg),
  tostring(vakap.localhost), tostring(vakap.stream), tostring(vakap.log), tostring(os.getenv),
  tostring(os.execute) }, ",") }
]] }
			assert.equal("/nil,nil,nil,nil,nil,nil,nil", cfg.sites[1].root)
			assert_error_at(load_error { ["sites.d/a.lua"] = 'local f = io.open\n' }, "sites.d/a.lua", 1,
				{ "unknown name 'io'" })
			local err = load_error { ["sites.d/a.lua"] = 'getmetatable("").__index.format = nil\n' }
			assert_error_at(err, "sites.d/a.lua", 1, { "attempt to index a nil value" })
			assert.equal("function", type(string.format))
		end)

		it("gives ops.d and components.d files a read-only vakap as well", function()
			local err = load_error { ["ops.d/x.lua"] = 'vakap.json.encode = nil\n' }
			assert_error_at(err, "ops.d/x.lua", 1, { "vakap.json is read-only: cannot set 'encode'" })
			err = load_error { ["components.d/x.lua"] = '\nvakap.stream.string = nil\n' }
			assert_error_at(err, "components.d/x.lua", 2, { "vakap.stream is read-only: cannot set 'string'" })
		end)
	end)

	describe("components.d", function()
		it("offers a custom component to sites.d, with its options checked", function()
			local cfg = load {
				["components.d/mysql.lua"] = mysql_component,
				["sites.d/a.lua"] = 'site "a" {\n  host = "local",\n  mysql { database = "shop" },\n}\n',
			}
			local c = cfg.sites[1].components[1]
			assert.equal("mysql", c.type)
			assert.equal("mysql", c.name)
			assert.same({ database = "shop", single_transaction = true, name = "mysql" }, c.options)
			assert.equal(dir .. "/components.d/mysql.lua", cfg.components.mysql.file)
			assert.equal(dir .. "/components.d/mysql.lua:1", cfg.components.mysql.where)

			local err = load_error {
				["components.d/mysql.lua"] = mysql_component,
				["sites.d/a.lua"] = 'site "a" {\n  host = "local",\n  mysql { database = "shop", user = 7 },\n}\n',
			}
			assert_error_at(err, "sites.d/a.lua", 3, { "mysql: option 'user' must be a string, not integer" })
			err = load_error {
				["components.d/mysql.lua"] = mysql_component,
				["sites.d/a.lua"] = 'site "a" {\n  host = "local",\n  mysql { user = "u" },\n}\n',
			}
			assert_error_at(err, "sites.d/a.lua", 3, { "mysql: option 'database' is required" })
		end)

		it("rejects an option declared with an unknown type", function()
			local err = load_error { ["components.d/mysql.lua"] = [[
-- a component with a typo
component "mysql" {
  description = "MySQL",
  options = { database = { type = "strng" } },
  backup = function() end,
  restore = function() end,
}
]] }
			assert_error_at(err, "components.d/mysql.lua", 2, { "component 'mysql': option 'database' has unknown type 'strng'" })
		end)

		it("rejects an option that is not declared as a table", function()
			local err = load_error { ["components.d/mysql.lua"] = [[
component "mysql" {
  description = "MySQL",
  options = { database = "string" },
  backup = function() end,
  restore = function() end,
}
]] }
			assert_error_at(err, "components.d/mysql.lua", 1, { "option database must be declared as a table" })
		end)

		it("rejects a component without backup", function()
			local err = load_error { ["components.d/x.lua"] = [[
component "x" {
  description = "X",
  options = {},
  restore = function() end,
}
]] }
			assert_error_at(err, "components.d/x.lua", 1, { "component 'x': option 'backup' is required" })
		end)

		it("rejects a component that declares the common option name", function()
			local err = load_error { ["components.d/x.lua"] = [[
component "x" {
  description = "X",
  options = { name = { type = "string" } },
  backup = function() end,
  restore = function() end,
}
]] }
			assert_error_at(err, "components.d/x.lua", 1, { "option 'name' is common to all components" })
		end)

		it("rejects a component type that is not a name", function()
			local err = load_error { ["components.d/x.lua"] = '\ncomponent "my sql" { }\n' }
			assert_error_at(err, "components.d/x.lua", 2, { "component type 'my sql' must be letters" })
		end)
	end)

	describe("ops.d", function()
		it("loads an operator's op", function()
			local cfg = load { ["ops.d/revision.lua"] = [[
op "revision" {
  description = "Report the git revision deployed on each site",
  run = function(site) return { revision = "abc" } end,
}
]] }
			local op = cfg.ops.revision
			assert.equal("revision", op.name)
			assert.equal("Report the git revision deployed on each site", op.description)
			assert.is_true(op.record)
			assert.same({ revision = "abc" }, op.run({}))
			assert.equal(dir .. "/ops.d/revision.lua", op.file)
			assert.equal(dir .. "/ops.d/revision.lua:1", op.where)
		end)

		it("rejects an op without run", function()
			local err = load_error { ["ops.d/x.lua"] = '\nop "x" {\n  description = "X",\n}\n' }
			assert_error_at(err, "ops.d/x.lua", 2, { "op 'x': option 'run' is required" })
		end)

		it("rejects an op without description", function()
			local err = load_error { ["ops.d/x.lua"] = 'op "x" {\n  run = function() end,\n}\n' }
			assert_error_at(err, "ops.d/x.lua", 1, { "op 'x': option 'description' is required" })
		end)

		it("rejects an unknown op field, suggesting the one meant", function()
			local err = load_error { ["ops.d/x.lua"] = 'op "x" {\n  description = "X", run = function() end, reccord = false,\n}\n' }
			assert_error_at(err, "ops.d/x.lua", 1, { "op 'x': unknown option 'reccord' (did you mean 'record'?)" })
		end)

		it("rejects an op name that is not a name", function()
			local err = load_error { ["ops.d/x.lua"] = 'op "../x" { description = "X", run = function() end }\n' }
			assert_error_at(err, "ops.d/x.lua", 1, { "op name '../x' must be letters" })
		end)

		it("lets an op replace a built-in one", function()
			local cfg = load { ["ops.d/status.lua"] = [[
op "status" {
  description = "My own status",
  run = function() return "mine" end,
}
]] }
			assert.equal("My own status", cfg.ops.status.description)
			assert.equal("mine", cfg.ops.status.run())
			assert.equal(dir .. "/ops.d/status.lua", cfg.ops.status.file)
			-- the built-in op itself is left as it was
			assert.are_not.equal("My own status", config.builtin("op", "status").description)
		end)

		it("rejects two files defining the same op, naming both", function()
			local def = 'op "revision" { description = "R", run = function() end }\n'
			local err = load_error {
				["ops.d/a.lua"] = def,
				["ops.d/b.lua"] = "\n" .. def,
			}
			assert_error_at(err, "ops.d/b.lua", 2, { ("op 'revision' is already defined at %s/ops.d/a.lua:1"):format(dir) })
		end)

		it("rejects two files replacing the same built-in op", function()
			local def = 'op "status" { description = "S", run = function() end }\n'
			local err = load_error {
				["ops.d/a.lua"] = def,
				["ops.d/b.lua"] = def,
			}
			assert_error_at(err, "ops.d/b.lua", 1, { ("op 'status' is already defined at %s/ops.d/a.lua:1"):format(dir) })
		end)
	end)

	describe("ssh settings and hosts", function()
		it("checks ssh = { ... } at the line that sets it", function()
			local err = load_error { ["vakap.lua"] = 'storage = dir "s"\nssh = { keepalive = "x" }\n' }
			assert_error_at(err, "vakap.lua", 2, { "setting 'ssh'", "option 'keepalive' must be an integer" })
		end)

		it("rejects an unknown ssh option with a suggestion", function()
			local err = load_error { ["vakap.lua"] = 'ssh = { knwon_hosts = "kh" }\n' }
			assert_error_at(err, "vakap.lua", 1, { "unknown option 'knwon_hosts' (did you mean 'known_hosts'?)" })
		end)

		it("makes relative ssh paths relative to vakap.lua and leaves ~ for the home directory", function()
			local cfg = load { ["vakap.lua"] = 'ssh = { known_hosts = "kh", config = "~/.ssh/config", '
				.. 'identity_files = { "keys/backup" }, connect_timeout = 5 }\n' }
			local s = cfg.settings.ssh
			assert.same({ dir .. "/kh", "~/.ssh/config", { dir .. "/keys/backup" }, 5 },
				{ s.known_hosts, s.config, s.identity_files, s.connect_timeout })
		end)

		it("has no ssh settings by default", function()
			assert.same({}, load({}).settings.ssh)
		end)

		it("checks a site's host where the site is declared", function()
			local err = load_error { ["sites.d/a.lua"] = 'site "a" {\n  host = "deploy@web:x",\n}\n' }
			assert_error_at(err, "sites.d/a.lua", 1, { "option 'host'", "the port after ':' must be a number" })
		end)

		it("takes local, names, user@name:port and [v6]:port as hosts", function()
			local cfg = load { ["sites.d/a.lua"] = [[
site "a" { host = "local" }
site "b" { host = "web1" }
site "c" { host = "deploy@web1.example:2222" }
site "d" { host = "root@[::1]:22" }
]] }
			assert.equal(4, #cfg.sites)
		end)
	end)
end)

describe("config.find", function()
	it("raises when the named file does not exist", function()
		assert.same({ false, "cannot read configuration /nonexistent/vakap.lua: no such file" },
			{ pcall(config.find, "/nonexistent/vakap.lua") })
	end)

	it("returns the named file when it exists", function()
		local dir = tmpdir.make()
		local path = tmpdir.write(dir, "vakap.lua", "")
		local ok, found = pcall(config.find, path)
		tmpdir.remove(dir)
		assert.same({ true, path }, { ok, found })
	end)
end)

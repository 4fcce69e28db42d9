-- hosts.sshconfig: a site's host setting, and ~/.ssh/config read as
-- OpenSSH reads it.
local sshconfig = require "vakap.hosts.sshconfig"
local tmpdir = require "tmpdir"

describe("sshconfig.parse_host", function()
	it("takes a name alone", function()
		assert.same({ { host = "web1.example" } }, { sshconfig.parse_host("web1.example") })
	end)

	it("takes a user and a port", function()
		assert.same({ { user = "deploy", host = "web1", port = 2222 } }, { sshconfig.parse_host("deploy@web1:2222") })
	end)

	it("takes an IPv6 address in brackets, with or without a port", function()
		assert.same({ { user = "root", host = "::1", port = 2200 } }, { sshconfig.parse_host("root@[::1]:2200") })
		assert.same({ { host = "fe80::1" } }, { sshconfig.parse_host("[fe80::1]") })
	end)

	it("takes a bare IPv6 address as a name without a port", function()
		assert.same({ { host = "2001:db8::7" } }, { sshconfig.parse_host("2001:db8::7") })
	end)

	it("refuses an empty user, an empty or wrong port, spaces and option-like names", function()
		assert.same({ nil, "host '@web': the user before '@' is empty" }, { sshconfig.parse_host("@web") })
		assert.same({ nil, "host 'web:': the port after ':' must be a number" }, { sshconfig.parse_host("web:") })
		assert.same({ nil, "host 'web:99999': port 99999 is not from 1 to 65535" }, { sshconfig.parse_host("web:99999") })
		assert.same({ nil, "host 'a b' is not [user@]name[:port]" }, { sshconfig.parse_host("a b") })
		assert.same({ nil, "host '-oProxyCommand=x' is not [user@]name[:port]" },
			{ sshconfig.parse_host("-oProxyCommand=x") })
		assert.same({ nil, "host '[::1': an IPv6 address is written [addr] or [addr]:port" },
			{ sshconfig.parse_host("[::1") })
	end)
end)

describe("sshconfig.host_matches", function()
	it("matches * and ? patterns, case-insensitively", function()
		assert.is_true(sshconfig.host_matches({ "web*" }, "WEB1.example"))
		assert.is_true(sshconfig.host_matches({ "db?" }, "db2"))
		assert.is_false(sshconfig.host_matches({ "db?" }, "db12"))
	end)

	it("treats dots and other magic characters literally", function()
		assert.is_false(sshconfig.host_matches({ "a.b" }, "axb"))
		assert.is_true(sshconfig.host_matches({ "a-b%c" }, "a-b%c"))
	end)

	it("lets a negated pattern veto the others", function()
		assert.is_true(sshconfig.host_matches({ "*.example", "!db.example" }, "web.example"))
		assert.is_false(sshconfig.host_matches({ "*.example", "!db.example" }, "db.example"))
		assert.is_false(sshconfig.host_matches({ "!db.example" }, "web.example"))
	end)
end)

local config = [[
# comment
Host web web-alias
    HostName 10.0.0.5
    User deploy
    IdentityFile ~/.ssh/web_key

Host *.acme.example !db.acme.example
  User=acme
  Port = 2201

Host web
  User ignored-second-value
  IdentityFile "~/.ssh/with space"

Match host foo
  User never

Host *
  User fallback
  IdentityFile ~/.ssh/id_%r@%h
  UserKnownHostsFile ~/.ssh/kh_one ~/.ssh/kh_two
  ServerAliveInterval 15
]]

local env = {
	home = "/home/op", user = "op", hostname = "here",
	read = function(p) return p == "/home/op/.ssh/config" and config or nil end,
	exists = function(p) return p == "/home/op/.ssh/id_ecdsa" end,
}

describe("sshconfig.resolve", function()
	local settings = { config = "/home/op/.ssh/config" }

	it("follows an alias to its HostName, User and keys; the first value wins, IdentityFile accumulates", function()
		local t = assert(sshconfig.resolve("web", settings, env))
		assert.same({ "10.0.0.5", 22, "deploy", "web" }, { t.host, t.port, t.user, t.label })
		assert.same({ "/home/op/.ssh/web_key", "/home/op/.ssh/with space", "/home/op/.ssh/id_deploy@10.0.0.5" },
			t.identity_files)
	end)

	it("matches patterns with negations, and reads Key=value forms", function()
		local t = assert(sshconfig.resolve("shop.acme.example", settings, env))
		assert.same({ "shop.acme.example", 2201, "acme" }, { t.host, t.port, t.user })
		local db = assert(sshconfig.resolve("db.acme.example", settings, env))
		assert.same({ 22, "fallback" }, { db.port, db.user })
	end)

	it("lets the site's user and port win over the config", function()
		local t = assert(sshconfig.resolve("root@web:2022", settings, env))
		assert.same({ "10.0.0.5", 2022, "root" }, { t.host, t.port, t.user })
	end)

	it("never applies a Match block", function()
		local t = assert(sshconfig.resolve("foo", settings, env))
		assert.equal("fallback", t.user)
	end)

	it("takes UserKnownHostsFile and ServerAliveInterval from the config", function()
		local t = assert(sshconfig.resolve("other", settings, env))
		assert.same({ "/home/op/.ssh/kh_one", "/home/op/.ssh/kh_two", "/etc/ssh/ssh_known_hosts" }, t.known_hosts)
		assert.equal("/home/op/.ssh/kh_one", t.known_hosts_file)
		assert.same({ 10, 15 }, { t.connect_timeout, t.keepalive })
	end)

	it("lets vakap's settings win: known_hosts alone, identity files, timeouts", function()
		local t = assert(sshconfig.resolve("other", { config = settings.config, known_hosts = "/etc/vakap/kh",
			identity_files = { "/etc/vakap/key" }, connect_timeout = 3, keepalive = 0 }, env))
		assert.same({ "/etc/vakap/kh" }, t.known_hosts)
		assert.same({ "/etc/vakap/key" }, t.identity_files)
		assert.same({ 3, 0 }, { t.connect_timeout, t.keepalive })
	end)

	it("uses OpenSSH's defaults without a config: the local user, port 22, the default keys that exist", function()
		local t = assert(sshconfig.resolve("plain.example", { config = "/nowhere" }, env))
		assert.same({ "plain.example", 22, "op" }, { t.host, t.port, t.user })
		assert.same({ "/home/op/.ssh/id_ecdsa" }, t.identity_files)
		assert.same({ "/home/op/.ssh/known_hosts", "/home/op/.ssh/known_hosts2", "/etc/ssh/ssh_known_hosts" },
			t.known_hosts)
	end)

	it("names the file and line of a token it cannot expand", function()
		local bad = { read = function() return "Host x\n  IdentityFile ~/.ssh/%C\n" end, home = "/h", user = "u",
			exists = env.exists }
		assert.same({ nil, "/c:2: %C is not a token vakap expands (%d %u %h %r %p %n %l %%)" },
			{ sshconfig.resolve("x", { config = "/c" }, bad) })
	end)

	it("names the file and line of a line it cannot read", function()
		local bad = { read = function() return "Host x\n  User \"unclosed\n" end, home = "/h", user = "u",
			exists = env.exists }
		assert.same({ nil, "/c:2: cannot read this line" }, { sshconfig.resolve("x", { config = "/c" }, bad) })
	end)

	it("reads Included files where the Include stands", function()
		local dir = tmpdir.make()
		finally(function() tmpdir.remove(dir) end)
		local inc = {
			read = function() return "Include conf.d/*\nHost *\n  User last\n" end,
			home = "/h", user = "u", exists = env.exists,
			include = function(pattern)
				assert.equal("conf.d/*", pattern)
				return { { text = "Host inc\n  Port 2300\n  User included\n", path = dir .. "/conf.d/a" } }
			end,
		}
		local t = assert(sshconfig.resolve("inc", { config = "/c" }, inc))
		assert.same({ 2300, "included" }, { t.port, t.user })
	end)
end)

describe("sshconfig.expand", function()
	it("expands ~ and the tokens, %% to %", function()
		assert.same({ "/h/k_u_r_host_22_n_l_%" }, { sshconfig.expand("~/k_%u_%r_%h_%p_%n_%l_%%",
			{ d = "/h", u = "u", r = "r", h = "host", p = 22, n = "n", l = "l" }, "f:1") })
	end)
end)

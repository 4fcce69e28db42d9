-- A host reached over SSH, behind the same methods as hosts/local.lua:
-- one connection per site, kept for the whole run, every command an
-- argument list quoted by ssh.quote (in vakap.ssh).  The host needs only
-- sshd and its own tools (sh, GNU tar, stat): nothing of vakap, no
-- temporary files.
local fs = require "vakap.fs"
local proc = require "vakap.proc"
local ssh = require "vakap.ssh"
local sshconfig = require "vakap.hosts.sshconfig"
local util = require "vakap.util"

local M = {}

local Remote = {}
Remote.__index = Remote

local function home()
	return os.getenv("HOME") or "/root"
end

-- "~/x" -> "$HOME/x"
function M.expand_home(p)
	if p == "~" or p:sub(1, 2) == "~/" then return home() .. p:sub(2) end
	return p
end

-- Include in ssh_config: relative to ~/.ssh, a * or ? in the file name
local function include(pattern)
	local p = M.expand_home(pattern)
	if p:sub(1, 1) ~= "/" then p = home() .. "/.ssh/" .. p end
	local dir, base = p:match("^(.*)/([^/]*)$")
	local out = {}
	local names = {}
	if base:find("[*?]") then
		for _, n in ipairs(fs.list(dir) or {}) do
			if sshconfig.host_matches({ base }, n) and n:sub(1, 1) ~= "." then names[#names + 1] = n end
		end
		table.sort(names)
	else
		names = { base }
	end
	for _, n in ipairs(names) do
		local text = util.read_file(dir .. "/" .. n)
		if text then out[#out + 1] = { text = text, path = dir .. "/" .. n } end
	end
	return out
end

local function environment()
	return {
		home = home(),
		user = ssh.user() or os.getenv("USER") or "root",
		hostname = proc.hostname() or "localhost",
		read = util.read_file,
		exists = function(p) return fs.stat(p) ~= nil end,
		include = include,
	}
end

-- The ssh settings with their defaults and ~ expanded.
local function ssh_settings(settings)
	local s = settings and settings.ssh or {}
	local out = {}
	for k, v in pairs(s) do out[k] = v end
	out.config = M.expand_home(out.config or "~/.ssh/config")
	if out.known_hosts then out.known_hosts = M.expand_home(out.known_hosts) end
	if out.identity_files then
		out.identity_files = {}
		for i, p in ipairs(s.identity_files) do out.identity_files[i] = M.expand_home(p) end
	end
	return out
end

-- Where and how to reach a site's host.  -> target | nil, err
function M.target(spec, settings)
	return sshconfig.resolve(spec, ssh_settings(settings), environment())
end

local function connect_opts(t)
	return {
		host = t.host, port = t.port, user = t.user, label = t.label,
		identity_files = t.identity_files, known_hosts = t.known_hosts,
		connect_timeout = t.connect_timeout, keepalive = t.keepalive,
	}
end

-- -> host | nil, err
function M.open(spec, settings)
	local t, err = M.target(spec, settings)
	if not t then return nil, err end
	local sess, cerr, code = ssh.connect(connect_opts(t))
	if not sess then
		if code == "hostkey_unknown" then
			cerr = cerr .. "; if that is the host's key, record it with `vakap hostkeys --accept-new`"
		end
		return nil, cerr
	end
	return setmetatable({ name = spec, target = t, session = sess }, Remote)
end

-- The line OpenSSH writes for a host key.
local function known_hosts_line(key)
	return ("%s %s %s\n"):format(key.name, key.type, key.key)
end

-- Append a key to a known_hosts file, making its directory.
function M.add_known_host(path, key)
	local dir = path:match("^(.*)/[^/]*$")
	if dir and dir ~= "" then
		local ok, err = fs.mkdir(dir)
		if not ok then return nil, err end
	end
	local f, err = io.open(path, "a")
	if not f then return nil, ("cannot write %s: %s"):format(path, err) end
	local ok, werr = f:write(known_hosts_line(key))
	local cok, cerr = f:close()
	if not ok or not cok then return nil, ("cannot write %s: %s"):format(path, werr or cerr) end
	return true
end

-- The host key of a site's host and whether known_hosts knows it; with
-- accept_new, a key never seen is recorded (a changed one never is).
-- -> { host, name, type, fingerprint, state = "known" | "unknown" |
--      "recorded" | "CHANGED", known_fingerprint, file } | nil, err
function M.hostkey(spec, settings, accept_new)
	local t, err = M.target(spec, settings)
	if not t then return nil, err end
	local key, serr = ssh.scan(connect_opts(t))
	if not key then return nil, serr end
	local row = { host = spec, name = key.name, type = key.type, fingerprint = key.fingerprint,
		state = key.status, file = key.file or t.known_hosts_file, known_fingerprint = key.known_fingerprint }
	if key.status == "changed" then
		row.state = "CHANGED"
		if accept_new then
			row.error = ("the host key of %s (%s) has CHANGED: %s offers %s, %s has %s; "
				.. "vakap never replaces a known key: check with the host's administrator, "
				.. "then remove the old one (ssh-keygen -R '%s' -f %s)"):format(spec, key.name, spec,
				key.fingerprint, row.file, key.known_fingerprint, key.name, row.file)
		end
	elseif key.status == "unknown" and accept_new then
		local ok, aerr = M.add_known_host(t.known_hosts_file, key)
		if not ok then
			row.error = aerr
		else
			row.state, row.file = "recorded", t.known_hosts_file
		end
	end
	return row
end

-- spawn(argv, {cwd, env}) -> stream of the command's stdout | nil, err
function Remote:spawn(argv, opts)
	return self.session:exec(argv, opts)
end

-- feed(argv, stream, {cwd, env, progress}) -> bytes | nil, err
function Remote:feed(argv, stream, opts)
	return self.session:feed(argv, stream, opts)
end

-- GNU tar's options for vakap's exclude patterns: a name ("*.log") at any
-- depth, a path with an inner slash from the root.  "cache/" (directories
-- only, for vakap's own tar) excludes files of that name too: tar cannot
-- tell them apart.
local function exclude_args(patterns, args)
	for _, p in ipairs(patterns or {}) do
		local glob = p:gsub("/+$", "")
		local anchored = glob:sub(1, 1) == "/"
		glob = glob:gsub("^/+", "")
		if anchored or glob:find("/", 1, true) then
			args[#args + 1] = "--anchored"
			args[#args + 1] = "--exclude=./" .. glob
		else
			args[#args + 1] = "--no-anchored"
			args[#args + 1] = "--exclude=" .. glob
		end
	end
	return args
end

-- tar(path, {exclude, follow_symlinks}) -> a pax tar stream of the
-- directory, made by the host's GNU tar | nil, err
function Remote:tar(path, opts)
	opts = opts or {}
	local st, err = self:stat(path)
	if not st then return nil, err end
	if st.type ~= "directory" then return nil, ("%s is not a directory on %s"):format(path, self.name) end
	local args = { "tar", "-C", path, "-cf", "-", "--format=pax", "--no-wildcards-match-slash" }
	if opts.follow_symlinks ~= false then args[#args + 1] = "--dereference" end
	exclude_args(opts.exclude, args)
	args[#args + 1] = "."
	return self.session:exec(args)
end

-- extract(stream, path, {progress}) -> true | nil, err: the host's tar
-- reads the stream into path (made if missing)
function Remote:extract(stream, path, opts)
	-- never through a link planted in place of the directory; links inside
	-- it are replaced, not followed, since the archive names every
	-- directory before what it holds (GNU tar's default)
	local n, err = self.session:feed({ "sh", "-c",
		'if [ -L "$1" ]; then echo "$1 is a symbolic link: refusing to restore through it" >&2; exit 3; fi; '
			.. 'mkdir -p -- "$1" && exec tar -C "$1" -xf -', "sh", path },
		stream, { progress = opts and opts.progress })
	if not n then return nil, err end
	return true
end

local types = { [0x8] = "file", [0x4] = "directory", [0xA] = "link" }

-- Run argv and return its output, or nil, err.
local function output(self, argv)
	local s, err = self.session:exec(argv)
	if not s then return nil, err end
	local out, rerr = s:readall(1024 * 1024)
	s:close()
	return out, rerr
end

-- stat(path) -> { type, size, mtime, mode } | nil, err (links followed)
function Remote:stat(path)
	local out, err = output(self, { "stat", "-L", "-c", "%f %s %Y", "--", path })
	if not out then
		local why = err:match(": ([^:\n]+)\n?$") or err
		return nil, ("cannot stat %s on %s: %s"):format(path, self.name, why)
	end
	local mode, size, mtime = out:match("^(%x+) (%d+) (%d+)")
	if not mode then return nil, ("stat %s on %s: unexpected output '%s'"):format(path, self.name, util.chomp(out)) end
	mode = tonumber(mode, 16)
	return { type = types[mode >> 12] or "other", size = math.tointeger(tonumber(size)),
		mtime = math.tointeger(tonumber(mtime)), mode = mode & 0xFFF }
end

-- Whether a command can be found on the host: true | nil, err
function Remote:which(cmd)
	local out = output(self, { "sh", "-c", 'command -v "$1"', "sh", cmd })
	if out and out ~= "" then return true end
	return nil, ("%s: command not found in PATH on %s"):format(cmd, self.name)
end

function Remote:close()
	if self.session then self.session:close() end
end

return M

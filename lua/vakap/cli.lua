-- The command line: parse, load the configuration, run, report.
-- Exit codes: 0 all good; 1 a site failed, or a backup is stale or
-- missing; 2 a usage or configuration error, or status could not tell;
-- 130 interrupted.
local argparse = require "argparse"
local api = require "vakap.api"
local config = require "vakap.config"
local filter = require "vakap.filter"
local log = require "vakap.log"
local proc = require "vakap.proc"
local report = require "vakap.report"
local repository = require "vakap.repository"
local runner = require "vakap.runner"
local storage = require "vakap.storage"
local util = require "vakap.util"

local json = util.json
local M = {}

local function add_filters(cmd)
	cmd:argument("filter", "Site name or glob, tag:NAME or host:NAME."):args("*")
	cmd:option("-x --exclude", "Leave out the sites this filter selects."):count("*")
	return cmd
end

local function parser()
	local p = argparse("vakap", "Back up, check and maintain many hosted sites.")
		:command_target("command")
		:epilog("Exit status: 0 all good; 1 a site failed, or a backup is stale or missing; "
			.. "2 usage or configuration error (or status could not tell).")
	p:option("-c --config", "Configuration file (default: $VAKAP_CONFIG, then ./vakap.lua).")
	p:option("-j --jobs", "Sites to run in parallel (default: jobs in vakap.lua, or 4)."):convert(math.tointeger)
	p:flag("-n --dry-run", "Show what would be done, do nothing.")
	p:flag("--json", "Print one JSON document on stdout instead of text.")
	p:flag("-v --verbose", "More detail; tracebacks on errors."):count("0-3"):target("verbose")
	p:flag("-q --quiet", "Only warnings and errors on stderr.")
	p:option("--wait", "How long to wait for a site another run holds (default: fail at once), like 10m.")
	add_filters(p:command("list", "List sites: host, tags and components."))
	local run = p:command("run", "Run an op on every matching site.")
	run:argument("op", "The op to run (see `vakap ops`).")
	add_filters(run)
	add_filters(p:command("backup", "Back up every matching site (= vakap run backup)."))
	add_filters(p:command("status", "Last good backup of each component; exit 1 if any is stale or missing."))
		:option("--stale-after", "Age past which a backup is stale (default: stale_after in vakap.lua).")
	local rotate = add_filters(p:command("rotate", "Delete the backups no retention rule keeps (-n shows what would go)."))
	rotate:flag("--explain", "Show, for every backup, the rules that keep it.")
	rotate:flag("--forget-gone", "Also forget every backup of a part status calls gone (a dropped database).")
	add_filters(p:command("verify", "Download the newest backups and check them to their last byte; recorded for status."))
		:flag("--all", "Every stored backup, not only the newest of each component.")
	local snaps = p:command("snapshots", "A site's stored backups, newest first: time, size, compression, encryption, signer.")
	snaps:argument("site", "The site.")
	snaps:argument("component", "Only this component (COMPONENT/PART for one of its parts)."):args("?")
	local restore = p:command("restore", "Restore a backup to a file (--to) or into the site's host (--into-host).")
	restore:argument("site", "The site.")
	restore:argument("component", "The component (COMPONENT/PART for one of its parts, like a database).")
	restore:option("--at", "The newest backup at or before this time (default: the newest).")
	restore:option("--to", "Write the plaintext to this file, atomically.")
	restore:flag("--into-host", "Restore into the site's host: reload the database, extract the directory.")
	restore:option("--target", "With --into-host: another database or directory to restore into.")
	restore:flag("--force", "With --to: replace the file if it exists.")
	p:command("ops", "List the ops available, with their descriptions.")
	add_filters(p:command("check", "Check the configuration, the storage, and each site's host, components and keys."))
		:flag("--abort-uploads", "Abort the incomplete multipart uploads older than a day (s3 storage).")
	add_filters(p:command("hostkeys", "Show the host key of each selected site's SSH host and whether "
		.. "known_hosts knows it; exit 1 if one is unknown or changed."))
		:flag("--accept-new", "Record the keys never seen before in known_hosts (a changed key never is).")
	local url = p:command("url", "Print a time-limited download link for a stored backup (s3 storage).")
	url:argument("site", "The site.")
	url:argument("component", "The component, or COMPONENT/PART for one database of all = true.")
	url:option("--at", "The newest backup at or before this time (default: the newest).")
	url:option("--expires", "How long the link works (at most 7d).", "1h")
	p:command("version", "Print vakap's version.")
	return p
end

local function print_json(doc)
	io.stdout:write(json.encode(doc), "\n")
end

local function select_sites(cfg, a)
	local sites, err = filter.select(cfg.sites, a.filter, a.exclude)
	if not sites then error(err, 0) end
	return sites
end

local function cmd_list(cfg, a)
	local sites = select_sites(cfg, a)
	if a.json then
		local out = {}
		for _, s in ipairs(sites) do
			local comps = {}
			for _, c in ipairs(s.components) do
				comps[#comps + 1] = { name = c.name, type = c.type, options = util.plain(c.options) }
			end
			out[#out + 1] = { name = s.name, host = s.host, tags = s.tags, root = s.root,
				components = comps, where = s.where }
		end
		print_json({ sites = out })
		return 0
	end
	local lines = { ("%-20s %-24s %-20s %s"):format("SITE", "HOST", "TAGS", "COMPONENTS") }
	for _, s in ipairs(sites) do
		local comps = {}
		for _, c in ipairs(s.components) do
			comps[#comps + 1] = c.name == c.type and c.name or ("%s(%s)"):format(c.name, c.type)
		end
		lines[#lines + 1] = ("%-20s %-24s %-20s %s"):format(s.name, s.host,
			#s.tags > 0 and table.concat(s.tags, ",") or "-", table.concat(comps, " "))
	end
	io.stdout:write(table.concat(lines, "\n"), "\n")
	return 0
end

local function cmd_ops(cfg, a)
	local names = util.sorted_keys(cfg.ops)
	if a.json then
		local out = {}
		for _, n in ipairs(names) do
			out[#out + 1] = { name = n, description = cfg.ops[n].description, file = cfg.ops[n].file }
		end
		print_json({ ops = out })
		return 0
	end
	for _, n in ipairs(names) do
		local op = cfg.ops[n]
		io.stdout:write(("%-14s %s%s\n"):format(n, op.description, op.file and ("  [" .. op.file .. "]") or ""))
	end
	return 0
end

-- Secrets in vakap's environment: the AWS credentials it reads, and any
-- variable named like a secret.  Once the storage has its credentials,
-- they leave the environment, so no command vakap starts (gpg, a site's
-- commands, an op's) inherits them.
local function secret_name(name)
	local up = name:upper()
	return up:find("^AWS_") and up ~= "AWS_PROFILE" and up ~= "AWS_REGION" and up ~= "AWS_DEFAULT_REGION"
		or up:find("SECRET") or up:find("TOKEN") or up:find("PASSWORD") or up:find("PASSPHRASE")
		or up:find("CREDENTIAL")
end

local function open_storage(cfg)
	local st, err = storage.open(cfg.settings.storage)
	for _, name in ipairs(proc.env_names()) do
		if secret_name(name) then proc.unsetenv(name) end
	end
	if not st then error(err, 0) end
	return st
end

-- Run op over the selected sites and report.  -> exit code
local function run_op(cfg, op, a, extra)
	local sites = select_sites(cfg, a)
	local st = extra and extra.storage or open_storage(cfg)
	local results, interrupted = runner.run(op, sites, {
		jobs = a.jobs or cfg.settings.jobs,
		dry_run = a.dry_run,
		show_progress = not a.json and not a.quiet and proc.isatty(1) and proc.isatty(2),
		storage = st,
		settings = cfg.settings,
		version = api.vakap.version,
		stale_after = a.stale_after_seconds,
		lock_wait = a.wait_seconds,
		args = extra and extra.args,
		ops = util.sorted_keys(cfg.ops),
	})
	local summary, nfailed = report.summary(op.name, results)
	local text, code, own_summary
	if op.report and (not a.dry_run or op.plan) then
		text, code, own_summary = op.report(results, { json = a.json, explain = a.explain })
	end
	summary = own_summary or summary
	code = code or (nfailed > 0 and 1 or 0)
	if interrupted then code = 130 end
	if a.json then
		local doc = { op = op.name, dry_run = a.dry_run or false, ok = code == 0, sites = results,
			summary = { sites = #results, ok = #results - nfailed, failed = nfailed } }
		for k, v in pairs(extra and extra.json or {}) do doc[k] = v end
		print_json(doc)
	else
		if extra and extra.text then io.stdout:write(extra.text, "\n") end
		text = text or report.default(results)
		if text ~= "" then io.stdout:write(text, "\n") end
		if not a.quiet or nfailed > 0 then io.stdout:write(summary, "\n") end
	end
	return code
end

-- What check says of incomplete multipart uploads: one line each.
local function upload_lines(res, abort)
	local lines = {}
	for _, u in ipairs(res and res.stale_uploads or {}) do
		local state = not abort and "incomplete (vakap check --abort-uploads removes it)"
			or u.aborted and "aborted" or ("abort FAILED: " .. tostring(u.error))
		lines[#lines + 1] = ("storage: upload of %s started %s: %s"):format(u.key, u.initiated, state)
	end
	return lines
end

local function cmd_check(cfg, a)
	local st = open_storage(cfg)
	local res, err = st:check({ abort_uploads = a.abort_uploads })
	local lines = { ("config: %s: ok (%d sites)"):format(cfg.file, #cfg.sites),
		("storage: %s: %s"):format(st:describe(), res and "ok (reachable, writable)" or ("FAILED: " .. err)) }
	for _, l in ipairs(upload_lines(res, a.abort_uploads)) do lines[#lines + 1] = l end
	local code = run_op(cfg, cfg.ops.check, a, {
		storage = st, text = table.concat(lines, "\n"),
		json = { config = { file = cfg.file, ok = true, sites = #cfg.sites },
			storage = { kind = st.kind, describe = st:describe(), ok = res ~= nil, error = err,
				stale_uploads = res and res.stale_uploads or nil } },
	})
	if not res and code == 0 then code = 1 end
	-- an incomplete upload over a day old is a leftover to look at
	for _, u in ipairs(res and res.stale_uploads or {}) do
		if not u.aborted and code == 0 then code = 1 end
	end
	return code
end

-- --at TIME -> seconds | nil (none given); raises on a bad time
local function at_option(a)
	if not a.at then return nil end
	local t, err = util.parse_time(a.at)
	if not t then error("--at: " .. err, 0) end
	return t
end

-- vakap restore SITE COMPONENT[/PART] [--at TIME] (--to FILE | --into-host [--target X])
local function cmd_restore(cfg, a)
	if not cfg.sites_by_name[a.site] then error(("no site '%s' in the configuration"):format(a.site), 0) end
	if not a.to == not a.into_host then error("restore: say where, once: --to FILE or --into-host", 0) end
	if a.target and not a.into_host then error("restore: --target goes with --into-host", 0) end
	a.filter, a.exclude = { a.site }, {}
	return run_op(cfg, cfg.ops.restore, a, { args = {
		component = a.component, at = at_option(a), to = a.to, force = a.force, target = a.target,
	} })
end

-- vakap hostkeys [FILTER...] [--accept-new]: each SSH host once, in the
-- order of its first site.
local function cmd_hostkeys(cfg, a)
	local sshhost = require "vakap.hosts.ssh"
	local rows, by_host, code = {}, {}, 0
	for _, s in ipairs(select_sites(cfg, a)) do
		if s.host ~= "local" then
			local row = by_host[s.host]
			if not row then
				local err
				row, err = sshhost.hostkey(s.host, cfg.settings, a.accept_new)
				row = row or { host = s.host, state = "FAILED", error = err }
				row.sites = {}
				by_host[s.host] = row
				rows[#rows + 1] = row
			end
			row.sites[#row.sites + 1] = s.name
		end
	end
	for _, r in ipairs(rows) do
		if r.error or r.state ~= "known" and r.state ~= "recorded" then code = 1 end
	end
	if a.json then
		print_json({ ok = code == 0, hosts = rows })
		return code
	end
	local lines = {}
	for _, r in ipairs(rows) do
		local detail = r.error or (r.state == "recorded" and "recorded in " .. r.file)
			or (r.state == "known" and "in " .. r.file)
			or (r.state == "unknown" and "vakap hostkeys --accept-new records it in " .. r.file)
			or (r.state == "CHANGED" and ("%s has %s for it"):format(r.file, r.known_fingerprint)) or ""
		lines[#lines + 1] = ("%-28s %-12s %-52s %-8s %s"):format(r.host, r.type or "-", r.fingerprint or "-",
			r.state, detail)
	end
	if #rows == 0 then lines[1] = "no site selected is on an SSH host" end
	io.stdout:write(table.concat(lines, "\n"), "\n")
	return code
end

-- vakap url SITE COMPONENT [--at TIME] [--expires 1h]
local function cmd_url(cfg, a)
	local site = cfg.sites_by_name[a.site]
	if not site then error(("no site '%s' in the configuration"):format(a.site), 0) end
	local expires, derr = util.duration(a.expires)
	if not expires then error("--expires: " .. derr, 0) end
	if expires < 1 or expires > 7 * 86400 then error("--expires: a link works from 1s to 7d", 0) end
	local at = at_option(a) or util.now()
	local st = open_storage(cfg)
	if not st.presign then
		error(("vakap url needs s3 storage; %s holds plain files"):format(st:describe()), 0)
	end
	local repo = repository.open(st, { settings = cfg.settings, version = api.vakap.version })
	local listing, err = repo:list(site.name, a.component)
	if not listing then
		io.stderr:write("vakap: ", err, "\n")
		return 2
	end
	local series = repo:find(listing.series, a.component)
	local chosen = series and repo:pick(series, at)
	if not (chosen and chosen.data) then
		io.stderr:write(("vakap: no backup of %s/%s at or before %s\n"):format(site.name, a.component, util.iso(at)))
		return 1
	end
	local link, perr = repo:presign(chosen, expires)
	if not link then error(perr, 0) end
	if a.json then
		print_json({ site = site.name, component = a.component, object = chosen.data.key, size = chosen.data.size,
			time = util.iso(chosen.time), expires = util.iso(util.now() + expires), url = link })
	else
		io.stdout:write(link, "\n")
	end
	return 0
end

local function get_op(cfg, name)
	local op = cfg.ops[name]
	if not op then
		error(("unknown op '%s'; the ops are: %s"):format(name, table.concat(util.sorted_keys(cfg.ops), ", ")), 0)
	end
	return op
end

function M.main(args, version)
	api.vakap.version = version
	local ok, a = parser():pparse(args)
	if not ok then
		io.stderr:write("vakap: ", a, "\nTry 'vakap --help'.\n")
		return 2
	end
	log.set_verbosity(a.quiet and -1 or (a.verbose or 0))
	if a.command == "version" then
		io.stdout:write("vakap ", version, "\n")
		return 0
	end
	if a.jobs ~= nil and (not a.jobs or a.jobs < 1 or a.jobs > 256) then
		error("-j expects a number of sites from 1 to 256", 0)
	end
	if a.stale_after then
		local secs, err = util.duration(a.stale_after)
		if not secs then error("--stale-after: " .. err, 0) end
		a.stale_after_seconds = secs
	end
	if a.wait then
		local secs, err = util.duration(a.wait)
		if not secs then error("--wait: " .. err, 0) end
		a.wait_seconds = secs
	end
	local cfg = config.load(config.find(a.config))
	if a.command == "list" then return cmd_list(cfg, a) end
	if a.command == "ops" then return cmd_ops(cfg, a) end
	if a.command == "check" then return cmd_check(cfg, a) end
	if a.command == "url" then return cmd_url(cfg, a) end
	if a.command == "restore" then return cmd_restore(cfg, a) end
	if a.command == "snapshots" then
		if not cfg.sites_by_name[a.site] then error(("no site '%s' in the configuration"):format(a.site), 0) end
		a.filter, a.exclude = { a.site }, {}
		return run_op(cfg, cfg.ops.snapshots, a, { args = { component = a.component } })
	end
	if a.command == "hostkeys" then return cmd_hostkeys(cfg, a) end
	local opname = a.command == "run" and a.op or a.command
	local args = a.command == "verify" and { all = a.all }
		or a.command == "rotate" and { forget_gone = a.forget_gone } or nil
	return run_op(cfg, get_op(cfg, opname), a, args and { args = args } or nil)
end

return M

-- Running an op across sites: each site in its own worker process, up to
-- `jobs` at once.  A site that fails, raises or crashes its process is
-- reported failed; the others finish.  Workers report in JSON lines:
--   { type = "progress", bytes, label }   { type = "log", level, text }
--   { type = "result", ok, result, error, duration }
local encryption = require "vakap.encryption"
local fs = require "vakap.fs"
local hash = require "vakap.hash"
local log = require "vakap.log"
local proc = require "vakap.proc"
local progress = require "vakap.progress"
local repository = require "vakap.repository"
local sandbox = require "vakap.sandbox"
local sitemod = require "vakap.site"
local util = require "vakap.util"
local worker = require "vakap.worker"

local json = util.json
local M = {}

local function send(msg)
	worker.send(json.encode(msg))
end

-- The run's record, stored by the repository; a failure to store it is
-- a warning, not the site's failure.
local function record(base, op, site, out, started)
	local ok, err = base.repository:record_run(site.name, op.name, out, started)
	if not ok then log.warn("%s: cannot record this run of %s: %s", site.name, op.name, err) end
end

-- That a run started: until it records its end, status shows it running,
-- or interrupted once its process is gone.  Not recorded: not run, since a
-- run that status could not see end would be a run it cannot vouch for.
local function record_start(base, op, site, started)
	local ok, err = base.repository:record_start(site.name, op.name, started)
	if not ok then error(("cannot record that this run of %s started: %s"):format(op.name, err), 0) end
end

-- The lock of a site: a file in lock_dir named after the site and the
-- storage (two configurations backing up to different places do not
-- exclude each other).  -> lock | raises naming the holder
local function lock_site(site, base)
	local dir = base.settings.lock_dir
	local ok, err = fs.private_dir(dir)
	if not ok then error("the lock directory (lock_dir): " .. err, 0) end
	local id = hash.sha256_hex(base.repository:describe()):sub(1, 12)
	local who = ("pid %d on %s since %s"):format(proc.pid(), proc.hostname(), util.iso(util.now()))
	local lk
	lk, err = fs.lock(("%s/%s-%s.lock"):format(dir, site.name, id), base.lock_wait or 0, who)
	if not lk then
		error(("another vakap run is working on this site: %s; try again later, or wait for it with --wait")
			:format(err), 0)
	end
	return lk
end

-- What runs in the worker: the op on one site, then one result line.
local function run_site(op, rec, base)
	log.set_sink(function(level, text) send({ type = "log", level = level, text = text }) end)
	local ctx = sandbox.copy(base)
	ctx.progress = function(bytes, label) send({ type = "progress", bytes = bytes, label = label }) end
	local site = sitemod.new(rec, ctx)
	-- what the op sees of the run: read-only, the settings too
	local view = sandbox.readonly(ctx, "ctx")
	local started, t0 = util.now(), proc.clock()
	local fn = op.run
	if base.dry_run then
		fn = op.plan or function() return { would = "run " .. op.name } end
	end
	local handler = function(e)
		local msg = type(e) == "string" and e or tostring(e)
		if log.verbosity() >= 3 then msg = debug.traceback(msg, 2) end
		return msg
	end
	local locked = op.lock and not base.dry_run
	local recorded = op.record and not base.dry_run
	local begun = false
	local ok, res, err = xpcall(function()
		-- held while the op runs; a worker that dies releases it with its descriptor
		local _ <close> = locked and lock_site(rec, base) or nil
		if recorded then record_start(base, op, rec, started) end
		begun = true
		return fn(site, view)
	end, handler)
	site:close()
	local out = { type = "result", duration = proc.clock() - t0 }
	if ok then
		out.ok, out.result, out.error = err == nil, util.plain(res), err
	else
		out.ok, out.error = false, res
	end
	-- the record's site is the declared one, whatever the op did to its site
	-- object; a run that never began (another held the site) records
	-- nothing: the holder's run is the one to show
	if recorded and begun then record(base, op, rec, out, started) end
	send(out)
end

local function describe_end(how, code)
	if how == "killed" then
		return ("its process was killed by signal %d"):format(code)
	end
	return ("its process exited with status %d before reporting a result"):format(code)
end

-- Start the next sites' workers while fewer than `jobs` run.
local function start_workers(run)
	while not run.interrupted_at and #run.running < run.jobs and run.next_site <= #run.sites do
		local i = run.next_site
		local rec = run.sites[i]
		local w, err = worker.spawn(run_site, run.op, rec, run.base)
		if w then
			run.running[#run.running + 1] = { w = w, site = rec.name, index = i, t0 = proc.clock() }
			run.display:started(rec.name)
		else
			run.results[i] = { site = rec.name, ok = false, error = err }
			run.display:finished(rec.name, false)
		end
		run.next_site = i + 1
	end
end

-- Take in what worker r reported: progress, logs, its result.
local function read_messages(run, r)
	for _, line in ipairs(r.w:messages()) do
		local msg = util.decode(line)
		if type(msg) ~= "table" then
			log.warn("%s: unreadable report from its worker: %s", r.site, line)
		elseif msg.type == "progress" then
			run.display:progress(r.site, msg.bytes, msg.label)
		elseif msg.type == "log" then
			log.write(msg.level, msg.text)
		elseif msg.type == "result" then
			r.result = { site = r.site, ok = msg.ok, result = msg.result,
				error = msg.error ~= json.null and msg.error or nil, duration = msg.duration }
		end
	end
end

-- Wait a little for the workers; collect the results of those that ended.
local function poll_workers(run)
	local handles = {}
	for i, r in ipairs(run.running) do handles[i] = r.w end
	worker.wait(handles, 200)
	for i = #run.running, 1, -1 do
		local r = run.running[i]
		read_messages(run, r)
		local how, code = r.w:status()
		if how then
			local res = r.result or { site = r.site, ok = false, duration = proc.clock() - r.t0,
				error = run.interrupted_at and "interrupted" or describe_end(how, code) }
			run.results[r.index] = res
			run.display:finished(r.site, res.ok)
			r.w:close()
			table.remove(run.running, i)
		end
	end
end

-- On SIGINT or SIGTERM: no more sites; the running ones are sent SIGTERM,
-- and SIGKILL 10 seconds later.
local function handle_interrupt(run)
	if not proc.interrupted() then return end
	if not run.interrupted_at then
		run.interrupted_at = proc.clock()
		for _, r in ipairs(run.running) do r.w:kill() end
	elseif proc.clock() - run.interrupted_at > 10 then
		for _, r in ipairs(run.running) do r.w:kill(9) end
	end
end

-- opts: { jobs, dry_run, show_progress, storage, settings, version, now,
--         stale_after, lock_wait, args (the op's own arguments),
--         ops (the names of the ops configured, for status) }
-- -> { { site, ok, result, error, duration } } in the order of `sites`,
--    and whether the run was interrupted
function M.run(op, sites, opts)
	local base = {
		settings = opts.settings, now = opts.now or util.now(),
		dry_run = opts.dry_run, version = opts.version, stale_after = opts.stale_after,
		lock_wait = opts.lock_wait, args = opts.args, ops = opts.ops,
		repository = repository.open(opts.storage, { settings = opts.settings, version = opts.version }),
	}
	if #sites > 1 and opts.settings and opts.settings.encrypt then
		encryption.warm(opts.settings.encrypt)
	end
	local run = { op = op, sites = sites, base = base, jobs = opts.jobs, results = {}, running = {}, next_site = 1,
		display = progress.new(opts.show_progress, op.name, #sites) }
	log.set_sink(run.display:log_sink())
	while true do
		start_workers(run)
		if #run.running == 0 then break end
		poll_workers(run)
		handle_interrupt(run)
		run.display:draw()
	end
	for i = run.next_site, #sites do
		run.results[i] = { site = sites[i].name, ok = false, error = "not run: interrupted" }
	end
	run.display:finish()
	log.set_sink(nil)
	return run.results, run.interrupted_at ~= nil
end

return M

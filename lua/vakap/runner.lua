-- Running an op across sites: each site in its own worker process, up to
-- `jobs` at once.  A site that fails, raises or crashes its process is
-- reported failed; the others finish.  Workers report in JSON lines:
--   { type = "progress", bytes, label }   { type = "log", level, text }
--   { type = "result", ok, result, error, duration }
local catalog = require "vakap.catalog"
local encryption = require "vakap.encryption"
local fs = require "vakap.fs"
local hash = require "vakap.hash"
local log = require "vakap.log"
local proc = require "vakap.proc"
local progress = require "vakap.progress"
local sitemod = require "vakap.site"
local util = require "vakap.util"
local worker = require "vakap.worker"

local json = util.json
local M = {}

local function send(msg)
	worker.send(json.encode(msg))
end

local function record(ctx, op, site, out, started)
	local rec = {
		op = op.name, site = site.name, time = util.iso(started), ok = out.ok,
		error = out.error, result = out.result, duration = out.duration, vakap = ctx.version,
	}
	local key = catalog.op_key(site.name, op.name, out.ok)
	local ok, err = ctx.storage:put_string(key, json.encode(rec), { replace = true })
	if not ok then
		log.warn("%s: cannot record this run of %s: %s", site.name, op.name, err)
		return
	end
	-- the other outcome's record, and one in the earlier form, go
	ctx.storage:delete({ catalog.op_key(site.name, op.name, not out.ok), catalog.op_key(site.name, op.name) })
end

-- The lock of a site: a file in lock_dir named after the site and the
-- storage (two configurations backing up to different places do not
-- exclude each other).  -> lock | raises naming the holder
local function lock_site(site, base)
	local dir = base.settings.lock_dir
	local ok, err = fs.mkdir(dir)
	if not ok then error("cannot make the lock directory: " .. err, 0) end
	local id = hash.sha256_hex(base.storage:describe()):sub(1, 12)
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
	local ctx = setmetatable({
		progress = function(bytes, label) send({ type = "progress", bytes = bytes, label = label }) end,
	}, { __index = base })
	local site = sitemod.new(rec, ctx)
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
	local ok, res, err = xpcall(function()
		-- held while the op runs; a worker that dies releases it with its descriptor
		local _ <close> = locked and lock_site(site, base) or nil
		return fn(site, ctx)
	end, handler)
	site:close()
	local out = { type = "result", duration = proc.clock() - t0 }
	if ok then
		out.ok, out.result, out.error = err == nil, util.plain(res), err
	else
		out.ok, out.error = false, res
	end
	if op.record and not base.dry_run then record(ctx, op, site, out, started) end
	send(out)
end

local function describe_end(how, code)
	if how == "killed" then
		return ("its process was killed by signal %d"):format(code)
	end
	return ("its process exited with status %d before reporting a result"):format(code)
end

-- opts: { jobs, dry_run, show_progress, storage, settings, version, now,
--         stale_after, lock_wait, args (the op's own arguments) }
-- -> { { site, ok, result, error, duration } } in the order of `sites`
function M.run(op, sites, opts)
	local base = {
		settings = opts.settings, storage = opts.storage, now = opts.now or util.now(),
		dry_run = opts.dry_run, version = opts.version, stale_after = opts.stale_after,
		lock_wait = opts.lock_wait, args = opts.args,
	}
	if #sites > 1 and opts.settings and opts.settings.encrypt then
		encryption.warm(opts.settings.encrypt)
	end
	local results, running, next_site = {}, {}, 1
	local display = progress.new(opts.show_progress, op.name, #sites)
	local interrupted_at
	log.set_sink(display:log_sink())
	while true do
		while not interrupted_at and #running < opts.jobs and next_site <= #sites do
			local rec = sites[next_site]
			local w, err = worker.spawn(run_site, op, rec, base)
			if w then
				running[#running + 1] = { w = w, site = rec.name, index = next_site, t0 = proc.clock() }
				display:started(rec.name)
			else
				results[next_site] = { site = rec.name, ok = false, error = err }
				display:finished(rec.name, false)
			end
			next_site = next_site + 1
		end
		if #running == 0 then break end
		local handles = {}
		for i, r in ipairs(running) do handles[i] = r.w end
		worker.wait(handles, 200)
		for i = #running, 1, -1 do
			local r = running[i]
			for _, line in ipairs(r.w:messages()) do
				local msg = util.decode(line)
				if type(msg) ~= "table" then
					log.warn("%s: unreadable report from its worker: %s", r.site, line)
				elseif msg.type == "progress" then
					display:progress(r.site, msg.bytes, msg.label)
				elseif msg.type == "log" then
					log.write(msg.level, msg.text)
				elseif msg.type == "result" then
					r.result = { site = r.site, ok = msg.ok, result = msg.result,
						error = msg.error ~= json.null and msg.error or nil, duration = msg.duration }
				end
			end
			local how, code = r.w:status()
			if how then
				local res = r.result or { site = r.site, ok = false, duration = proc.clock() - r.t0,
					error = interrupted_at and "interrupted" or describe_end(how, code) }
				results[r.index] = res
				display:finished(r.site, res.ok)
				r.w:close()
				table.remove(running, i)
			end
		end
		if proc.interrupted() then
			if not interrupted_at then
				interrupted_at = proc.clock()
				for _, r in ipairs(running) do r.w:kill() end
			elseif proc.clock() - interrupted_at > 10 then
				for _, r in ipairs(running) do r.w:kill(9) end
			end
		end
		display:draw()
	end
	for i = next_site, #sites do
		results[i] = { site = sites[i].name, ok = false, error = "not run: interrupted" }
	end
	display:finish()
	log.set_sink(nil)
	return results, interrupted_at ~= nil
end

return M

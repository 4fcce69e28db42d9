-- Live progress on a terminal: sites done and failed, bytes streamed by
-- the running ones, redrawn on one line of stderr.  Disabled (every method
-- a no-op but logging) for --json, -q, or when stdout is not a terminal.
local proc = require "vakap.proc"
local util = require "vakap.util"

local P = {}
P.__index = P

local M = {}

function M.new(enabled, title, total)
	return setmetatable({
		enabled = enabled, title = title, total = total, done = 0, failed = 0,
		running = {}, order = {}, last = 0, shown = false,
	}, P)
end

function P:started(site)
	self.running[site] = { bytes = 0 }
	self.order[#self.order + 1] = site
end

function P:progress(site, bytes, label)
	local r = self.running[site]
	if r then r.bytes, r.label = bytes, label end
end

function P:finished(site, ok)
	self.running[site] = nil
	self.done = self.done + 1
	if not ok then self.failed = self.failed + 1 end
end

function P:clear()
	if self.shown then
		io.stderr:write("\r\27[K")
		self.shown = false
	end
end

function P:draw(force)
	if not self.enabled then return end
	local now = proc.clock()
	if not force and now - self.last < 0.2 then return end
	self.last = now
	local parts = {}
	for _, site in ipairs(self.order) do
		local r = self.running[site]
		if r then
			parts[#parts + 1] = r.bytes > 0 and ("%s %s"):format(site, util.human_size(r.bytes)) or site
		end
	end
	local line = ("%s: %d/%d done, %d failed%s%s"):format(self.title, self.done, self.total, self.failed,
		#parts > 0 and " | " or "", table.concat(parts, ", "))
	local width = tonumber(os.getenv("COLUMNS") or "") or 100
	if #line > width - 1 then line = line:sub(1, width - 4) .. "..." end
	io.stderr:write("\r\27[K", line)
	io.stderr:flush()
	self.shown = true
end

-- A log sink that keeps log lines from mixing with the progress line.
function P:log_sink()
	if not self.enabled then return nil end
	return function(level, text)
		self:clear()
		io.stderr:write(level == "info" and "" or (level .. ": "), text, "\n")
		self:draw(true)
	end
end

function P:finish()
	self:clear()
end

return M

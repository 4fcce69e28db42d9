-- Logging to stderr (results go to stdout).  In a worker, log lines are
-- sent to the parent, which prints them between progress updates.
local M = {}

local levels = { debug = 3, info = 2, warn = 1, error = 0 }
local threshold = levels.info
local sink -- function(level, text): set in workers and under a progress line

function M.set_verbosity(v)
	-- v: -1 quiet, 0 normal, 1+ verbose
	threshold = v < 0 and levels.warn or v > 0 and levels.debug or levels.info
end

function M.verbosity()
	return threshold
end

function M.set_sink(fn)
	sink = fn
end

function M.write(level, text)
	if (levels[level] or 0) > threshold then return end
	if sink then
		sink(level, text)
	else
		io.stderr:write(level == "info" and "" or (level .. ": "), text, "\n")
	end
end

for name in pairs(levels) do
	M[name] = function(fmt, ...)
		M.write(name, select("#", ...) > 0 and fmt:format(...) or tostring(fmt))
	end
end

return M

-- The check op: can each site's host be reached, and does each component
-- find what it needs there (its directory, its command)?
local vakap = require("vakap.api").vakap

return vakap.op "check" {
	description = "Check that each site's host and components are usable",
	record = false,

	run = function(site)
		local rows, problems = {}, {}
		site:connection()
		for _, c in ipairs(site.components) do
			local ok, err = true, nil
			if c.def.check then
				local fine, res, e = pcall(c.def.check, c, site)
				ok, err = fine and res, fine and e or res
			end
			rows[#rows + 1] = { component = c.name, ok = ok and true or false, problem = err }
			if not ok then problems[#problems + 1] = ("%s: %s"):format(c.name, err) end
		end
		return { host = site.host, components = rows },
			#problems > 0 and table.concat(problems, "; ") or nil
	end,

	report = function(results)
		local lines = {}
		for _, r in ipairs(results) do
			if not r.result then
				lines[#lines + 1] = ("%-20s %-14s FAILED  %s"):format(r.site, "-", r.error)
			else
				for _, c in ipairs(r.result.components) do
					lines[#lines + 1] = ("%-20s %-14s %-7s %s"):format(r.site, c.component,
						c.ok and "ok" or "FAILED", c.problem or "")
				end
			end
		end
		return table.concat(lines, "\n")
	end,
}

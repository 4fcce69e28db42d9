-- command { run = { "sqlite3", "/srv/app/db.sqlite", ".dump" }, ext = "sql" }
-- Any command whose standard output is the backup.  `restore`, when given,
-- is the command that reads a backup on its standard input.

local function nonempty(v)
	return #v > 0, "must name a command"
end

local function extension(v)
	return v:match("^[A-Za-z0-9]+$") ~= nil, "must be letters and digits, like \"sql\""
end

component "command" {
	description = "The output of a command, like sqlite3 DB .dump",
	options = {
		run = { type = "list", required = true, check = nonempty },
		ext = { type = "string", default = "out", check = extension },
		compressed = { type = "boolean", default = false },
		restore = { type = "list", check = nonempty },
		cwd = { type = "string" },
		-- whether no output at all is a backup (else it is refused)
		allow_empty = { type = "boolean", default = false },
	},

	backup = function(self, site)
		local o = self.options
		local s, err = site:spawn(o.run, { cwd = o.cwd })
		if not s then return nil, err end
		return s, { ext = o.ext, compressed = o.compressed, command = o.run, empty = o.allow_empty,
			empty_hint = ("; if that is normal for '%s', set allow_empty = true"):format(self.name) }
	end,

	restore = function(self, site, s)
		local o = self.options
		if not o.restore then
			return nil, ("component '%s' has no restore command: add restore = { ... } to it"):format(self.name)
		end
		return site:feed(o.restore, s, { cwd = o.cwd })
	end,

	check = function(self, site)
		return site:which(self.options.run[1])
	end,

	describe = function(self)
		return table.concat(self.options.run, " ")
	end,
}

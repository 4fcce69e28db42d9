-- files { path = "/var/www/acme/files", exclude = { "*.log", "cache/" } }
-- A directory, stored as a tar archive.  Symbolic links are followed by
-- default, so a linked directory is stored with its contents.

local function absolute(p)
	return p:sub(1, 1) == "/", "must be an absolute path"
end

component "files" {
	description = "A directory, stored as a tar archive",
	options = {
		path = { type = "string", required = true, check = absolute },
		exclude = { type = "list", default = {} },
		follow_symlinks = { type = "boolean", default = true },
	},

	backup = function(self, site)
		local o = self.options
		local s, err = site:tar(o.path, { exclude = o.exclude, follow_symlinks = o.follow_symlinks })
		if not s then return nil, err end
		return s, { ext = "tar", compressed = false }
	end,

	-- Extract over the original directory, or into opts.target.
	restore = function(self, site, s, opts)
		return site:extract(s, opts and opts.target or self.options.path)
	end,

	-- The archive reads to its end, every entry whole.
	inspect = function(_, s)
		return vakap.tar.verify(s)
	end,

	check = function(self, site)
		local st, err = site:stat(self.options.path)
		if not st then return nil, err end
		if st.type ~= "directory" then return nil, self.options.path .. " is not a directory" end
		return true
	end,

	describe = function(self)
		return self.options.path
	end,
}

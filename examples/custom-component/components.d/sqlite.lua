-- sqlite { path = "/srv/app/app.db" }: an SQLite database, dumped as SQL
-- with the sqlite3 shell on the site's host (a consistent copy, taken in
-- one read transaction, while the application goes on writing).
--
-- A component declares its options (checked where a site uses it, with
-- the file and line in the error), and says how to back up (a stream and
-- what it holds), how to restore (a stream in), and optionally how to
-- check a backup's plaintext (vakap verify) and the host (vakap check).
component "sqlite" {
  description = "An SQLite database, as an SQL dump",
  options = {
    path = {
      type = "string", required = true,
      check = function(v) return v:sub(1, 1) == "/", "must be an absolute path" end,
    },
  },

  backup = function(self, site)
    local s, err = site:spawn({ "sqlite3", "-readonly", self.options.path, ".dump" })
    if not s then return nil, err end
    return s, { ext = "sql", compressed = false }
  end,

  -- restore into opts.target when given (a new database), else over the
  -- original: the dump recreates every table
  restore = function(self, site, stream, opts)
    local target = opts.target or self.options.path
    return site:feed({ "sqlite3", "-bail", target }, stream)
  end,

  -- a dump that sqlite3 finished ends with COMMIT;
  inspect = function(self, stream)
    local n, tail = 0, ""
    for chunk in function() return stream:read(65536) end do
      n = n + #chunk
      tail = (tail .. chunk):sub(-64)
    end
    if not tail:find("COMMIT;%s*$") then
      return nil, "the dump does not end with COMMIT;: it was cut short"
    end
    return { bytes = n, complete = true }
  end,

  check = function(self, site)
    if not site:which("sqlite3") then return nil, "sqlite3 is not installed on the host" end
    if not site:stat(self.options.path) then return nil, self.options.path .. " does not exist" end
    return true
  end,

  describe = function(self)
    return "sqlite3 " .. self.options.path .. " .dump"
  end,
}

-- What the database components (mysql, postgres) share: their clients'
-- argument lists, run as another user when asked, their output read
-- without raising, and the options both check alike.  Public: operators'
-- components see it as vakap.db (read-only), as the built-ins do.
local M = {}

-- The start of a client's argv: the tool, or `sudo -n -u USER -- tool`
-- (-n: fail rather than ask for a password).
function M.command(as_user, tool)
	if as_user then return { "sudo", "-n", "-u", as_user, "--", tool } end
	return { tool }
end

-- argv with list's items added at its end; -> argv
function M.append(argv, list)
	for _, a in ipairs(list) do argv[#argv + 1] = a end
	return argv
end

-- The command's output | nil, err (site:capture raises; a component
-- returns its failures).
function M.output(site, argv)
	local ok, out = pcall(site.capture, site, argv)
	if not ok then return nil, out end
	return out
end

-- Run a dump that moves no data (a schema-only one, or one whose rows
-- are all filtered out) and read its output to nowhere: check's proof
-- that the dump user has what the real dump needs.  -> true | nil, err
function M.dry_dump(site, argv, what)
	local s, err = site:spawn(argv)
	if not s then return nil, err end
	local n, derr = s:drain()
	s:close()
	if not n then return nil, ("%s: %s"):format(what, derr) end
	return true
end

-- true | nil, err: each tool can be run on the site's host (and sudo,
-- for as_user).
function M.check_tools(site, as_user, tools)
	if as_user then
		local ok, err = site:which("sudo")
		if not ok then return nil, "as_user needs sudo: " .. err end
	end
	for _, tool in ipairs(tools) do
		local ok, err = site:which(tool)
		if not ok then return nil, err end
	end
	return true
end

-- Option checks.
function M.absolute(p)
	return p:sub(1, 1) == "/", "must be an absolute path"
end

function M.user_name(v)
	return v:match("^[%w_][%w_.-]*$") ~= nil, "must be a user name (letters, digits, '_', '.', '-')"
end

-- A check that refuses any value, saying why.
function M.refuse(why)
	return function() return nil, why end
end

-- database = "NAME" or all = true, not both, not neither.
function M.one_database_or_all(o)
	if (o.database ~= nil) == o.all then
		return nil, 'give either database = "NAME" or all = true'
	end
	return true
end

return M

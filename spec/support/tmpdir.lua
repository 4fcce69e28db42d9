-- Temporary directories for specs: made with mktemp -d, removed whole.
local M = {}

-- s as one word for sh: in single quotes.
local function quote(s)
	return "'" .. s:gsub("'", "'\\''") .. "'"
end
M.quote = quote

-- Run a shell command: its standard output, and whether it succeeded.
function M.sh(cmd)
	local p = assert(io.popen(cmd, "r"))
	local out = p:read("a")
	return out, p:close() == true
end

-- The whole content of a file (which must exist).
function M.read(path)
	local f = assert(io.open(path, "rb"))
	local data = f:read("a")
	f:close()
	return data
end

-- -> the path of a new, empty directory
function M.make()
	local p = assert(io.popen("mktemp -d /tmp/vakap-spec.XXXXXX"))
	local dir = p:read("l")
	p:close()
	assert(dir and dir:match("^/tmp/vakap%-spec%."), "mktemp -d failed")
	return dir
end

-- Write `content` to dir/rel, making the directories between.
function M.write(dir, rel, content)
	local path = dir .. "/" .. rel
	local parent = path:match("^(.*)/[^/]*$")
	assert(os.execute("mkdir -p " .. quote(parent)))
	local f = assert(io.open(path, "wb"))
	f:write(content)
	f:close()
	return path
end

-- The names in a directory, sorted (hidden ones too).
function M.names(dir)
	local p = assert(io.popen("ls -A " .. quote(dir)))
	local out = {}
	for line in p:lines() do out[#out + 1] = line end
	p:close()
	table.sort(out)
	return out
end

function M.remove(dir)
	if dir and dir:match("^/tmp/vakap%-spec%.") then
		os.execute("rm -rf " .. quote(dir))
	end
end

-- A fresh directory storage for each test, in a directory removed after
-- it: before_each(d.setup) and after_each(d.teardown) set and clear the
-- fields root and storage of d = tmpdir.dir_storage().
function M.dir_storage()
	local d = {}
	function d.setup()
		d.root = M.make()
		d.storage = require("vakap.storage.dir").open({ kind = "dir", path = d.root })
	end
	function d.teardown()
		M.remove(d.root)
		d.root, d.storage = nil, nil
	end
	return d
end

return M

-- Storage: where backups go.  Every backend offers the same methods, which
-- is all the ops use, so an op works the same on every backend:
--
--   put(key, stream, {progress}) -> { size } | nil, err
--       atomic: the object exists complete or not at all; never replaces
--   put_string(key, data, {replace}) -> true | nil, err
--   get(key) -> stream | nil, err
--   get_string(key) -> data | nil, err
--   list(prefix) -> { { key, size, mtime } ... } | nil, err
--       every object whose key starts with prefix, in no particular order
--   delete(keys) -> true | nil, err
--   check() -> { what was checked } | nil, err   (writes and removes a probe)
--   describe() -> "dir /var/backups/vakap"
local M = {}

-- decl: what vakap.lua declared (dir "..."); -> backend | nil, err
function M.open(decl)
	if decl.kind == "dir" then
		return require("vakap.storage.dir").open(decl)
	end
	return nil, ("storage kind '%s' is not supported"):format(tostring(decl.kind))
end

-- Keys are built from checked names; refuse anything that could escape.
function M.check_key(key)
	if type(key) ~= "string" or key == "" or key:sub(1, 1) == "/" then
		error(("bad storage key %q"):format(tostring(key)), 3)
	end
	for part in key:gmatch("[^/]+") do
		if part == "." or part == ".." then error(("bad storage key %q"):format(key), 3) end
	end
end

return M

-- Storage: where backups go.  Every backend offers the same methods, which
-- is all the ops use, so an op works the same on every backend:
--
--   put(key, stream, {progress, size_hint}) -> { size } | nil, err
--       atomic: the object exists complete or not at all; never replaces;
--       size_hint: the size expected (the previous backup's), if known
--   put_string(key, data, {replace}) -> true | nil, err
--   get(key) -> stream | nil, err
--   get_string(key) -> data | nil, err
--   list(prefix) -> { { key, size, mtime } ... } | nil, err
--       every object whose key starts with prefix, in no particular order
--   delete(keys) -> true | nil, err
--   check() -> { what was checked } | nil, err   (writes and removes a probe)
--   leftovers(prefix, before) -> { { key, mtime, what } ... } | nil, err
--       writes a killed run left unfinished (temporary files, incomplete
--       multipart uploads) begun before `before`; no listing shows them
--   remove_leftovers(items) -> true | nil, err
--   describe() -> "dir /var/backups/vakap"
local M = {}

-- decl: what vakap.lua declared (dir "..."); -> backend | nil, err
function M.open(decl)
	if decl.kind == "dir" then
		return require("vakap.storage.dir").open(decl)
	elseif decl.kind == "s3" then
		return require("vakap.storage.s3").open(decl)
	end
	return nil, ("storage kind '%s' is not supported"):format(tostring(decl.kind))
end

-- get_string for every backend: the object read whole (64 MiB at most).
function M.read_string(backend, key)
	local s, err = backend:get(key)
	if not s then return nil, err end
	local data, rerr = s:readall(64 * 1024 * 1024)
	s:close()
	return data, rerr
end

-- Write a small object, read it back and remove it.  -> true | nil, err
function M.probe(backend)
	local key = (".vakap-check-%d"):format(require("vakap.proc").pid())
	local ok, err = backend:put_string(key, "vakap", { replace = true })
	if not ok then return nil, "not writable: " .. err end
	local back
	back, err = backend:get_string(key)
	backend:delete({ key })
	if back ~= "vakap" then return nil, "cannot read back what was written: " .. tostring(err) end
	return true
end

-- Whether key is one vakap could have written: no leading '/', no empty,
-- '.' or '..' part, no control byte.
function M.safe_key(key)
	if type(key) ~= "string" or key == "" or key:sub(1, 1) == "/" or key:find("%c") or key:find("//", 1, true) then
		return false
	end
	for part in key:gmatch("[^/]+") do
		if part == "." or part == ".." then return false end
	end
	return true
end

-- Keys are built from checked names; refuse anything that could escape.
function M.check_key(key)
	if not M.safe_key(key) then
		error(("storage key %s is not one vakap writes (a leading '/', or an empty, '.' or '..' part): "
			.. "refusing it"):format(require("vakap.util").display(tostring(key))), 0)
	end
end

return M

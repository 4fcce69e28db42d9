-- Storage in a local directory: `storage = dir "/var/backups/vakap"`, the
-- embedded default.  Objects are written under a temporary name beside
-- their final one, synced, and renamed into place, so an interrupted write
-- leaves only a ".tmp-" file that no listing shows.
local fs = require "vakap.fs"
local proc = require "vakap.proc"
local stream = require "vakap.stream"
local storage = require "vakap.storage"

local Dir = {}
Dir.__index = Dir

local M = {}

function M.open(decl)
	return setmetatable({ kind = "dir", root = decl.path }, Dir)
end

M.temp_prefix = ".tmp-"

local counter = 0

-- /root/site/comp/name -> /root/site/comp, name, /root/site/comp/.tmp-PID-N-name
local function paths(self, key)
	storage.check_key(key)
	local final = self.root .. "/" .. key
	local dir, base = final:match("^(.*)/([^/]+)$")
	counter = counter + 1
	local tmp = ("%s/%s%d-%d-%s"):format(dir, M.temp_prefix, proc.pid(), counter, base)
	return final, dir, tmp
end

local function install(self, s, key, opts)
	local final, dir, tmp = paths(self, key)
	local ok, err = fs.mkdir(dir)
	if not ok then return nil, err end
	local n
	n, err = fs.write(s, tmp, { progress = opts and opts.progress })
	if not n then return nil, err end
	ok, err = fs.rename(tmp, final, { replace = opts and opts.replace })
	if not ok then
		fs.remove(tmp)
		if fs.stat(final) and not (opts and opts.replace) then
			return nil, ("object %s already exists"):format(key)
		end
		return nil, err
	end
	fs.syncdir(dir)
	return n
end

function Dir:put(key, s, opts)
	local n, err = install(self, s, key, { progress = opts and opts.progress })
	if not n then return nil, err end
	return { size = n }
end

function Dir:put_string(key, data, opts)
	local s <close> = stream.string(data)
	local n, err = install(self, s, key, { replace = opts and opts.replace })
	if not n then return nil, err end
	return true
end

function Dir:get(key)
	storage.check_key(key)
	return fs.source(self.root .. "/" .. key)
end

function Dir:get_string(key)
	return storage.read_string(self, key)
end

local function walk(root, rel, out, with_temp)
	local names, err = fs.list(rel == "" and root or root .. "/" .. rel)
	if not names then return nil, err end
	for _, name in ipairs(names) do
		local key = rel == "" and name or rel .. "/" .. name
		local st = fs.stat(root .. "/" .. key, true)
		if st and st.type == "directory" then
			local ok, werr = walk(root, key, out, with_temp)
			if not ok then return nil, werr end
		elseif st and st.type == "file" then
			local temp = name:sub(1, #M.temp_prefix) == M.temp_prefix
			if with_temp or not temp then
				out[#out + 1] = { key = key, size = st.size, mtime = st.mtime, temp = temp or nil }
			end
		end
	end
	return true
end

-- list(prefix [, {temp = true}]): with temp, leftover temporary files too
function Dir:list(prefix, opts)
	local st = fs.stat(self.root)
	if not st then return nil, ("storage directory %s does not exist"):format(self.root) end
	local out = {}
	-- walk from the deepest directory the prefix names
	local dir = prefix:match("^(.*)/[^/]*$") or ""
	if dir ~= "" then
		storage.check_key(dir)
		if not fs.stat(self.root .. "/" .. dir) then return out end
	end
	local ok, err = walk(self.root, dir, out, opts and opts.temp)
	if not ok then return nil, err end
	local filtered = {}
	for _, e in ipairs(out) do
		if e.key:sub(1, #prefix) == prefix then filtered[#filtered + 1] = e end
	end
	return filtered
end

function Dir:delete(keys)
	local failed = {}
	for _, key in ipairs(keys) do
		storage.check_key(key)
		local ok, err = fs.remove(self.root .. "/" .. key)
		if not ok and fs.stat(self.root .. "/" .. key) then failed[#failed + 1] = err end
	end
	if #failed > 0 then return nil, table.concat(failed, "; ") end
	return true
end

-- Writes a killed run left unfinished under prefix, begun before
-- `before`: temporary files.  -> { { key, mtime, size, what } ... } | nil, err
function Dir:leftovers(prefix, before)
	local all, err = self:list(prefix, { temp = true })
	if not all then return nil, err end
	local out = {}
	for _, e in ipairs(all) do
		if e.temp and (e.mtime or 0) < before then
			out[#out + 1] = { key = e.key, mtime = e.mtime, size = e.size, what = "a temporary file" }
		end
	end
	return out
end

-- Remove what leftovers found.  -> true | nil, err
function Dir:remove_leftovers(items)
	local keys = {}
	for i, it in ipairs(items) do keys[i] = it.key end
	return self:delete(keys)
end

function Dir:check()
	local ok, err = fs.mkdir(self.root)
	if not ok then return nil, err end
	ok, err = storage.probe(self)
	if not ok then return nil, err end
	return { reachable = true, writable = true }
end

function Dir:describe()
	return "dir " .. self.root
end

return M

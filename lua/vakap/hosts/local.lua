-- The host "local": this machine.  A host runs commands as streams and
-- moves directories in and out as tar streams; hosts/ssh.lua does the same
-- over SSH, behind the same methods.
local fs = require "vakap.fs"
local proc = require "vakap.proc"
local tar = require "vakap.tar"

local Local = {}
Local.__index = Local

function Local.open()
	return setmetatable({ name = "local" }, Local)
end

-- spawn(argv, {cwd, env}) -> stream of the command's stdout | nil, err
function Local:spawn(argv, opts)
	return proc.spawn(argv, opts)
end

-- feed(argv, stream, {cwd, env, progress}) -> bytes | nil, err
function Local:feed(argv, stream, opts)
	return proc.feed(argv, stream, opts)
end

-- tar(path, {exclude, follow_symlinks}) -> tar stream of the directory
function Local:tar(path, opts)
	local st, err = fs.stat(path)
	if not st then return nil, err end
	if st.type ~= "directory" then return nil, path .. " is not a directory" end
	return tar.create(path, opts)
end

-- extract(stream, path, {progress}) -> true | nil, err
function Local:extract(stream, path, opts)
	return tar.extract(stream, path, opts)
end

-- stat(path) -> { type, size, mtime } | nil, err
function Local:stat(path)
	return fs.stat(path)
end

local function executable(path)
	local st = fs.stat(path)
	return st and st.type == "file" and st.mode & 0x49 ~= 0 -- any x bit
end

-- Whether a command can be found here: true | nil, err
function Local:which(cmd)
	if cmd:find("/", 1, true) then
		if executable(cmd) then return true end
		return nil, cmd .. ": not an executable file"
	end
	for dir in (os.getenv("PATH") or "/usr/bin:/bin"):gmatch("[^:]+") do
		if executable(dir .. "/" .. cmd) then return true end
	end
	return nil, cmd .. ": command not found in PATH"
end

function Local:close()
end

return Local

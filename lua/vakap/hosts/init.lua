-- Opening the host a site lives on, from its `host` setting: "local" is
-- this machine; anything else is [user@]name[:port], reached over SSH.
local M = {}

-- settings: vakap.lua's (its `ssh` table is read for SSH hosts)
-- -> host object | nil, err
function M.open(spec, settings)
	if spec == "local" then
		return require("vakap.hosts.local").open()
	end
	return require("vakap.hosts.ssh").open(spec, settings)
end

-- Whether a host setting is well formed: true | nil, why
function M.check(spec)
	if spec == "local" then return true end
	local ok, err = require("vakap.hosts.sshconfig").parse_host(spec)
	if not ok then return nil, err end
	return true
end

return M

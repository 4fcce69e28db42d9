-- Opening the host a site lives on, from its `host` setting.
local M = {}

-- -> host object | nil, err
function M.open(spec)
	if spec == "local" then
		return require("vakap.hosts.local").open()
	end
	return nil, ("host '%s': SSH hosts are not supported by this version of vakap; use host = \"local\""):format(spec)
end

return M

-- AWS credentials and settings, found the way the AWS tools find them:
--
--   1. a profile named in vakap.lua (profile = "x"): that profile only;
--   2. else AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and
--      AWS_SESSION_TOKEN) from the environment;
--   3. else the profile $AWS_PROFILE, or "default", from the shared
--      credentials file (~/.aws/credentials, $AWS_SHARED_CREDENTIALS_FILE)
--      and then the config file (~/.aws/config, $AWS_CONFIG_FILE, where
--      it is [profile NAME], or [default]).
--
-- The region: vakap.lua's, else $AWS_REGION, $AWS_DEFAULT_REGION, the
-- profile's region, else us-east-1.  Secrets never go into a message.
local M = {}

-- Parse an AWS ini file: { [section] = { key = value, [key] = { sub = v } } }.
-- Indented lines under "key =" with no value are that key's subsettings
-- (s3 =\n  addressing_style = path).
function M.parse_ini(text)
	local sections, cur, nested = {}, nil, nil
	for line in (text .. "\n"):gmatch("([^\n]*)\n") do
		line = line:gsub("\r$", "")
		local indented = line:match("^%s+%S") ~= nil
		local trimmed = line:match("^%s*(.-)%s*$")
		if trimmed == "" or trimmed:match("^[#;]") then
			-- a comment or a blank line
		elseif trimmed:match("^%[.*%]$") then
			local name = trimmed:match("^%[%s*(.-)%s*%]$")
			cur = sections[name] or {}
			sections[name] = cur
			nested = nil
		elseif cur then
			local k, v = trimmed:match("^([^=]-)%s*=%s*(.*)$")
			if k then
				if indented and nested then
					nested[k] = v
				elseif v == "" then
					nested = {}
					cur[k] = nested
				else
					cur[k] = v
					nested = nil
				end
			end
		end
	end
	return sections
end

local read_file = require("vakap.util").read_file

local function home_file(env_name, rel, env)
	local p = env(env_name)
	if p and p ~= "" then return p end
	local home = env("HOME")
	if not home or home == "" then return nil end
	return home .. "/" .. rel
end

-- The profile's settings from both files: credentials first, then config.
local function profile_settings(name, env)
	local cred_path = home_file("AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials", env)
	local conf_path = home_file("AWS_CONFIG_FILE", ".aws/config", env)
	local cred = M.parse_ini(cred_path and read_file(cred_path) or "")
	local conf = M.parse_ini(conf_path and read_file(conf_path) or "")
	local from_conf = conf[name == "default" and "default" or "profile " .. name]
		or (name == "default" and conf["profile default"]) or nil
	local found = cred[name] ~= nil or from_conf ~= nil
	local s = {}
	for k, v in pairs(from_conf or {}) do s[k] = v end
	for k, v in pairs(cred[name] or {}) do s[k] = v end
	return s, found, cred_path, conf_path
end

-- decl: { profile, region, endpoint, path_style } from vakap.lua; env:
-- os.getenv or a stand-in.  -> { access_key, secret_key, session_token,
-- region, endpoint, path_style, source } | nil, message
function M.resolve(decl, env)
	env = env or os.getenv
	local function e(name)
		local v = env(name)
		if v == "" then return nil end
		return v
	end
	local out = { source = nil }
	local pname = decl.profile or e("AWS_PROFILE") or "default"
	local prof, found, cred_path, conf_path = profile_settings(pname, env)
	if decl.profile and not found then
		return nil, ("AWS profile '%s' is in neither %s nor %s"):format(pname, tostring(cred_path), tostring(conf_path))
	end
	if not decl.profile and e("AWS_ACCESS_KEY_ID") then
		if not e("AWS_SECRET_ACCESS_KEY") then
			return nil, "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not"
		end
		out.access_key, out.secret_key = e("AWS_ACCESS_KEY_ID"), e("AWS_SECRET_ACCESS_KEY")
		out.session_token = e("AWS_SESSION_TOKEN")
		out.source = "environment"
	elseif prof.aws_access_key_id then
		if not prof.aws_secret_access_key then
			return nil, ("AWS profile '%s' has aws_access_key_id but no aws_secret_access_key"):format(pname)
		end
		out.access_key, out.secret_key = prof.aws_access_key_id, prof.aws_secret_access_key
		out.session_token = prof.aws_session_token
		out.source = ("profile %s"):format(pname)
	else
		return nil, ("no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or put them in "
			.. "the profile '%s' of %s"):format(pname, tostring(cred_path))
	end
	out.region = decl.region or e("AWS_REGION") or e("AWS_DEFAULT_REGION") or prof.region or "us-east-1"
	out.endpoint = decl.endpoint or e("AWS_ENDPOINT_URL_S3") or e("AWS_ENDPOINT_URL")
		or (type(prof.s3) == "table" and prof.s3.endpoint_url) or prof.endpoint_url
	local style = type(prof.s3) == "table" and prof.s3.addressing_style or nil
	if decl.path_style ~= nil then
		out.path_style = decl.path_style
	elseif style == "path" or style == "virtual" then
		out.path_style = style == "path"
	end
	return out
end

return M

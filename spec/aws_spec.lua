-- aws.resolve: credentials and region found the way the AWS tools find
-- them, from a stand-in environment and throwaway ~/.aws files.
local aws = require "vakap.aws"
local tmpdir = require "tmpdir"

describe("aws", function()
	local home

	before_each(function()
		home = tmpdir.make()
		tmpdir.write(home, ".aws/credentials", [[
# keys
[default]
aws_access_key_id = AKIDDEFAULT
aws_secret_access_key = secret/default

[work]
aws_access_key_id=AKIDWORK
aws_secret_access_key=secretwork
aws_session_token = tokenwork
]])
		tmpdir.write(home, ".aws/config", [[
[default]
region = eu-west-3

[profile work]
region = eu-central-1
s3 =
  addressing_style = path
  endpoint_url = https://s3.work.example

[profile onlyconfig]
aws_access_key_id = AKIDCONF
aws_secret_access_key = secretconf
]])
	end)

	after_each(function()
		tmpdir.remove(home)
	end)

	local function env(vars)
		vars.HOME = vars.HOME or home
		return function(name) return vars[name] end
	end

	it("parses ini files with comments, spacing and nested settings", function()
		local t = aws.parse_ini("; c\n[a]\nx = 1\n  # c\ns3 =\n  y = 2\nz=3\n[ b ]\nw = a = b\n")
		assert.same({ a = { x = "1", s3 = { y = "2" }, z = "3" }, b = { w = "a = b" } }, t)
	end)

	it("takes the environment's keys first", function()
		local c = assert(aws.resolve({}, env { AWS_ACCESS_KEY_ID = "AKIDENV", AWS_SECRET_ACCESS_KEY = "s",
			AWS_SESSION_TOKEN = "t", AWS_REGION = "ap-south-1" }))
		assert.same({ "AKIDENV", "s", "t", "ap-south-1", "environment" },
			{ c.access_key, c.secret_key, c.session_token, c.region, c.source })
	end)

	it("falls back to the default profile, with its region from the config file", function()
		local c = assert(aws.resolve({}, env {}))
		assert.same({ "AKIDDEFAULT", "secret/default", "eu-west-3", "profile default" },
			{ c.access_key, c.secret_key, c.region, c.source })
		assert.is_nil(c.session_token)
	end)

	it("takes AWS_PROFILE, and the profile's s3 settings", function()
		local c = assert(aws.resolve({}, env { AWS_PROFILE = "work" }))
		assert.same({ "AKIDWORK", "tokenwork", "eu-central-1", "https://s3.work.example", true },
			{ c.access_key, c.session_token, c.region, c.endpoint, c.path_style })
	end)

	it("a profile named in vakap.lua wins over the environment's keys", function()
		local c = assert(aws.resolve({ profile = "work", region = "us-west-2" },
			env { AWS_ACCESS_KEY_ID = "AKIDENV", AWS_SECRET_ACCESS_KEY = "s" }))
		assert.same({ "AKIDWORK", "us-west-2" }, { c.access_key, c.region })
	end)

	it("reads keys from the config file too", function()
		local c = assert(aws.resolve({ profile = "onlyconfig" }, env {}))
		assert.same({ "AKIDCONF", "secretconf", "us-east-1" }, { c.access_key, c.secret_key, c.region })
	end)

	it("honours AWS_SHARED_CREDENTIALS_FILE and AWS_CONFIG_FILE", function()
		local other = tmpdir.write(home, "elsewhere", "[default]\naws_access_key_id = AKIDELSE\naws_secret_access_key = x\n")
		local c = assert(aws.resolve({}, env { AWS_SHARED_CREDENTIALS_FILE = other, AWS_CONFIG_FILE = "/nonexistent" }))
		assert.same({ "AKIDELSE", "us-east-1" }, { c.access_key, c.region })
	end)

	it("says what is missing, and never the secret", function()
		local _, err = aws.resolve({ profile = "nope" }, env {})
		assert.truthy(err:find("AWS profile 'nope' is in neither", 1, true), err)
		_, err = aws.resolve({}, env { AWS_ACCESS_KEY_ID = "AKIDENV" })
		assert.equal("AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not", err)
		_, err = aws.resolve({}, env { HOME = "/nonexistent" })
		assert.truthy(err:find("^no AWS credentials"), err)
		tmpdir.write(home, ".aws/credentials", "[default]\naws_access_key_id = AKIDHALF\n")
		_, err = aws.resolve({}, env {})
		assert.equal("AWS profile 'default' has aws_access_key_id but no aws_secret_access_key", err)
	end)
end)

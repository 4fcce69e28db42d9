-- Client-side encryption with GPG: the `gpg { ... }` setting, the check of
-- every key before any of a site's data is read, and the filter a backup
-- goes through on its way to storage.
--
-- Fail closed: a recipient that is missing, ambiguous, expired, revoked or
-- unable to encrypt, or a signing key that cannot sign here (no secret
-- key, no passphrase at hand), stops the site before its first component.
local gpg = require "vakap.gpg"
local stream = require "vakap.stream"
local util = require "vakap.util"

local M = {}

-- Warn about a key that stops working within this many seconds.
M.warn_within = 30 * 86400

M.spec = {
	recipients = { type = "list", required = true,
		check = function(v) return #v > 0, "name at least one key: recipients = { \"FINGERPRINT\" }" end },
	sign = { type = "string" },
	-- the keys whose signature restore and verify accept, beside sign's:
	-- full fingerprints, so that a host that only restores (without the
	-- signing key's secret) still requires them
	signers = { type = "list", check = function(v)
		for _, f in ipairs(v) do
			if not f:match("^%x+$") or #f ~= 40 then
				return false, ("'%s' is not a key's full fingerprint (40 hex digits)"):format(f)
			end
		end
		return true
	end },
	homedir = { type = "string" },
	passphrase_file = { type = "string" },
}

-- The encryption a site's backups get: its own `encrypt`, else the
-- settings'; nil when none (or `encrypt = false` on the site).
function M.for_site(site_config, settings)
	local enc = site_config.encrypt
	if enc == nil then enc = settings.encrypt end
	return enc or nil
end

local function describe_key(role, name, k)
	return ("gpg: %s '%s' (%s, %s)"):format(role, name, k.fingerprint, k.uid)
end

-- Look up every key enc names.  -> rows of { role, name, fingerprint,
-- uid, expires (nil: never), problem (nil when usable) }
function M.keys(enc)
	local rows = {}
	local function add(role, name, use)
		local k, err = gpg.key(name, { use = use, homedir = enc.homedir })
		if not k then
			rows[#rows + 1] = { role = role, name = name, problem = err }
			return
		end
		rows[#rows + 1] = {
			role = role, name = name, fingerprint = k.fingerprint, uid = k.uid,
			expires = k.expires ~= 0 and k.expires or nil,
			problem = k.problem and ("%s cannot be used: %s"):format(describe_key(role, name, k), k.problem),
		}
	end
	for _, name in ipairs(enc.recipients) do add("recipient", name, "encrypt") end
	if enc.sign then add("signing key", enc.sign, "sign") end
	return rows
end

-- A key that expires within warn_within of now: the warning, else nil.
function M.expiry_warning(row, now)
	if not row.expires or row.problem then return nil end
	local left = row.expires - now
	if left > M.warn_within then return nil end
	if left <= 0 then
		return ("%s expired on %s"):format(describe_key(row.role, row.name, row), os.date("!%Y-%m-%d", row.expires))
	end
	return ("%s expires %s, in %s: extend it or replace it"):format(
		describe_key(row.role, row.name, row), os.date("!%Y-%m-%d", row.expires),
		util.human_duration(math.max(left, 0)))
end

-- Before the sites' workers are forked: gpgme's first look at the
-- installed programs (five of them run) and at enc's keyring, made once
-- here and inherited, not made again in each worker.  A failure is the
-- sites' to report.
function M.warm(enc)
	gpg.engine({ homedir = enc.homedir })
end

-- The filter's options for a prepared encryption.
local function filter_opts(p, compress)
	return {
		recipients = p.recipients, sign = p.signer, homedir = p.homedir,
		passphrase_file = p.passphrase_file, compress = compress,
	}
end

-- Before any of a site's data is read: every key present and usable, and
-- the signing key able to sign (a few bytes are signed now, so a missing
-- or wrong passphrase stops the site here).  Raises naming the key.
-- -> { recipients = { fingerprint... }, signer = fingerprint | nil, ... }
function M.prepare(enc)
	local p = { recipients = {}, homedir = enc.homedir, passphrase_file = enc.passphrase_file }
	for _, row in ipairs(M.keys(enc)) do
		if row.problem then error(row.problem, 0) end
		if row.role == "recipient" then
			p.recipients[#p.recipients + 1] = row.fingerprint
		else
			p.signer = row.fingerprint
		end
	end
	if p.signer then
		local probe <close> = gpg.encrypt(stream.string("vakap"), filter_opts(p, false))
		local _, err = probe:readall()
		if err then error(err, 0) end
	end
	return p
end

-- The stream `up` encrypted (and signed) as prepared; gpg compresses only
-- what is not compressed already.
function M.encrypt(up, p, compressed)
	return gpg.encrypt(up, filter_opts(p, not compressed))
end

-- The signers whose good signature restore and verify require of every
-- backup and manifest: signers, and sign's key; none when neither is set
-- (then nothing is required).  -> { fingerprint... } | raises naming the
-- signing key when it cannot be found here
function M.trusted(enc)
	local out = {}
	if not enc then return out end
	for _, f in ipairs(enc.signers or {}) do out[#out + 1] = f:upper() end
	if enc.sign then
		local k, err = gpg.key(enc.sign, { use = "sign", homedir = enc.homedir })
		if not k then error(err, 0) end
		out[#out + 1] = k.fingerprint
	end
	return out
end

-- What a manifest records of it.
function M.manifest(p)
	return { type = "gpg", recipients = p.recipients, signer = p.signer or util.json.null }
end

return M

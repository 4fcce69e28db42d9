-- vakap.gpg and vakap.encryption against the real gpg, in a throwaway
-- GnuPG home made by tests/support/gpgkeys.sh: what vakap encrypts, gpg
-- decrypts; what gpg encrypts, vakap decrypts; signatures verify both ways;
-- and every key that cannot be used is refused before data is read.
local encryption = require "vakap.encryption"
local fs = require "vakap.fs"
local gpg = require "vakap.gpg"
local proc = require "vakap.proc"
local stream = require "vakap.stream"
local util = require "vakap.util"
local tmpdir = require "tmpdir"

local quote, sh, slurp = tmpdir.quote, tmpdir.sh, tmpdir.read

describe("gpg", function()
	local dir, home, keys, passfile

	-- plain gpg on the test keyring
	local function gpg_cmd(args)
		return ("gpg --homedir %s --batch --quiet --trust-model always %s"):format(quote(home), args)
	end

	-- drain s into a file; -> path | nil, err
	local n = 0
	local function store(s)
		n = n + 1
		local path = ("%s/out%d.gpg"):format(dir, n)
		local ok, err = fs.write(s, path)
		if not ok then return nil, err end
		return path
	end

	-- forget what gpg-agent cached (it would take the place of a wrong passphrase)
	local function forget()
		os.execute("gpgconf --homedir " .. quote(home) .. " --kill gpg-agent")
	end

	local function encrypt(data, opts)
		opts.homedir = opts.homedir or home
		return gpg.encrypt(stream.string(data), opts)
	end

	setup(function()
		dir = tmpdir.make()
		assert(os.execute("sh tests/support/gpgkeys.sh " .. quote(dir) .. " >/dev/null 2>&1"))
		home = dir .. "/gnupg"
		passfile = dir .. "/passphrase"
		keys = util.decode(slurp(dir .. "/keys.json"))
	end)

	teardown(function()
		os.execute("gpgconf --homedir " .. quote(home) .. " --kill all")
		tmpdir.remove(dir)
	end)

	describe("encrypt", function()
		for _, case in ipairs({ { "empty", "" }, { "small", "hello, world\n" },
			{ "several chunks", ("0123456789abcdef"):rep(100000) } }) do
			it("what it encrypts (" .. case[1] .. "), gpg --decrypt gives back", function()
				local s = encrypt(case[2], { recipients = { "alice@test.invalid" } })
				local path = assert(store(s))
				assert.same({ recipients = { keys.alice } }, { recipients = s:info().recipients })
				local out, ok = sh(gpg_cmd("--decrypt " .. quote(path)))
				assert.is_true(ok)
				assert.equal(#case[2], #out)
				assert.is_true(case[2] == out)
			end)
		end

		it("encrypts to several recipients, each able to decrypt", function()
			local s = encrypt("for two", { recipients = { keys.alice, "bob@test.invalid" } })
			local path = assert(store(s))
			assert.same({ keys.alice, keys.bob }, s:info().recipients)
			local listing = sh(gpg_cmd("--list-packets " .. quote(path) .. " 2>&1"))
			local alice_sub = sh(gpg_cmd("--with-colons -k " .. keys.alice)):match("\nsub:[^:]*:[^:]*:[^:]*:(%x+):")
			local bob_sub = sh(gpg_cmd("--with-colons -k " .. keys.bob)):match("\nsub:[^:]*:[^:]*:[^:]*:(%x+):")
			assert.truthy(listing:find("keyid " .. alice_sub, 1, true))
			assert.truthy(listing:find("keyid " .. bob_sub, 1, true))
		end)

		it("leaves out gpg's compression unless asked", function()
			local data = ("compressible "):rep(50000)
			local raw = assert(store(encrypt(data, { recipients = { keys.alice } })))
			local packed = assert(store(encrypt(data, { recipients = { keys.alice }, compress = true })))
			assert.is_true(fs.stat(raw).size > #data)
			assert.is_true(fs.stat(packed).size < #data // 10)
			assert.equal(data, (sh(gpg_cmd("--decrypt " .. quote(packed)))))
		end)

		it("signs with a key whose passphrase is in a file: gpg --verify accepts it", function()
			local s = encrypt("signed\n", { recipients = { keys.alice }, sign = keys.signer,
				passphrase_file = passfile })
			local path = assert(store(s))
			assert.equal(keys.signer, s:info().signer)
			local status, ok = sh(gpg_cmd("--decrypt --unwrap " .. quote(path)) .. " | "
				.. gpg_cmd("--status-fd 1 --verify 2>/dev/null"))
			assert.is_true(ok)
			assert.truthy(status:find("VALIDSIG " .. keys.signer, 1, true))
		end)

		it("takes the passphrase file's first line, whatever its line end", function()
			local crlf = tmpdir.write(dir, "passphrase-crlf", slurp(passfile):gsub("\n", "\r\n"))
			forget()
			local s = encrypt("signed\n", { recipients = { keys.alice }, sign = keys.signer,
				passphrase_file = crlf })
			assert(store(s))
			assert.equal(keys.signer, s:info().signer)
		end)

		it("a wrong passphrase fails, naming the file", function()
			local bad = tmpdir.write(dir, "bad-passphrase", "not it\n")
			forget()
			local _, err = store(encrypt("x", { recipients = { keys.alice }, sign = keys.signer,
				passphrase_file = bad }))
			assert.equal(("gpg: signing key %s: the passphrase in %s is wrong"):format(keys.signer, bad), err)
		end)

		it("without a passphrase file it takes the agent's cached one, and never prompts", function()
			forget()
			local _, err = store(encrypt("x", { recipients = { keys.alice }, sign = keys.signer }))
			assert.equal(("gpg: signing key %s needs a passphrase and gpg-agent has none cached: "
				.. "preset it in the agent or name a passphrase_file"):format(keys.signer), err)
			-- once the agent has it (here from a signature made with it), vakap signs
			assert(store(encrypt("x", { recipients = { keys.alice }, sign = keys.signer,
				passphrase_file = passfile })))
			local s = encrypt("cached", { recipients = { keys.alice }, sign = keys.signer })
			assert(store(s))
			assert.equal(keys.signer, s:info().signer)
		end)

		local refused = {
			{ "a missing key", "nobody@test.invalid",
				"gpg: recipient 'nobody@test.invalid': no public key found in the keyring" },
			{ "an expired key", "expired@test.invalid", "cannot be used: expired" },
			{ "a revoked key", "revoked@test.invalid", "cannot be used: revoked" },
			{ "an ambiguous name", "test.invalid", "matches 7 keys" },
		}
		for _, case in ipairs(refused) do
			it("refuses " .. case[1] .. " before reading anything", function()
				local up = stream.string("secret data")
				local s = gpg.encrypt(up, { recipients = { keys.alice, case[2] }, homedir = home })
				local data, err = s:readall()
				assert.is_nil(data)
				assert.truthy(err:find(case[3], 1, true), err)
				assert.truthy(err:find(case[2], 1, true), err)
				assert.equal(0, up:info().bytes)
			end)
		end

		it("refuses to sign with a key whose secret is not here", function()
			local s = encrypt("x", { recipients = { keys.alice }, sign = keys.carol })
			local _, err = s:readall()
			assert.equal(("gpg: signing key '%s': no secret key found in the keyring"):format(keys.carol), err)
		end)

		it("passes on the upstream's failure, not a clean end", function()
			local up = proc.spawn({ "sh", "-c", "head -c 300000 /dev/zero; echo 'dump broke' >&2; exit 4" })
			local _, err = store(gpg.encrypt(up, { recipients = { keys.alice }, homedir = home }))
			assert.equal("sh exited with status 4: dump broke", err)
		end)

		it("can be closed half read", function()
			local up = proc.spawn({ "head", "-c", "20000000", "/dev/zero" })
			local s = gpg.encrypt(up, { recipients = { keys.alice }, homedir = home })
			local got = 0
			while got < 100000 do got = got + #s:read(65536) end
			s:close()
			assert.equal("closed", s:info().state)
			assert.equal("closed", up:info().state)
		end)
	end)

	describe("decrypt", function()
		local function decrypt_file(path, opts)
			opts = opts or {}
			opts.homedir = opts.homedir or home
			local s = gpg.decrypt(fs.source(path), opts)
			local data, err = s:readall(1 << 26)
			return data, err, s:info()
		end

		it("reads what plain gpg --encrypt made (compressed or not, armored or not)", function()
			local plain = tmpdir.write(dir, "plain.txt", ("some text\n"):rep(5000))
			for _, args in ipairs({ "--compress-algo none", "", "--armor" }) do
				local out = dir .. "/byhand.gpg"
				os.remove(out)
				assert(os.execute(gpg_cmd(("-r %s %s -o %s --encrypt %s"):format(keys.bob, args, quote(out), quote(plain)))))
				local data, err, info = decrypt_file(out)
				assert.is_nil(err)
				assert.equal(slurp(plain), data)
				assert.same({}, info.signatures)
				assert.equal(1, #info.encrypted_to)
			end
		end)

		it("reports a signature gpg made, and who made it", function()
			local plain = tmpdir.write(dir, "signed.txt", "signed by hand\n")
			local out = dir .. "/signed.gpg"
			assert(os.execute(gpg_cmd(("--pinentry-mode loopback --passphrase-file %s -u %s -r %s -o %s --sign --encrypt %s")
				:format(quote(passfile), keys.signer, keys.alice, quote(out), quote(plain)))))
			local data, err, info = decrypt_file(out)
			assert.is_nil(err)
			assert.equal("signed by hand\n", data)
			assert.same({ { fingerprint = keys.signer, status = "good", good = true } }, info.signatures)
		end)

		it("round-trips what vakap encrypted and signed", function()
			local data = ("x"):rep(1000000)
			local path = assert(store(encrypt(data, { recipients = { keys.alice }, sign = keys.signer,
				passphrase_file = passfile })))
			local got, err, info = decrypt_file(path)
			assert.is_nil(err)
			assert.is_true(got == data)
			assert.same({ { fingerprint = keys.signer, status = "good", good = true } }, info.signatures)
		end)

		it("with signer, needs a good signature by that key", function()
			local path = assert(store(encrypt("signed", { recipients = { keys.alice }, sign = keys.signer,
				passphrase_file = passfile })))
			local got, err = decrypt_file(path, { signer = keys.signer })
			assert.same({ "signed", nil }, { got, err })
			got, err = decrypt_file(path, { signer = keys.bob })
			assert.is_nil(got)
			assert.equal(("gpg: no good signature by a trusted signer (%s): it is signed by %s (good), who is not one")
				:format(keys.bob, keys.signer), err)
			path = assert(store(encrypt("unsigned", { recipients = { keys.alice } })))
			got, err = decrypt_file(path, { signer = keys.signer })
			assert.is_nil(got)
			assert.equal(("gpg: no good signature by a trusted signer (%s): it is not signed"):format(keys.signer), err)
		end)

		it("with signers, needs a good signature by one of those keys", function()
			local path = assert(store(encrypt("signed", { recipients = { keys.alice }, sign = keys.signer,
				passphrase_file = passfile })))
			local got, err = decrypt_file(path, { signers = { keys.bob, keys.signer } })
			assert.same({ "signed", nil }, { got, err })
			got, err = decrypt_file(path, { signers = { keys.bob, keys.alice } })
			assert.is_nil(got)
			assert.truthy(err:find("it is signed by " .. keys.signer, 1, true), err)
		end)

		it("without the secret key: a clear error naming the key it was for", function()
			local path = assert(store(encrypt("for carol", { recipients = { keys.carol } })))
			local data, err = decrypt_file(path)
			assert.is_nil(data)
			assert.truthy(err:find("gpg: cannot decrypt: no secret key here for the keys it was encrypted to (", 1, true), err)
			local sub = sh(gpg_cmd("--with-colons -k " .. keys.carol)):match("\nsub:[^:]*:[^:]*:[^:]*:(%x+):")
			assert.truthy(err:find(sub, 1, true), err)
		end)

		it("a changed byte is an error, not different plaintext", function()
			local data = ("y"):rep(200000)
			local path = assert(store(encrypt(data, { recipients = { keys.alice } })))
			local bytes = slurp(path)
			local at = #bytes // 2
			tmpdir.write(dir, "tampered.gpg", bytes:sub(1, at - 1) .. string.char((bytes:byte(at) + 1) % 256) .. bytes:sub(at + 1))
			local got, err = decrypt_file(dir .. "/tampered.gpg")
			assert.is_nil(got)
			assert.truthy(err:find("gpg: cannot decrypt: the data is damaged or was tampered with", 1, true), err)
		end)

		it("data that is not OpenPGP is a clear error", function()
			local got, err = decrypt_file(tmpdir.write(dir, "not-gpg", "just text\n"))
			assert.is_nil(got)
			assert.equal("gpg: cannot decrypt: no OpenPGP encrypted data found", err)
		end)
	end)

	describe("key", function()
		it("describes a usable key with its expiry", function()
			local k = assert(gpg.key("soon@test.invalid", { homedir = home }))
			assert.equal(keys.soon, k.fingerprint)
			assert.equal("Soon <soon@test.invalid>", k.uid)
			assert.is_true(k.usable)
			local days = (k.expires - os.time()) / 86400
			assert.is_true(days > 9 and days <= 10, tostring(days))
			assert.equal(0, gpg.key(keys.alice, { homedir = home }).expires)
		end)

		it("looks in the keyring it is given, from one call to the next", function()
			local empty = dir .. "/empty-home"
			assert(os.execute("mkdir -m 700 " .. quote(empty)))
			local e = assert(gpg.engine({ homedir = home }))
			assert.truthy(e.program:find("gpg", 1, true))
			assert.truthy(e.version:match("^%d+%.%d+"))
			assert.equal(home, e.homedir)
			-- each lookup in its own keyring, whatever the one before used
			assert.is_true(gpg.key(keys.alice, { homedir = home }).usable)
			local none, err = gpg.key(keys.alice, { homedir = empty })
			assert.is_nil(none)
			assert.truthy(err:find("no public key found", 1, true), err)
			assert.is_true(gpg.key(keys.alice, { homedir = home }).usable)
			local s = gpg.encrypt(stream.string("x"), { recipients = { keys.alice }, homedir = empty })
			assert.truthy(select(2, s:readall()):find("no public key found", 1, true))
			assert(store(encrypt("y", { recipients = { keys.alice } })))
			assert.equal(empty, assert(gpg.engine({ homedir = empty })).homedir)
		end)

		it("says why a key cannot be used", function()
			local k = assert(gpg.key(keys.expired, { homedir = home }))
			assert.same({ false, "expired" }, { k.usable, k.problem })
			k = assert(gpg.key(keys.carol, { homedir = home, use = "sign" }) == nil)
			k = assert(gpg.key(keys.signer, { homedir = home, use = "encrypt" }))
			assert.same({ false, "has no subkey usable for encryption (expired, revoked or missing)" },
				{ k.usable, k.problem })
		end)
	end)

	describe("encryption", function()
		it("prepare resolves every key to its fingerprint", function()
			local p = encryption.prepare({ recipients = { "alice@test.invalid", keys.bob }, sign = "signer@test.invalid",
				homedir = home, passphrase_file = passfile })
			assert.same({ keys.alice, keys.bob }, p.recipients)
			assert.equal(keys.signer, p.signer)
			assert.same({ type = "gpg", recipients = { keys.alice, keys.bob }, signer = keys.signer },
				encryption.manifest(p))
		end)

		it("prepare raises, naming the key, for one bad recipient among good ones", function()
			local ok, err = pcall(encryption.prepare, { recipients = { keys.alice, keys.revoked }, homedir = home })
			assert.is_false(ok)
			assert.equal(("gpg: recipient '%s' (%s, Revoked <revoked@test.invalid>) cannot be used: revoked")
				:format(keys.revoked, keys.revoked), err)
		end)

		it("prepare tries the signing key, so a missing passphrase stops it before any data", function()
			forget()
			local ok, err = pcall(encryption.prepare, { recipients = { keys.alice }, sign = keys.signer, homedir = home,
				passphrase_file = tmpdir.write(dir, "wrong", "wrong\n") })
			assert.is_false(ok)
			assert.truthy(err:find("the passphrase in", 1, true), err)
		end)

		it("warns of a key that expires within 30 days, and only then", function()
			local rows = encryption.keys({ recipients = { keys.soon, keys.alice }, homedir = home })
			local now = os.time()
			assert.truthy(encryption.expiry_warning(rows[1], now):find("expires .* in 9d") or
				encryption.expiry_warning(rows[1], now):find("expires .* in 10d"))
			assert.is_nil(encryption.expiry_warning(rows[1], now - 30 * 86400))
			assert.is_nil(encryption.expiry_warning(rows[2], now))
			assert.truthy(encryption.expiry_warning(rows[1], now + 20 * 86400):find("expired on", 1, true))
		end)
	end)
end)

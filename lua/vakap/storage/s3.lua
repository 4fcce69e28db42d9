-- Storage in S3 or an S3-compatible service:
--   storage = s3 { bucket = "b", prefix = "vakap", region =, endpoint =,
--                  profile =, path_style = }
-- Objects are private; uploads are multipart with a checksum on every
-- part, retried, and aborted when they fail, so an object exists complete
-- or not at all.  Nothing is ever overwritten except the records of op
-- runs (put_string with replace).
local aws = require "vakap.aws"
local s3 = require "vakap.s3"
local storage = require "vakap.storage"
local util = require "vakap.util"

local S3 = {}
S3.__index = S3

local M = {}

-- "a/b/" from "a/b", "/a/b/" or "a/b/"; "" stays "".
local function normal_prefix(p)
	p = (p or ""):gsub("^/+", ""):gsub("/+$", "")
	return p == "" and "" or p .. "/"
end

-- decl: what vakap.lua declared.  -> backend | nil, err
function M.open(decl, env)
	local cred, err = aws.resolve(decl, env)
	if not cred then return nil, "s3 storage: " .. err end
	local opts = {
		bucket = decl.bucket, region = cred.region, endpoint = cred.endpoint, path_style = cred.path_style,
		access_key = cred.access_key, secret_key = cred.secret_key, session_token = cred.session_token,
		retries = decl.retries, retry_base_ms = decl.retry_base_ms, stall_timeout = decl.stall_timeout,
	}
	return setmetatable({
		kind = "s3", bucket = decl.bucket, prefix = normal_prefix(decl.prefix),
		endpoint = cred.endpoint, region = cred.region, credentials = cred.source, opts = opts,
	}, S3)
end

-- The client, made at first use.  Sites run in forked workers: a client
-- used in a worker makes connections of its own there (engine/s3/http.c),
-- it never shares the parent's.
function S3:c()
	if not self._client then self._client = s3.client(self.opts) end
	return self._client
end

function S3:key(key)
	storage.check_key(key)
	return self.prefix .. key
end

-- put(key, stream, { progress, size_hint })
function S3:put(key, s, opts)
	opts = opts or {}
	local res, err = self:c():put(self:key(key), s, {
		progress = opts.progress, size_hint = opts.size_hint, if_none_match = true,
	})
	if not res then return nil, err end
	return { size = res.size, parts = res.parts }
end

function S3:put_string(key, data, opts)
	local res, err = self:c():put_string(self:key(key), data, {
		if_none_match = not (opts and opts.replace), content_type = "application/json",
	})
	if not res then return nil, err end
	return true
end

function S3:get(key)
	return self:c():get(self:key(key))
end

function S3:get_string(key)
	return storage.read_string(self, key)
end

-- "2026-11-21T23:47:26.000Z" -> seconds since the epoch
local function mtime_of(lm)
	if not lm then return nil end
	return util.parse_time((lm:gsub("%.%d+Z$", "Z")))
end

function S3:list(prefix)
	local objects, err = self:c():list(self.prefix .. prefix)
	if not objects then return nil, err end
	local out, n = {}, #self.prefix
	for _, o in ipairs(objects) do
		local key = o.key:sub(n + 1)
		-- a key vakap could not have written (../, //) is not acted on
		if o.key:sub(1, n) == self.prefix and storage.safe_key(key) then
			out[#out + 1] = { key = key, size = o.size, mtime = mtime_of(o.last_modified) }
		end
	end
	return out
end

function S3:delete(keys)
	local full = {}
	for i, k in ipairs(keys) do full[i] = self:key(k) end
	local res, err = self:c():delete(full)
	if not res then return nil, err end
	if #res.errors > 0 then
		local msgs = {}
		for i, e in ipairs(res.errors) do
			if i > 5 then
				msgs[#msgs + 1] = ("and %d more"):format(#res.errors - 5)
				break
			end
			msgs[#msgs + 1] = ("%s: %s %s"):format(e.key, e.code or "", e.message or "")
		end
		return nil, "s3: could not delete " .. table.concat(msgs, "; ")
	end
	return true
end

-- Incomplete multipart uploads under the prefix started before `before`.
function S3:stale_uploads(before)
	local ups, err = self:c():uploads(self.prefix)
	if not ups then return nil, err end
	local out = {}
	for _, u in ipairs(ups) do
		local t = mtime_of(u.initiated)
		if t and t < before then out[#out + 1] = { key = u.key, upload_id = u.upload_id, initiated = u.initiated } end
	end
	return out
end

-- Writes a killed run left unfinished under prefix, begun before
-- `before`: incomplete multipart uploads.  -> { { key, mtime, upload_id,
-- what } ... } | nil, err
function S3:leftovers(prefix, before)
	local ups, err = self:c():uploads(self.prefix .. prefix)
	if not ups then return nil, "listing multipart uploads: " .. err end
	local out = {}
	for _, u in ipairs(ups) do
		local t = mtime_of(u.initiated)
		local key = u.key:sub(#self.prefix + 1)
		if t and t < before and storage.safe_key(key) then
			out[#out + 1] = { key = key, mtime = t, upload_id = u.upload_id, what = "an incomplete upload" }
		end
	end
	return out
end

-- Remove what leftovers found.  -> true | nil, err
function S3:remove_leftovers(items)
	for _, it in ipairs(items) do
		local ok, err = self:c():abort(self:key(it.key), it.upload_id)
		if not ok then return nil, ("aborting the upload of %s: %s"):format(it.key, err) end
	end
	return true
end

-- Reachable (a listing), writable (a probe written, read back, deleted),
-- and incomplete uploads older than a day, aborted when opts.abort_uploads.
function S3:check(opts)
	local listed, err = self:c():list(self.prefix .. ".vakap-check", { max_keys = 1 })
	if not listed then return nil, "not reachable: " .. err end
	local ok
	ok, err = storage.probe(self)
	if not ok then return nil, err end
	local res = { reachable = true, writable = true, stale_uploads = {} }
	local ups, uerr = self:stale_uploads(util.now() - 86400)
	if not ups then return nil, "listing multipart uploads: " .. uerr end
	for _, u in ipairs(ups) do
		if opts and opts.abort_uploads then
			local aok, aerr = self:c():abort(u.key, u.upload_id)
			u.aborted, u.error = aok or false, aerr
		end
		res.stale_uploads[#res.stale_uploads + 1] = u
	end
	return res
end

-- A time-limited link to download key: its URL | nil, err
function S3:presign(key, expires, time)
	return self:c():presign("GET", self:key(key), expires, time)
end

function S3:stats()
	return self:c():stats()
end

function S3:describe()
	local where = ("s3://%s/%s"):format(self.bucket, self.prefix)
	if self.endpoint then where = where .. " at " .. self.endpoint end
	return "s3 " .. where
end

return M

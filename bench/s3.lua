-- bench/s3.sh's vakap side, run by lua5.4 with build/vakap.so:
--   lua5.4 bench/s3.lua put|get ENDPOINT BUCKET KEY FILE
-- put: FILE as a stream into KEY; get: KEY as a stream into FILE.
-- Prints the client's request counts as JSON on stderr.
local root = arg[0]:match("^(.*)/bench/[^/]*$") or "."
package.cpath = root .. "/build/?.so;" .. package.cpath
local fs = require "vakap.fs"
local s3 = require "vakap.s3"

local what, endpoint, bucket, key, file = table.unpack(arg)
local c <close> = s3.client({ bucket = bucket, endpoint = endpoint, access_key = "bench",
	secret_key = "bench" })
if what == "put" then
	assert(c:put(key, assert(fs.source(file))))
else
	assert(fs.write(assert(c:get(key)), file))
end
local st = c:stats()
io.stderr:write(("{\"requests\": %d, \"retries\": %d}\n"):format(st.requests, st.retries))

-- Sites on other machines, reached over SSH, backed up into S3 and
-- encrypted on this machine before a byte leaves it.
--
-- S3 credentials are found as the AWS tools find them: AWS_ACCESS_KEY_ID
-- and AWS_SECRET_ACCESS_KEY, or a profile of ~/.aws/credentials
-- (profile = "backups").  Another S3-compatible service: endpoint =
-- "https://...", or AWS_ENDPOINT_URL.  The bucket must exist.
storage = s3 { bucket = "acme-backups", prefix = "vakap", region = "eu-west-3" }

-- Only the public key is needed here: keep the secret key off this
-- machine, where restores are run from instead.
encrypt = gpg { recipients = { "backups@acme.example" } }

compress = "zstd"
retention = { last = 3, daily = 7, weekly = 4, monthly = 12 }   -- vakap rotate
stale_after = "26h"                                              -- vakap status
jobs = 4                                                         -- sites at once

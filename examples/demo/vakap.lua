-- The demo: two sites on this machine, backed up into ./backups.
-- `make demo` creates their data (see run.sh) and runs a backup.
storage = dir "backups"      -- the embedded default: a local directory
compress = "zstd"
stale_after = "26h"
jobs = 2

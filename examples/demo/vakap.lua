-- The demo: two sites on this machine, backed up into ./backups.
-- `make demo` creates their data (see run.sh) and runs a backup.
storage = dir "backups"      -- the embedded default: a local directory
compress = "zstd"
-- every backup encrypted to the demo's throwaway key (run.sh creates it)
encrypt = gpg { recipients = { "demo@vakap.invalid" }, homedir = "gnupg" }
stale_after = "26h"
jobs = 2

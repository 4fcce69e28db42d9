-- An operation of your own: ops.d/cache-clear.lua, run with
--   vakap run cache-clear [FILTER]     (-n to see what it would do)
storage = dir "backups"

-- A component of your own: components.d/sqlite.lua, used by the site in
-- sites.d/notes.lua.  Backups go to ./backups, unencrypted.
storage = dir "backups"

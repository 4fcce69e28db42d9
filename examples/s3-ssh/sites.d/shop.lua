-- A WordPress shop on web1.  The user, port and key of the host come from
-- ~/.ssh/config, as for ssh itself ("Host web1.acme.example"); its key
-- must be in ~/.ssh/known_hosts: `vakap hostkeys --accept-new shop`
-- records it once, and a changed key stops the site.
site "shop" {
  host = "web1.acme.example",
  root = "/var/www/shop",
  tags = { "wordpress", "prod" },

  -- the uploads, as a tar; caches and logs left out
  files { name = "uploads", path = "/var/www/shop/wp-content/uploads", exclude = { "cache/", "*.log" } },

  -- the database, with the credentials in an option file on web1 (mode
  -- 600) rather than on any command line:
  --   [client]
  --   user = backup
  --   password = ...
  mysql { database = "shop", defaults_file = "/etc/vakap/shop.cnf" },
}

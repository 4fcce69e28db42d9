-- An example of a sites.d/ file: copy it beside your vakap.lua (into its
-- sites.d/, or wherever `sites = "..."` in vakap.lua points) and edit.
-- `make demo` does not read this folder; its own sites are in
-- examples/demo/.  See README.md, "What you write", for every option.
--
-- A file may declare one site or many; each is checked before anything
-- runs, and an error names this file and its line.  Files are
-- declarations: no io, no require, no globals (use `local`).

site "acme" {
  -- where the site lives: "local" (this machine), or a host reached over
  -- SSH: "deploy@web1.acme.example", "web1" (an alias of ~/.ssh/config),
  -- "[2001:db8::1]:2222"
  host = "deploy@web1.acme.example",

  -- optional: the site's directory (ops use it as site.root), tags to
  -- select sites by (`vakap backup tag:drupal`), and values of your own
  -- for your ops (site.vars)
  root = "/var/www/acme",
  tags = { "drupal", "prod" },
  vars = { cache = "web/sites/default/files/css" },

  -- what to back up: each component has a name, unique in the site, its
  -- type by default; it is the folder its backups are stored under
  files { name = "uploads", path = "/var/www/acme/web/sites/default/files",
          exclude = { "css/", "js/", "*.log" } },
  mysql { database = "acme", defaults_file = "/etc/vakap/acme.cnf" },
  -- postgres { database = "acme_reports", as_user = "postgres" },
  -- command { name = "solr", run = { "solr-export", "--core", "acme" }, ext = "json" },

  -- optional: keep more (or fewer) backups of this site than vakap.lua says
  retention = { daily = 14, weekly = 8, monthly = 12 },
}

-- Many sites of one shape: a loop, with locals
local wordpress = { "blog-one", "blog-two" }
for _, name in ipairs(wordpress) do
  site(name) {
    host = "deploy@web2.acme.example",
    root = "/var/www/" .. name,
    tags = { "wordpress" },
    files { name = "uploads", path = "/var/www/" .. name .. "/wp-content/uploads" },
    mysql { database = name:gsub("-", "_") },
  }
end

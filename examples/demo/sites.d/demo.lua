-- run.sh sets VAKAP_DEMO to this directory; real sites name real paths.
local demo = os.getenv("VAKAP_DEMO") or "/srv/vakap-demo"

site "shop" {
  host = "local",
  root = demo .. "/data/shop",
  tags = { "demo", "sqlite" },
  files { name = "uploads", path = demo .. "/data/shop/uploads", exclude = { "*.log", "cache/" } },
  command { name = "db", run = { "sqlite3", demo .. "/data/shop/shop.db", ".dump" }, ext = "sql",
            restore = { "sqlite3", demo .. "/data/shop/restored.db" } },
}

site "blog" {
  host = "local",
  root = demo .. "/data/blog",
  tags = { "demo" },
  files { path = demo .. "/data/blog" },
}

site "blog" {
  host = "local",
  root = "/srv/blog",
  vars = { cache = "var/cache" },
}

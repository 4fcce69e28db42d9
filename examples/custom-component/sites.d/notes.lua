site "notes" {
  host = "local",
  sqlite { name = "db", path = "/srv/notes/notes.db" },
}

-- vakap run revision [FILTER]: the git revision deployed on each site.
op "revision" {
  description = "Report the git revision deployed in each site's root",
  run = function(site)
    if not site.root then error("site has no root = \"...\"", 0) end
    return {
      revision = site:capture("git", "-C", site.root, "rev-parse", "HEAD"),
      branch = site:capture("git", "-C", site.root, "rev-parse", "--abbrev-ref", "HEAD"),
      dirty = site:capture("git", "-C", site.root, "status", "--porcelain") ~= "",
    }
  end,
}

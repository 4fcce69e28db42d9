-- vakap run disk-usage [FILTER]: how much disk each site's root takes.
op "disk-usage" {
  description = "Report the disk space used by each site's root directory",
  run = function(site)
    if not site.root then error("site has no root = \"...\" to measure", 0) end
    local out = site:capture("du", "-sk", site.root)
    local kib = tonumber(out:match("^(%d+)"))
    return { root = site.root, bytes = kib * 1024, human = vakap.human_size(kib * 1024) }
  end,
}

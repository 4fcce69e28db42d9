-- vakap run cache-clear [FILTER]: empty each site's cache directory,
-- vars.cache (relative to root), and say how many files went.  With -n,
-- only how many would.  A site without a root, or whose cache is not a
-- directory, fails alone; the run goes on with the others.
local function cache_dir(site)
  if not site.root then error("the site has no root = \"...\"", 0) end
  local dir = site.root .. "/" .. ((site.vars or {}).cache or "cache")
  local st = site:stat(dir)
  if not st or st.type ~= "directory" then error(dir .. " is not a directory", 0) end
  return dir
end

local function count(site, dir)
  local out = site:capture("find", dir, "-mindepth", "1", "-type", "f")
  local n = 0
  for _ in out:gmatch("[^\n]+") do n = n + 1 end
  return n
end

op "cache-clear" {
  description = "Empty each site's cache directory",
  lock = true,   -- not while a backup of the same site runs

  run = function(site)
    local dir = cache_dir(site)
    local n = count(site, dir)
    site:exec("find", dir, "-mindepth", "1", "-delete")
    return { cache = dir, removed = n }
  end,

  plan = function(site)
    local dir = cache_dir(site)
    return { cache = dir, would_remove = count(site, dir) }
  end,
}

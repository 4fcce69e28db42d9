-- Test only (copied into a test's ops.d/; vakap has no restore command
-- yet): restore the newest backup of a component, or of one of its parts,
-- through the component's own restore.  What to restore comes from the
-- environment: RESTORE_COMPONENT, and optionally RESTORE_PART and
-- RESTORE_TARGET (the database to restore into).
op "restore-latest" {
  description = "Restore the newest backup of $RESTORE_COMPONENT [$RESTORE_PART] (test only)",
  record = false,
  run = function(site, ctx)
    local name = os.getenv("RESTORE_COMPONENT")
    local part, target = os.getenv("RESTORE_PART"), os.getenv("RESTORE_TARGET")
    local c = name and site:component(name)
    if not c then return nil, "RESTORE_COMPONENT does not name a component of the site" end
    local folder = site.name .. "/" .. name .. "/" .. (part and part .. "/" or "")
    local newest
    for _, e in ipairs(assert(ctx.storage:list(folder))) do
      if e.key:sub(#folder + 1):match("^%d+T%d+Z%.json$") and (not newest or e.key > newest) then
        newest = e.key
      end
    end
    if not newest then return nil, "no backup in " .. folder end
    local m = vakap.json.decode(assert(ctx.storage:get_string(newest)))
    local s = assert(ctx.storage:get(m.object))
    if m.compression == "zstd" then s = vakap.compress.unzstd(s) end
    local ok, err = c.def.restore(c, site, s, { target = target, part = m.part, manifest = m })
    s:close()
    if not ok then return nil, err end
    return { restored = m.object }
  end,
}

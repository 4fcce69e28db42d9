-- catalog: the storage layout, and a site's listing read back into backups.
local catalog = require "vakap.catalog"
local util = require "vakap.util"

describe("catalog", function()
	describe("keys", function()
		it("names data, manifests and op records", function()
			assert.equal("acme/db/20261121T220000Z.sql.zst", catalog.data_key("acme", "db", "20261121T220000Z", "sql.zst"))
			assert.equal("acme/db/20261121T220000Z.json", catalog.manifest_key("acme", "db", "20261121T220000Z"))
			assert.equal("acme/_ops/backup.json", catalog.op_key("acme", "backup"))
		end)

		it("puts a part of a component in a folder of its own", function()
			assert.equal("acme/mysql/shop/20261121T220000Z.sql.zst",
				catalog.data_key("acme", "mysql", "20261121T220000Z", "sql.zst", "shop"))
			assert.equal("acme/mysql/shop/20261121T220000Z.json",
				catalog.manifest_key("acme", "mysql", "20261121T220000Z", "shop"))
			assert.equal("acme/mysql/shop", catalog.folder("acme", "mysql", "shop"))
			assert.equal("acme/mysql", catalog.folder("acme", "mysql"))
		end)
	end)

	describe("part names", function()
		it("keeps letters, digits, '_', '-' and inner dots", function()
			assert.equal("Shop_2-v1.0", catalog.part_segment("Shop_2-v1.0"))
		end)

		it("escapes every other byte, so a name is always one safe segment", function()
			assert.equal("a%2Fb%20c%25d", catalog.part_segment("a/b c%d"))
			assert.equal("caf%C3%A9", catalog.part_segment("café"))
			assert.equal("%2E", catalog.part_segment("."))
			assert.equal("%2E.", catalog.part_segment(".."))
			assert.equal("%2Etmp-x", catalog.part_segment(".tmp-x"))
		end)

		it("reads a segment back into the name", function()
			for _, name in ipairs { "shop", "a/b c%d", "café", "..", ".tmp-x", "%41" } do
				assert.equal(name, catalog.part_name(catalog.part_segment(name)))
			end
		end)
	end)

	describe("scan", function()
		local function e(key, size) return { key = key, size = size or 1 } end

		it("makes a backup of each manifest, with its data", function()
			local data = e("acme/files/20261121T220000Z.tar.zst", 100)
			local manifest = e("acme/files/20261121T220000Z.json", 5)
			local cat = catalog.scan("acme", { data, manifest })
			assert.same({
				components = {
					files = {
						backups = { {
							stamp = "20261121T220000Z",
							time = util.parse_time("20261121T220000Z"),
							manifest = manifest,
							data = data,
						} },
						orphans = {},
						parts = {},
					},
				},
				ops = {},
			}, cat)
			assert.equal(data, cat.components.files.backups[1].data)
		end)

		it("counts a manifest without data as a backup", function()
			local manifest = e("acme/db/20261121T220000Z.json")
			local cat = catalog.scan("acme", { manifest })
			assert.equal(1, #cat.components.db.backups)
			assert.is_nil(cat.components.db.backups[1].data)
			assert.equal(manifest, cat.components.db.backups[1].manifest)
		end)

		it("makes data without a manifest an orphan, not a backup", function()
			local orphan = e("acme/db/20261120T220000Z.sql.zst")
			local cat = catalog.scan("acme", {
				orphan,
				e("acme/db/20261121T220000Z.sql.zst"), e("acme/db/20261121T220000Z.json"),
			})
			assert.same({ "20261121T220000Z" }, { cat.components.db.backups[1].stamp, cat.components.db.backups[2] })
			assert.same({ orphan }, cat.components.db.orphans)
		end)

		it("lists backups newest first", function()
			local entries = {}
			for _, stamp in ipairs { "20261120T220000Z", "20261122T010000Z", "20251231T235959Z", "20261121T220000Z" } do
				entries[#entries + 1] = e(("acme/db/%s.json"):format(stamp))
				entries[#entries + 1] = e(("acme/db/%s.sql.gz"):format(stamp))
			end
			local stamps = {}
			for i, b in ipairs(catalog.scan("acme", entries).components.db.backups) do stamps[i] = b.stamp end
			assert.same({ "20261122T010000Z", "20261121T220000Z", "20261120T220000Z", "20251231T235959Z" }, stamps)
		end)

		it("reads the last run of each op from _ops, in the earlier form too", function()
			local b, s = e("acme/_ops/backup.json"), e("acme/_ops/disk-usage.json")
			local cat = catalog.scan("acme", { b, s, e("acme/_ops/notes.txt") })
			assert.same({ backup = { key = b.key, size = b.size, mtime = b.mtime },
				["disk-usage"] = { key = s.key, size = s.size, mtime = s.mtime } }, cat.ops)
			assert.is_nil(cat.components._ops)
		end)

		it("reads an op's outcome from the name of its record, the newest when there are two", function()
			assert.equal("acme/_ops/backup.ok.json", catalog.op_key("acme", "backup", true))
			assert.equal("acme/_ops/backup.failed.json", catalog.op_key("acme", "backup", false))
			local ok, failed = e("acme/_ops/backup.ok.json"), e("acme/_ops/backup.failed.json")
			ok.mtime, failed.mtime = 200, 100
			local cat = catalog.scan("acme", { failed, ok, e("acme/_ops/du.failed.json") })
			assert.is_true(cat.ops.backup.ok)
			assert.equal("acme/_ops/backup.ok.json", cat.ops.backup.key)
			assert.is_false(cat.ops.du.ok)
		end)

		it("ignores the keys of other sites, even ones whose name starts the same", function()
			local cat = catalog.scan("acme", {
				e("acme2/db/20261121T220000Z.json"),
				e("acm/db/20261121T220000Z.json"),
				e("other/acme/db/20261121T220000Z.json"),
				e("acme2/_ops/backup.json"),
			})
			assert.same({ components = {}, ops = {} }, cat)
		end)

		it("ignores keys that do not follow the layout", function()
			local cat = catalog.scan("acme", {
				e("acme/stray.json"),
				e("acme/db/sub/deeper/20261121T220000Z.json"),
				e("acme/db/sub/notes.txt"),
				e("acme/db/notes.txt"),
				e("acme/db/2026-11-21.json"),
				e("acme/db/20261121T220000Z"),
			})
			assert.same({ components = {}, ops = {} }, cat)
		end)

		it("does not take a second JSON file of a stamp for data", function()
			local manifest = e("acme/db/20261121T220000Z.json")
			local cat = catalog.scan("acme", { manifest, e("acme/db/20261121T220000Z.meta.json") })
			assert.equal(1, #cat.components.db.backups)
			assert.is_nil(cat.components.db.backups[1].data)
			assert.same({}, cat.components.db.orphans)
		end)

		it("reads the parts of a component from its subfolders, each with its backups", function()
			local m1, d1 = e("acme/mysql/shop/20261121T220000Z.json"), e("acme/mysql/shop/20261121T220000Z.sql.zst", 7)
			local m0 = e("acme/mysql/shop/20261120T220000Z.json")
			local m2, d2 = e("acme/mysql/caf%C3%A9/20261121T220001Z.json"), e("acme/mysql/caf%C3%A9/20261121T220001Z.sql.zst")
			local orphan = e("acme/mysql/blog/20261121T220002Z.sql.zst")
			local cat = catalog.scan("acme", { m0, d1, m1, d2, m2, orphan })
			local c = cat.components.mysql
			assert.same({ {}, {} }, { c.backups, c.orphans })
			assert.same({ "blog", "café", "shop" }, util.sorted_keys(c.parts))
			local shop = c.parts.shop
			assert.same({ "20261121T220000Z", "20261120T220000Z" }, { shop.backups[1].stamp, shop.backups[2].stamp })
			assert.same({ m1, d1 }, { shop.backups[1].manifest, shop.backups[1].data })
			assert.same({ m2, d2 }, { c.parts["café"].backups[1].manifest, c.parts["café"].backups[1].data })
			assert.same({ backups = {}, orphans = { orphan } }, c.parts.blog)
		end)

		it("keeps a component's own backups apart from its parts'", function()
			local whole = e("acme/mysql/20261119T220000Z.json")
			local cat = catalog.scan("acme", { whole, e("acme/mysql/shop/20261121T220000Z.json") })
			assert.same({ whole }, { cat.components.mysql.backups[1].manifest, cat.components.mysql.backups[2] })
			assert.equal(1, #cat.components.mysql.parts.shop.backups)
		end)

		it("takes nothing under _ops for a part", function()
			local cat = catalog.scan("acme", { e("acme/_ops/x/20261121T220000Z.json") })
			assert.same({ components = {}, ops = {} }, cat)
		end)

		it("returns nothing for an empty listing", function()
			assert.same({ components = {}, ops = {} }, catalog.scan("acme", {}))
		end)
	end)
end)

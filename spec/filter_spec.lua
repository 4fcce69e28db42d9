-- filter.select: choosing sites by name, glob, tag:, host:, and -x.
local filter = require "vakap.filter"

describe("filter", function()
	local sites = {
		{ name = "acme", host = "deploy@web1.acme.example", tags = { "drupal", "prod" } },
		{ name = "blog", host = "local", tags = { "wordpress" } },
		{ name = "acme-staging", host = "deploy@web2.acme.example", tags = { "drupal", "staging" } },
		{ name = "shop", host = "deploy@web1.acme.example", tags = {} },
	}

	local function names(list)
		local out = {}
		for i, s in ipairs(list) do out[i] = s.name end
		return out
	end

	local function select(filters, excludes)
		local out, err = filter.select(sites, filters, excludes)
		if not out then return { nil, err } end
		return { names(out) }
	end

	describe("select", function()
		it("chooses every site, in declared order, when given no filter", function()
			assert.same({ { "acme", "blog", "acme-staging", "shop" } }, select({}))
			assert.same({ { "acme", "blog", "acme-staging", "shop" } }, select(nil))
		end)

		it("chooses a site by its exact name", function()
			assert.same({ { "acme" } }, select({ "acme" }))
		end)

		it("does not treat a plain name as a prefix", function()
			assert.same({ nil, "no site matches 'acm'" }, select({ "acm" }))
		end)

		it("chooses sites by a glob on the name", function()
			assert.same({ { "acme", "acme-staging" } }, select({ "acme*" }))
			assert.same({ { "acme", "blog", "shop" } }, select({ "????" }))
			assert.same({ { "blog", "shop" } }, select({ "[bs]*" }))
			assert.same({ { "acme", "acme-staging" } }, select({ "[!bs]*" }))
		end)

		it("chooses sites by tag, with globs", function()
			assert.same({ { "acme", "acme-staging" } }, select({ "tag:drupal" }))
			assert.same({ { "acme", "acme-staging" } }, select({ "tag:*a*ing" , "tag:prod" }))
			assert.same({ { "blog" } }, select({ "tag:word*" }))
		end)

		it("chooses sites by host, with globs", function()
			assert.same({ { "blog" } }, select({ "host:local" }))
			assert.same({ { "acme", "shop" } }, select({ "host:deploy@web1.acme.example" }))
			assert.same({ { "acme", "acme-staging", "shop" } }, select({ "host:*.acme.example" }))
		end)

		it("keeps the declared order whatever the order of the filters", function()
			assert.same({ { "acme", "blog", "shop" } }, select({ "shop", "blog", "acme" }))
		end)

		it("chooses a site matched by two filters once", function()
			assert.same({ { "acme", "acme-staging" } }, select({ "acme*", "tag:drupal", "acme" }))
		end)

		it("excludes the sites -x names", function()
			assert.same({ { "acme", "blog", "shop" } }, select({}, { "acme-staging" }))
			assert.same({ { "acme" } }, select({ "tag:drupal" }, { "tag:staging" }))
			assert.same({ { "blog" } }, select({}, { "host:deploy@*", "acme*" }))
		end)

		it("returns an empty list when the exclusions take every chosen site", function()
			assert.same({ {} }, select({ "blog" }, { "host:local" }))
		end)

		it("reports a filter that matches nothing", function()
			assert.same({ nil, "no site matches 'x'" }, select({ "x" }))
			assert.same({ nil, "no site matches 'tag:nope'" }, select({ "acme", "tag:nope" }))
			assert.same({ nil, "no site matches 'host:web9*'" }, select({ "host:web9*" }))
		end)

		it("does not report an exclusion that matches nothing", function()
			assert.same({ { "blog" } }, select({ "blog" }, { "nothing-like-this" }))
		end)
	end)

	describe("matches", function()
		it("tells whether one filter selects one site", function()
			assert.is_true(filter.matches("tag:prod", sites[1]))
			assert.is_false(filter.matches("tag:prod", sites[2]))
			assert.is_false(filter.matches("tag:prod", sites[4]))
			assert.is_true(filter.matches("host:local", sites[2]))
			assert.is_true(filter.matches("a?me", sites[1]))
			assert.is_false(filter.matches("a.me", sites[1]))
		end)
	end)
end)

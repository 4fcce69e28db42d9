-- sandbox: the environments operator files run in, and the read-only views
-- of what they share with the engine and with each other.
local sandbox = require "vakap.sandbox"

describe("sandbox", function()
	describe("readonly", function()
		local raw, view

		before_each(function()
			raw = { name = "x", list = { "a", "b" }, nested = { deep = { n = 1 } }, fn = function() return 7 end }
			view = sandbox.readonly(raw, "vakap")
		end)

		it("reads as the table does: fields, nested tables, #, ipairs and pairs", function()
			assert.equal("x", view.name)
			assert.equal(1, view.nested.deep.n)
			assert.equal(7, view.fn())
			assert.equal(2, #view.list)
			local items = {}
			for i, v in ipairs(view.list) do items[i] = v end
			assert.same({ "a", "b" }, items)
			local keys = {}
			for k in pairs(view) do keys[#keys + 1] = k end
			table.sort(keys)
			assert.same({ "fn", "list", "name", "nested" }, keys)
			assert.equal("a,b", table.concat(view.list, ","))
		end)

		it("shows later changes of the table itself", function()
			raw.version = "1.2"
			assert.equal("1.2", view.version)
		end)

		it("raises on a write, naming the table and the field", function()
			assert.has_error(function() view.name = "y" end,
				"vakap is read-only: cannot set 'name' (keep your own values in a local)")
			assert.has_error(function() view.nested.deep.n = 2 end,
				"vakap.nested.deep is read-only: cannot set 'n' (keep your own values in a local)")
			assert.has_error(function() view.list[3] = "c" end,
				"vakap.list is read-only: cannot set '3' (keep your own values in a local)")
			assert.same({ "x", 1, 2 }, { raw.name, raw.nested.deep.n, #raw.list })
		end)

		it("hides its metatable, so it cannot be undone", function()
			assert.equal("read-only", getmetatable(view))
			assert.has_error(function() setmetatable(view, nil) end)
		end)

		it("leaves an object with a metatable as it is, and nil as nil", function()
			local obj = setmetatable({}, {})
			raw.obj = obj
			assert.equal(obj, view.obj)
			assert.is_nil(sandbox.readonly(nil))
		end)
	end)

	describe("object", function()
		it("offers its methods and refuses any field", function()
			local o = sandbox.object({ hello = function(_, n) return "hi " .. n end }, "vakap.localhost")
			assert.equal("hi x", o:hello("x"))
			assert.has_error(function() o.hello = nil end, "vakap.localhost is read-only: cannot set 'hello'")
			assert.equal("vakap.localhost", getmetatable(o))
		end)
	end)

	describe("new", function()
		it("refuses an unknown name and an assignment to a global", function()
			local env = sandbox.new({ x = 1 })
			assert.equal(1, env.x)
			assert.has_error(function() return env.requier end)
			assert.has_error(function() env.y = 2 end, "assignment to global 'y': declare it 'local'")
		end)
	end)
end)

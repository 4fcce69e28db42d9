/*
 * What every cmocka test of the engine shares: a fresh lua_State with the
 * primitives in package.preload, a way to run a Lua snippet against them,
 * and a check that the C stack was left balanced.
 */
#ifndef VAKAP_TEST_HARNESS_H
#define VAKAP_TEST_HARNESS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "engine.h"
#include "stream.h"


static inline lua_State *new_state(void)
{
	lua_State *L = luaL_newstate();

	assert_non_null(L);
	luaL_openlibs(L);
	vk_preload_primitives(L);
	return L;
}

/* Close L after checking its stack is back at `top`. */
static inline void close_state(lua_State *L, int top)
{
	assert_int_equal(lua_gettop(L), top);
	lua_close(L);
}

/* Run a Lua chunk; a raised error fails the test with its message.
 * The chunk's results are left on the stack. */
static inline int run_lua(lua_State *L, const char *code)
{
	int top = lua_gettop(L);

	if (luaL_dostring(L, code) != LUA_OK)
		fail_msg("lua: %s", lua_tostring(L, -1));
	return lua_gettop(L) - top;
}

#endif

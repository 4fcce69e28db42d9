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

static const luaL_Reg harness_prims[] = {
	{"vakap.stream", luaopen_vakap_stream},
	{"vakap.proc", luaopen_vakap_proc},
	{"vakap.fs", luaopen_vakap_fs},
	{"vakap.worker", luaopen_vakap_worker},
	{"vakap.compress", luaopen_vakap_compress},
	{"vakap.hash", luaopen_vakap_hash},
	{"vakap.tar", luaopen_vakap_tar},
	{"vakap.gpg", luaopen_vakap_gpg},
	{"vakap.s3", luaopen_vakap_s3},
	{"vakap.ssh", luaopen_vakap_ssh},
	{NULL, NULL},
};

static inline lua_State *new_state(void)
{
	lua_State *L = luaL_newstate();
	const luaL_Reg *r;

	assert_non_null(L);
	luaL_openlibs(L);
	luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
	for (r = harness_prims; r->name; r++) {
		lua_pushcfunction(L, r->func);
		lua_setfield(L, -2, r->name);
	}
	lua_pop(L, 1);
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

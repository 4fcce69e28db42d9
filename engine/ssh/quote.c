/*
 * Remote command lines (ssh/ssh.h): the one place an argument list
 * becomes a POSIX sh command line (ssh.quote), and the list a remote
 * command runs as: the wrapper that reports its pid and changes to its
 * directory, env for its environment, then its argv.
 */
#include <string.h>

#include <lauxlib.h>

#include "ssh/ssh.h"

#define RUN_SCRIPT "echo " PID_MARK "$$ >&2 && exec \"$@\""
#define RUN_SCRIPT_CWD "echo " PID_MARK "$$ >&2 && cd -- \"$1\" && shift && exec \"$@\""

/* Append arg to b as one word of a POSIX sh command line: single-quoted,
 * each ' written as '\''. */
static void quote_word(luaL_Buffer *b, const char *arg, size_t len)
{
	size_t i;

	luaL_addchar(b, '\'');
	for (i = 0; i < len; i++) {
		if (arg[i] == '\'')
			luaL_addstring(b, "'\\''");
		else
			luaL_addchar(b, arg[i]);
	}
	luaL_addchar(b, '\'');
}

const char *quote_push(lua_State *L, int idx)
{
	lua_Integer i, n;
	luaL_Buffer b;

	luaL_checktype(L, idx, LUA_TTABLE);
	n = (lua_Integer)lua_rawlen(L, idx);
	luaL_argcheck(L, n > 0, idx, "empty command");
	for (i = 1; i <= n; i++) {
		size_t len;
		const char *s;

		if (lua_rawgeti(L, idx, i) != LUA_TSTRING)
			luaL_error(L, "command argument %d is a %s, not a string",
			           (int)i, luaL_typename(L, -1));
		s = lua_tolstring(L, -1, &len);
		if (memchr(s, '\0', len) != NULL)
			luaL_error(L, "command argument %d contains a NUL byte",
			           (int)i);
		lua_pop(L, 1);
	}
	luaL_buffinit(L, &b);
	for (i = 1; i <= n; i++) {
		size_t len;
		const char *s;

		lua_rawgeti(L, idx, i);
		s = lua_tolstring(L, -1, &len);
		lua_pop(L, 1); /* still in the table */
		if (i > 1)
			luaL_addchar(&b, ' ');
		quote_word(&b, s, len);
	}
	luaL_pushresult(&b);
	return lua_tostring(L, -1);
}


/* Append to the list on top, which holds *n words, env's arguments for
 * the table at env: -u NAME for a false value, NAME=value for a string. */
static void push_env(lua_State *L, int env, lua_Integer *n)
{
	lua_pushstring(L, "env");
	lua_rawseti(L, -2, ++*n);
	lua_pushnil(L);
	while (lua_next(L, env)) {
		if (lua_type(L, -2) != LUA_TSTRING)
			luaL_error(L, "env: names must be strings");
		if (lua_toboolean(L, -1) == 0) {
			lua_pushstring(L, "-u");
			lua_rawseti(L, -4, ++*n);
			lua_pushvalue(L, -2);
			lua_rawseti(L, -4, ++*n);
		} else if (lua_type(L, -1) == LUA_TSTRING) {
			lua_pushfstring(L, "%s=%s", lua_tostring(L, -2),
			                lua_tostring(L, -1));
			lua_rawseti(L, -4, ++*n);
		} else {
			luaL_error(L, "env: %s must be a string or false",
			           lua_tostring(L, -2));
		}
		lua_pop(L, 1);
	}
}

/*
 * Push the list a remote command runs as: the wrapper that reports its
 * pid and changes to cwd, env -u/NAME=value for the env table, then argv
 * (the table at argv_idx).  opts_idx: {cwd=, env=} or nil.
 */
static void push_remote_argv(lua_State *L, int argv_idx, int opts_idx)
{
	const char *cwd = NULL;
	lua_Integer n = 0, i;
	int env = 0;

	luaL_checktype(L, argv_idx, LUA_TTABLE);
	if (!lua_isnoneornil(L, opts_idx)) {
		luaL_checktype(L, opts_idx, LUA_TTABLE);
		if (lua_getfield(L, opts_idx, "cwd") != LUA_TNIL)
			cwd = luaL_checkstring(L, -1);
		lua_pop(L, 1); /* kept alive by the options */
		if (lua_getfield(L, opts_idx, "env") != LUA_TNIL) {
			luaL_checktype(L, -1, LUA_TTABLE);
			env = lua_gettop(L);
		} else {
			lua_pop(L, 1);
		}
	}
	lua_newtable(L);
	lua_pushstring(L, "sh");
	lua_rawseti(L, -2, ++n);
	lua_pushstring(L, "-c");
	lua_rawseti(L, -2, ++n);
	lua_pushstring(L, cwd ? RUN_SCRIPT_CWD : RUN_SCRIPT);
	lua_rawseti(L, -2, ++n);
	lua_pushstring(L, "sh");
	lua_rawseti(L, -2, ++n);
	if (cwd) {
		lua_pushstring(L, cwd);
		lua_rawseti(L, -2, ++n);
	}
	if (env) {
		push_env(L, env, &n);
		lua_remove(L, env);
	}
	for (i = 1; i <= (lua_Integer)lua_rawlen(L, argv_idx); i++) {
		lua_rawgeti(L, argv_idx, i);
		lua_rawseti(L, -2, ++n);
	}
}

const char *quote_push_command(lua_State *L, int argv_idx, int opts_idx)
{
	push_remote_argv(L, argv_idx, opts_idx);
	quote_push(L, lua_gettop(L));
	lua_remove(L, -2);
	return lua_tostring(L, -1);
}


/*
 * vakap: the Lua host.  Sets up the process (locale, signals), makes the
 * primitives and the Lua library loadable, and runs vakap.cli under a
 * protected call: errors reach the user as "vakap: message" (with the
 * traceback when -v is given), never as a crash.
 *
 * The Lua library is compiled in (build/luasrc.c).  With VAKAP_LUA_DIR
 * set, modules are loaded from that directory first, for development.
 */
#define _POSIX_C_SOURCE 200809L

#include <langinfo.h>
#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "engine.h"
#include "luamods.h"
#include "stream.h"


static void on_signal(int sig)
{
	(void)sig;
	vk_interrupted = 1;
}

static void setup_process(void)
{
	struct sigaction sa;

	/* file names are bytes in UTF-8: libarchive needs to know */
	setlocale(LC_ALL, "");
	if (strcmp(nl_langinfo(CODESET), "UTF-8") != 0)
		setlocale(LC_CTYPE, "C.UTF-8");
	setlocale(LC_NUMERIC, "C");

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	sa.sa_handler = on_signal; /* no SA_RESTART: blocked calls see EINTR */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

/* package.preload[name] for the embedded library: a loader per module */
static int load_embedded(lua_State *L)
{
	const struct vk_luamod *m = lua_touserdata(L, lua_upvalueindex(1));

	if (luaL_loadbuffer(L, m->data, m->len, m->chunkname) != LUA_OK)
		return lua_error(L);
	lua_pushstring(L, m->name);
	lua_call(L, 1, 1);
	return 1;
}

static void install_library(lua_State *L)
{
	const struct vk_luamod *m;
	const char *dir = getenv("VAKAP_LUA_DIR");

	vk_preload_primitives(L);
	luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
	if (dir == NULL || *dir == '\0') {
		for (m = vk_luamods; m->name; m++) {
			lua_pushlightuserdata(L, (void *)m);
			lua_pushcclosure(L, load_embedded, 1);
			lua_setfield(L, -2, m->name);
		}
	}
	lua_pop(L, 1);
	if (dir != NULL && *dir != '\0') {
		/* development: the tree's lua/ before anything installed */
		lua_getglobal(L, "package");
		lua_pushfstring(L, "%s/?.lua;%s/?/init.lua;", dir, dir);
		lua_getfield(L, -2, "path");
		lua_concat(L, 2);
		lua_setfield(L, -2, "path");
		lua_pop(L, 1);
	}
	lua_pushstring(L, vk_version);
	lua_setfield(L, LUA_REGISTRYINDEX, "vakap.version");
}

/* message handler: keep the message, add the traceback for -v */
static int traceback(lua_State *L)
{
	const char *msg = lua_tostring(L, 1);

	if (msg == NULL) {
		if (luaL_callmeta(L, 1, "__tostring") &&
		    lua_type(L, -1) == LUA_TSTRING)
			msg = lua_tostring(L, -1);
		else
			msg = lua_pushfstring(L, "(error object is a %s value)",
			                      luaL_typename(L, 1));
	}
	luaL_traceback(L, L, NULL, 1);
	lua_setfield(L, LUA_REGISTRYINDEX, "vakap.traceback");
	lua_pushstring(L, msg);
	return 1;
}

static int verbose_flag(int argc, char **argv)
{
	int i;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			break;
		if (strcmp(argv[i], "--verbose") == 0 ||
		    (argv[i][0] == '-' && argv[i][1] == 'v' &&
		     strspn(argv[i] + 1, "v") == strlen(argv[i] + 1)))
			return 1;
	}
	return getenv("VAKAP_DEBUG") != NULL;
}

/* lua: the body, under pcall: require("vakap.cli").main(version, args) */
static int pmain(lua_State *L)
{
	int argc = (int)lua_tointeger(L, 1);
	char **argv = lua_touserdata(L, 2);
	int i;

	luaL_openlibs(L);
	install_library(L);
	lua_getglobal(L, "require");
	lua_pushliteral(L, "vakap.cli");
	lua_call(L, 1, 1);
	lua_getfield(L, -1, "main");
	lua_createtable(L, argc, 0);
	for (i = 1; i < argc; i++) {
		lua_pushstring(L, argv[i]);
		lua_rawseti(L, -2, i);
	}
	lua_pushstring(L, vk_version);
	lua_call(L, 2, 1);
	return 1;
}

int main(int argc, char **argv)
{
	lua_State *L;
	int status, code;

	setup_process();
	L = luaL_newstate();
	if (L == NULL) {
		fprintf(stderr, "vakap: cannot create a Lua state\n");
		return 2;
	}
	lua_pushcfunction(L, traceback);
	lua_pushcfunction(L, pmain);
	lua_pushinteger(L, argc);
	lua_pushlightuserdata(L, argv);
	status = lua_pcall(L, 2, 1, 1);
	if (status != LUA_OK) {
		fprintf(stderr, "vakap: %s\n", lua_tostring(L, -1));
		if (verbose_flag(argc, argv) &&
		    lua_getfield(L, LUA_REGISTRYINDEX, "vakap.traceback") ==
		            LUA_TSTRING)
			fprintf(stderr, "%s\n", lua_tostring(L, -1));
		code = vk_interrupted ? 130 : 2;
	} else {
		code = lua_isinteger(L, -1) ? (int)lua_tointeger(L, -1) : 0;
	}
	fflush(stdout);
	lua_close(L);
	return code;
}

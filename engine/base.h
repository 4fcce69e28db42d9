/*
 * What every primitive shares: the monotonic clock, the metatable of a
 * handle type, hex, and the usual failure return.
 */
#ifndef VAKAP_BASE_H
#define VAKAP_BASE_H

#include <stddef.h>

#include <lauxlib.h>
#include <lua.h>

/* Seconds on the monotonic clock, with a fraction: for deadlines and
 * durations, never for dates. */
double vk_clock(void);

/* The metatable `name`, made the first time (metamethods, and methods as
 * its __index), left on the stack: each handle type installs its
 * functions once.  Every handle type of the engine is made here. */
void vk_class(lua_State *L, const char *name, const luaL_Reg *meta,
              const luaL_Reg *methods);

/* Lower-case hex of len bytes into hex, which holds 2 * len + 1. */
void vk_hex(char *hex, const unsigned char *bytes, size_t len);

/* lua: fail, message -- the usual failure return; returns 2. */
int vk_pushfail(lua_State *L, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif

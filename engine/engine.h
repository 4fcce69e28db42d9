/*
 * The primitives: one list, read by main.c (package.preload), the unit
 * tests' harness and the Makefile (which builds every engine/ source).
 * Each primitive is a Lua module vakap.NAME whose files export only its
 * luaopen_vakap_NAME.
 */
#ifndef VAKAP_ENGINE_H
#define VAKAP_ENGINE_H

#include <lauxlib.h>
#include <lua.h>

#define VK_PRIMITIVES(X) \
	X(stream)        \
	X(proc)          \
	X(fs)            \
	X(worker)        \
	X(compress)      \
	X(hash)          \
	X(tar)           \
	X(gpg)           \
	X(s3)            \
	X(ssh)

#define VK_DECLARE_PRIMITIVE(name) int luaopen_vakap_##name(lua_State *L);
VK_PRIMITIVES(VK_DECLARE_PRIMITIVE)
#undef VK_DECLARE_PRIMITIVE

/* Put every primitive in package.preload, as vakap.NAME. */
static inline void vk_preload_primitives(lua_State *L)
{
#define VK_PRELOAD(name)                                   \
	lua_pushcfunction(L, luaopen_vakap_##name);        \
	lua_setfield(L, -2, "vakap." #name);
	luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
	VK_PRIMITIVES(VK_PRELOAD)
	lua_pop(L, 1);
#undef VK_PRELOAD
}

#endif

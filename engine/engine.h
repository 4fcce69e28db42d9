/* The primitives' Lua entry points: each file exports only its luaopen. */
#ifndef VAKAP_ENGINE_H
#define VAKAP_ENGINE_H

#include <lua.h>

int luaopen_vakap_stream(lua_State *L);
int luaopen_vakap_proc(lua_State *L);
int luaopen_vakap_fs(lua_State *L);
int luaopen_vakap_worker(lua_State *L);
int luaopen_vakap_compress(lua_State *L);
int luaopen_vakap_hash(lua_State *L);
int luaopen_vakap_tar(lua_State *L);
int luaopen_vakap_gpg(lua_State *L);
int luaopen_vakap_s3(lua_State *L);
int luaopen_vakap_ssh(lua_State *L);

#endif

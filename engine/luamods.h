/* The Lua library compiled into the binary (build/luasrc.c). */
#ifndef VAKAP_LUAMODS_H
#define VAKAP_LUAMODS_H

#include <stddef.h>

struct vk_luamod {
	const char *name;      /* module name, "vakap.cli" */
	const char *chunkname; /* "@lua/vakap/cli.lua", for messages */
	const char *data;
	size_t len;
};

extern const struct vk_luamod vk_luamods[];
extern const char vk_version[];

#endif

/* What every primitive shares (base.h). */
#define _POSIX_C_SOURCE 200809L

#include "base.h"

#include <stdarg.h>
#include <time.h>

double vk_clock(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

void vk_class(lua_State *L, const char *name, const luaL_Reg *meta,
              const luaL_Reg *methods)
{
	if (luaL_newmetatable(L, name) == 0)
		return; /* already made; leaves it on the stack */
	luaL_setfuncs(L, meta, 0);
	lua_newtable(L);
	luaL_setfuncs(L, methods, 0);
	lua_setfield(L, -2, "__index");
}

void vk_hex(char *hex, const unsigned char *bytes, size_t len)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < len; i++) {
		hex[2 * i] = digits[bytes[i] >> 4];
		hex[2 * i + 1] = digits[bytes[i] & 15];
	}
	hex[2 * len] = '\0';
}

int vk_pushfail(lua_State *L, const char *fmt, ...)
{
	va_list ap;

	luaL_pushfail(L);
	va_start(ap, fmt);
	lua_pushvfstring(L, fmt, ap);
	va_end(ap);
	return 2;
}

/*
 * What proc.c offers the primitives that run a command of their own as a
 * filter (gpg.c): proc.filter from C.
 */
#ifndef VAKAP_PROC_H
#define VAKAP_PROC_H

#include <lua.h>

#include "stream.h"

/* Push proc.filter(up at up_idx, argv), argv copied as it starts: the
 * stream, failed with the reason if argv could not be started.  fd3_data:
 * when not NULL, the command's fd 3 reads these bytes (a passphrase, a
 * small secret: never on a command line or in a file), then its end. */
struct vk_stream *vk_proc_filter(lua_State *L, int up_idx, char **argv,
                                 const char *fd3_data);

/* What the filter's command wrote on stderr (its last VK_TAIL bytes), and
 * whether it ran to its end (it was reaped after closing its stdout): 0
 * while it runs, or when the stream failed before (its upstream, say). */
int vk_proc_filter_ran(struct vk_stream *s, const char **tail);

#endif

/*
 * A growable byte buffer, always NUL-terminated once anything was added.
 * An append that runs out of memory marks the buffer (oom) and fails, and
 * so does every append after it: a caller may check once, at the end.
 * Functions return 0, or -1 when memory ran out.
 */
#ifndef VAKAP_BUF_H
#define VAKAP_BUF_H

#include <stddef.h>

struct vk_buf {
	char *p;
	size_t len, cap;
	int oom; /* an append failed: the content is incomplete */
};

void vk_buf_free(struct vk_buf *b);
/* Room for `more` bytes and the NUL beyond len, for a caller that writes
 * into p itself (and then adds to len). */
int vk_buf_reserve(struct vk_buf *b, size_t more);
int vk_buf_add(struct vk_buf *b, const void *data, size_t n);
int vk_buf_adds(struct vk_buf *b, const char *s);
int vk_buf_printf(struct vk_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif

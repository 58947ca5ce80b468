#include "buf.h"

#include <stdlib.h>
#include <string.h>

void buf_init(struct buf *b, size_t cap)
{
	memset(b, 0, sizeof(*b));
	b->cap = cap;
}

static int buf_grow(struct buf *b, size_t need)
{
	size_t alloc = b->alloc ? b->alloc : 64;
	char *data;

	while (alloc < need)
		alloc *= 2;
	if (alloc == b->alloc)
		return 0;
	data = realloc(b->data, alloc);
	if (data == NULL)
		return -1;
	b->data = data;
	b->alloc = alloc;
	return 0;
}

int buf_append(struct buf *b, const void *data, size_t n)
{
	int clipped = 0;

	if (b->cap && b->len + n > b->cap) {
		n = b->cap - b->len;
		b->truncated = 1;
		clipped = 1;
	}
	if (buf_grow(b, b->len + n + 1) < 0)
		return -1;
	if (n)
		memcpy(b->data + b->len, data, n);
	b->len += n;
	b->data[b->len] = '\0';
	return clipped;
}

void buf_reset(struct buf *b)
{
	b->len = 0;
	b->truncated = 0;
	if (b->data)
		b->data[0] = '\0';
}

void buf_release(struct buf *b)
{
	free(b->data);
	buf_init(b, b->cap);
}

const char *buf_str(const struct buf *b)
{
	return b->data ? b->data : "";
}

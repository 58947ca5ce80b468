#include "buf.h"

#include <stdio.h>
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

int buf_vaddf(struct buf *b, const char *fmt, va_list ap)
{
	va_list again;
	size_t keep;
	int n, clipped = 0;

	/* measured first, then written once: nothing past the cap is kept */
	va_copy(again, ap);
	/* analyzer false positive: ap comes from the caller's va_start */
	// NOLINTBEGIN(clang-analyzer-valist.Uninitialized)
	n = vsnprintf(NULL, 0, fmt, ap);
	// NOLINTEND(clang-analyzer-valist.Uninitialized)
	if (n < 0) {
		va_end(again);
		return -1;
	}
	keep = (size_t)n;
	if (b->cap && b->len + keep > b->cap) {
		keep = b->cap - b->len;
		b->truncated = 1;
		clipped = 1;
	}
	if (buf_grow(b, b->len + keep + 1) < 0) {
		va_end(again);
		return -1;
	}
	vsnprintf(b->data + b->len, keep + 1, fmt, again);
	va_end(again);
	b->len += keep;
	return clipped;
}

int buf_addf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = buf_vaddf(b, fmt, ap);
	va_end(ap);
	return rc;
}

char *buf_space(struct buf *b, size_t n)
{
	if (n > (size_t)-1 - b->len - 1 || buf_grow(b, b->len + n + 1) < 0)
		return NULL;
	return b->data + b->len;
}

void buf_commit(struct buf *b, size_t n)
{
	b->len += n;
	b->data[b->len] = '\0';
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

/*
 * buf: a growable byte buffer with a hard cap, for text that comes from
 * outside (HTTP bodies, XML text).  The bytes are always NUL-terminated so
 * the contents can be used as a C string when they hold no NUL themselves.
 */
#ifndef SENDER_BUF_H
#define SENDER_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
	char *data;    /* owned; NULL until the first append */
	size_t len;    /* bytes in use, not counting the terminating NUL */
	size_t alloc;  /* bytes allocated */
	size_t cap;    /* most bytes it may ever hold; 0 means no cap */
	int truncated; /* set when an append went past the cap */
};

/* Start empty with the given cap (0: unlimited). Allocates nothing. */
void buf_init(struct buf *b, size_t cap);

/*
 * Append n bytes.  Past the cap, keeps what fits, sets truncated and
 * returns 1; returns -1 when memory runs out, 0 otherwise.
 */
int buf_append(struct buf *b, const void *data, size_t n);

/*
 * Append printf-formatted text, with buf_append()'s cap and results; -1
 * also when the format cannot be formatted.
 */
int buf_addf(struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
int buf_vaddf(struct buf *b, const char *fmt, va_list ap);

/*
 * Room for n more bytes (and the NUL) past the contents, for a writer that
 * fills it itself and then says how much with buf_commit(); the cap does
 * not apply.  Returns where the contents end, or NULL when memory runs
 * out.  Valid until the next call that may grow the buffer.
 */
char *buf_space(struct buf *b, size_t n);

/* n bytes written at buf_space() belong to the contents now. */
void buf_commit(struct buf *b, size_t n);

/* Forget the contents but keep the memory for reuse. */
void buf_reset(struct buf *b);

/* Free the memory; the buffer is empty and reusable afterwards. */
void buf_release(struct buf *b);

/* The contents as a C string ("" when empty); owned by the buffer. */
const char *buf_str(const struct buf *b);

#endif

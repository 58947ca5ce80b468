/*
 * reader: the letters of one XML file, one at a time, in constant memory.
 *
 * Wraps libxml2's xmlTextReader.  Entities are expanded, but nothing is ever
 * loaded from outside the file (no network, no files, no external DTD), a
 * document that declares an external entity is refused, and libxml2's own
 * limits stop entity-expansion bombs.
 */
#ifndef SENDER_READER_H
#define SENDER_READER_H

#include <stddef.h>
#include <stdint.h>

/* Longest <to> and <subject> text accepted, in bytes after trimming. */
#define READER_TO_MAX	   2048
#define READER_SUBJECT_MAX 65536

struct reader;

/*
 * One letter.  The strings are owned by the reader and stay valid until the
 * next call of reader_next() or reader_free().
 */
struct letter {
	uint32_t id;
	const char *to;
	size_t to_len;
	const char *subject;
	size_t subject_len;
	long line; /* line of the <email> start tag */
};

enum reader_status {
	READER_LETTER,	/* a valid letter is in *out */
	READER_INVALID, /* a letter was skipped; msg says why, with FILE:LINE */
	READER_END,	/* the file is finished */
	READER_ERROR,	/* reading stopped; msg is "FILE:LINE:COL: message" */
};

/*
 * Open path ("-" for standard input).  Returns NULL and a message naming the
 * file in err when it cannot be opened.  The caller frees with reader_free().
 */
struct reader *reader_open(const char *path, char *err, size_t errlen);

/*
 * Read on to the next letter.  For READER_INVALID and READER_ERROR a message
 * that starts with the file name and line is written to msg.  After
 * READER_END or READER_ERROR every further call returns the same status.
 */
enum reader_status reader_next(struct reader *r, struct letter *out, char *msg,
			       size_t msglen);

/* Bytes of input consumed so far, for progress reports. */
long reader_offset(const struct reader *r);

/* The name used in messages: the path, or "<stdin>". */
const char *reader_name(const struct reader *r);

void reader_free(struct reader *r);

#endif

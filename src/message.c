#include "message.h"

#include "buf.h"

#include <jansson.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * The JSON text is {"to": TO, "subject": SUBJECT}, as jansson's
 * json_dumps() of that object writes it (JSON_PRESERVE_ORDER, keys in
 * that order), and each string in it is jansson's own encoding: two
 * string values made once per coder take each letter's text
 * (json_string_setn_nocheck(): the UTF-8 check is json_dumpb()'s, which
 * refuses what json_stringn() would) and are dumped with json_dumpb()
 * and JSON_ENCODE_ANY into a buffer kept from letter to letter.  Only
 * the frame around them, which never changes, is written here: dumping
 * the object itself cost a third more (its loop check keeps a
 * hashtable of the objects being dumped), and making and freeing it for
 * every letter a third of jansson's share before that (callgrind).
 * tests/unit/test_message.c checks the text byte for byte against
 * json_dumps() of the object.
 *
 * The URL encoding that follows is sender's own, one table lookup a byte
 * into room reserved at the end of the caller's buffer:
 * curl_easy_escape() formatted each %XX with its printf and grew its
 * buffer byte by byte.  It encodes as curl_easy_escape() does (A-Z a-z
 * 0-9 - . _ ~ as they are, every other byte as %XX in upper-case hex),
 * and tests/unit/test_message.c checks that byte for byte against both
 * libraries over every byte value and many random strings.
 */

struct message_coder {
	json_t *to, *subject;	   /* string values, reused */
	struct buf json;	   /* the JSON text of the letter */
	char enc[256][4];	   /* byte -> itself, or "%XX" */
	unsigned char enclen[256]; /* 1 or 3 */
};

static int unreserved(unsigned c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
	       c == '~';
}

struct message_coder *message_coder_new(void)
{
	static const char hex[] = "0123456789ABCDEF";
	struct message_coder *c = calloc(1, sizeof(*c));
	unsigned i;

	if (c == NULL)
		return NULL;
	c->to = json_string("");
	c->subject = json_string("");
	if (c->to == NULL || c->subject == NULL) {
		json_decref(c->to);
		json_decref(c->subject);
		free(c);
		return NULL;
	}
	buf_init(&c->json, 0);
	for (i = 0; i < 256; i++) {
		if (unreserved(i)) {
			c->enc[i][0] = (char)i;
			c->enclen[i] = 1;
		} else {
			c->enc[i][0] = '%';
			c->enc[i][1] = hex[i >> 4];
			c->enc[i][2] = hex[i & 15];
			c->enclen[i] = 3;
		}
	}
	return c;
}

void message_coder_free(struct message_coder *c)
{
	if (c == NULL)
		return;
	json_decref(c->to);
	json_decref(c->subject);
	buf_release(&c->json);
	free(c);
}

/* Append string value s, as jansson encodes it, to b; 0, or -1. */
static int dump_string(struct buf *b, const json_t *s)
{
	size_t room = b->alloc > b->len ? b->alloc - b->len - 1 : 0;
	size_t n = json_dumpb(s, b->data + b->len, room, JSON_ENCODE_ANY);

	if (n > room) {
		char *at = buf_space(b, n);

		if (at == NULL || json_dumpb(s, at, n, JSON_ENCODE_ANY) != n)
			return -1;
	}
	if (n == 0)
		return -1; /* invalid UTF-8: '""' is never the answer */
	buf_commit(b, n);
	return 0;
}

/* Append the literal text lit to b; 0, or -1. */
#define APPEND(b, lit) buf_append((b), (lit), sizeof(lit) - 1)

/*
 * The JSON text of the letter in c->json.  0, or -1 when jansson refuses
 * the text (not valid UTF-8) or memory runs out.
 */
static int json_text(struct message_coder *c, const char *to, size_t to_len,
		     const char *subject, size_t subject_len)
{
	buf_reset(&c->json);
	if (json_string_setn_nocheck(c->to, to ? to : "", to_len) < 0 ||
	    json_string_setn_nocheck(c->subject, subject ? subject : "",
				     subject_len) < 0)
		return -1;
	if (c->json.alloc == 0 && buf_space(&c->json, 1024) == NULL)
		return -1;
	if (APPEND(&c->json, "{\"to\": ") < 0 ||
	    dump_string(&c->json, c->to) < 0 ||
	    APPEND(&c->json, ", \"subject\": ") < 0 ||
	    dump_string(&c->json, c->subject) < 0 || APPEND(&c->json, "}") < 0)
		return -1;
	return 0;
}

/*
 * "id=<id>&message=" in head (room for 32 bytes); its length.  By hand:
 * snprintf() took a tenth of what sender itself spends on a letter.
 */
static int form_head(char head[32], uint32_t id)
{
	char digits[10];
	int n = 0, len;

	do {
		digits[n++] = (char)('0' + id % 10);
		id /= 10;
	} while (id);
	memcpy(head, "id=", 3);
	for (len = 3; n > 0;)
		head[len++] = digits[--n];
	memcpy(head + len, "&message=", 9);
	return len + 9;
}

int message_append(struct message_coder *c, uint32_t id, const char *to,
		   size_t to_len, const char *subject, size_t subject_len,
		   struct buf *out, char *err, size_t errlen)
{
	const unsigned char *p, *end;
	char head[32], *o, *start;
	int head_len;

	if (json_text(c, to, to_len, subject, subject_len) < 0) {
		snprintf(err, errlen,
			 "cannot encode letter %" PRIu32
			 " as JSON (invalid UTF-8?)",
			 id);
		return -1;
	}
	/* the head as it is: '=' and '&' are the form's own */
	head_len = form_head(head, id);
	/* at most 3 bytes a byte; the 4-byte copies end on buf's NUL byte */
	if (c->json.len > ((size_t)-1 >> 2) ||
	    (start = buf_space(out, (size_t)head_len + 3 * c->json.len)) ==
		    NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	memcpy(start, head, (size_t)head_len);
	o = start + head_len;
	p = (const unsigned char *)c->json.data;
	for (end = p + c->json.len; p < end; p++) {
		memcpy(o, c->enc[*p], 4);
		o += c->enclen[*p];
	}
	buf_commit(out, (size_t)(o - start));
	return 0;
}

char *message_json(const char *to, size_t to_len, const char *subject,
		   size_t subject_len)
{
	struct message_coder *c = message_coder_new();
	char *text = NULL;

	if (c && json_text(c, to, to_len, subject, subject_len) == 0) {
		text = c->json.data; /* the buffer's, NUL-terminated */
		buf_init(&c->json, 0);
	}
	message_coder_free(c);
	return text;
}

char *message_form(uint32_t id, const char *to, size_t to_len,
		   const char *subject, size_t subject_len, size_t *len,
		   char *err, size_t errlen)
{
	struct message_coder *c = message_coder_new();
	struct buf out;

	buf_init(&out, 0);
	if (c == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (message_append(c, id, to, to_len, subject, subject_len, &out, err,
			   errlen) < 0) {
		message_coder_free(c);
		buf_release(&out);
		return NULL;
	}
	message_coder_free(c);
	*len = out.len;
	return out.data;
}

#include "message.h"

#include "buf.h"

#include <jansson.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * The JSON text is jansson's (SPEC section 3: built by a JSON library):
 * one object {"to": ..., "subject": ...}, made once per coder, whose two
 * strings take each letter's text (json_string_setn_nocheck(): the UTF-8
 * check is json_dumpb()'s, which refuses what json_stringn() would), dumped
 * with JSON_PRESERVE_ORDER by json_dumpb() into a buffer kept from letter
 * to letter.  Making and freeing the object, its hashtable and its keys
 * for every letter was a third of jansson's share (callgrind).
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
	json_t *obj;		   /* {"to": to, "subject": subject} */
	json_t *to, *subject;	   /* borrowed: obj holds them */
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
	c->obj = json_object();
	c->to = json_string("");
	c->subject = json_string("");
	/* set_new takes the references: on failure too */
	if (c->obj == NULL || json_object_set_new(c->obj, "to", c->to) < 0 ||
	    json_object_set_new(c->obj, "subject", c->subject) < 0) {
		json_decref(c->obj);
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
	json_decref(c->obj);
	buf_release(&c->json);
	free(c);
}

/*
 * The JSON text of the letter in c->json.  0, or -1 when jansson refuses
 * the text (not valid UTF-8) or memory runs out.
 */
static int json_text(struct message_coder *c, const char *to, size_t to_len,
		     const char *subject, size_t subject_len)
{
	size_t n;

	buf_reset(&c->json);
	if (json_string_setn_nocheck(c->to, to ? to : "", to_len) < 0 ||
	    json_string_setn_nocheck(c->subject, subject ? subject : "",
				     subject_len) < 0)
		return -1;
	if (c->json.alloc == 0 && buf_space(&c->json, 1024) == NULL)
		return -1;
	n = json_dumpb(c->obj, c->json.data, c->json.alloc - 1,
		       JSON_PRESERVE_ORDER);
	if (n >= c->json.alloc) {
		if (buf_space(&c->json, n) == NULL ||
		    json_dumpb(c->obj, c->json.data, c->json.alloc - 1,
			       JSON_PRESERVE_ORDER) != n)
			return -1;
	}
	if (n == 0)
		return -1; /* invalid UTF-8: "{}" is never the answer */
	buf_commit(&c->json, n);
	return 0;
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
	head_len = snprintf(head, sizeof(head), "id=%" PRIu32 "&message=", id);
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

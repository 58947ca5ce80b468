#include "message.h"

#include "buf.h"
#include "text.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * The JSON text is {"to": TO, "subject": SUBJECT}, as jansson's
 * json_dumps() of that object writes it (JSON_PRESERVE_ORDER, keys in
 * that order), and the form carries it URL-encoded as curl_easy_escape()
 * does it (A-Z a-z 0-9 - . _ ~ as they are, every other byte as %XX in
 * upper-case hex).  Both are written here in one pass over the letter's
 * bytes, through a table that holds for each byte its JSON escape already
 * URL-encoded: '"' is \" is %5C%22.  jansson dumping the two strings, and
 * then a second pass to URL-encode its text, were 7 % of the instructions
 * of a letter (callgrind): jansson decodes every code point.
 *
 * jansson's escapes: \" \\ \b \f \n \r \t, \u00XX (upper-case hex) for
 * the other bytes below 0x20, everything else as it is, '/' and DEL
 * included; it refuses text that is not strict UTF-8, and so does this.
 * tests/unit/test_message.c checks both texts byte for byte against
 * json_dumps() and curl_easy_escape() over every byte value, every pair,
 * the edges of every UTF-8 form and many random strings.
 */

/* The longest escape: \u001F as JSON, %5Cu001F in the form. */
#define ESCAPE_MAX 8

/* Each byte's text in one of the two encodings. */
struct escapes {
	char text[256][ESCAPE_MAX];
	unsigned char len[256];
};

struct message_coder {
	struct escapes json, form;
	/* the frame around the two strings, URL-encoded */
	char open[32], middle[48], close[16];
	size_t open_len, middle_len, close_len;
};

/* The frame, as JSON. */
static const char OPEN[] = "{\"to\": \"";
static const char MIDDLE[] = "\", \"subject\": \"";
static const char CLOSE[] = "\"}";

static int unreserved(unsigned c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
	       c == '~';
}

/* n bytes of s URL-encoded into out (room for 3 n); the length written. */
static size_t url_encode(char *out, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t i, o = 0;

	for (i = 0; i < n; i++) {
		unsigned c = (unsigned char)s[i];

		if (unreserved(c)) {
			out[o++] = (char)c;
		} else {
			out[o++] = '%';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	return o;
}

/* Byte c as jansson writes it inside a JSON string; its length. */
static size_t json_escape(char out[ESCAPE_MAX], unsigned c)
{
	static const char hex[] = "0123456789ABCDEF";
	static const char named[] = "\"\"\\\\\bb\ff\nn\rr\tt";
	size_t i;

	for (i = 0; named[i]; i += 2) {
		if ((unsigned char)named[i] == c) {
			out[0] = '\\';
			out[1] = named[i + 1];
			return 2;
		}
	}
	if (c >= 0x20) {
		out[0] = (char)c;
		return 1;
	}
	memcpy(out, "\\u00", 4);
	out[4] = hex[c >> 4];
	out[5] = hex[c & 15];
	return 6;
}

struct message_coder *message_coder_new(void)
{
	struct message_coder *c = calloc(1, sizeof(*c));
	char escaped[ESCAPE_MAX];
	unsigned i;

	if (c == NULL)
		return NULL;
	for (i = 0; i < 256; i++) {
		size_t n = json_escape(escaped, i);

		memcpy(c->json.text[i], escaped, n);
		c->json.len[i] = (unsigned char)n;
		/* "\\" and a letter: 4 bytes; "\\u00XX": 8; "%XX": 3 */
		c->form.len[i] = (unsigned char)url_encode(c->form.text[i],
							   escaped, n);
	}
	c->open_len = url_encode(c->open, OPEN, sizeof(OPEN) - 1);
	c->middle_len = url_encode(c->middle, MIDDLE, sizeof(MIDDLE) - 1);
	c->close_len = url_encode(c->close, CLOSE, sizeof(CLOSE) - 1);
	return c;
}

void message_coder_free(struct message_coder *c)
{
	free(c);
}

/*
 * The n bytes of s in encoding e at o, which has room for ESCAPE_MAX
 * bytes each: every escape is copied whole, and o moves on by its length.
 * Where it ends, or NULL when s is not strict UTF-8.
 */
static char *escape(char *o, const struct escapes *e, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + n;
	size_t k;

	if (n == 0)
		return o; /* s may be NULL */
	while (p < end) {
		if ((k = text_utf8_next(p, (size_t)(end - p))) == 0)
			return NULL;
		for (; k > 0; k--, p++) {
			memcpy(o, e->text[*p], ESCAPE_MAX);
			o += e->len[*p];
		}
	}
	return o;
}

/* "id=<id>&message=" at o; where it ends. */
static char *form_head(char *o, uint32_t id)
{
	memcpy(o, "id=", 3);
	o = text_put_id(o + 3, id);
	memcpy(o, "&message=", 9);
	return o + 9;
}

/* The longest head: "id=4294967295&message=". */
#define HEAD_MAX (sizeof("id=4294967295&message=") - 1)

/* Whether escaping a and b bytes could overflow a size_t. */
static int too_long(size_t a, size_t b)
{
	const size_t max = (size_t)-1 / (2 * ESCAPE_MAX);

	return a > max || b > max - a;
}

int message_append(struct message_coder *c, uint32_t id, const char *to,
		   size_t to_len, const char *subject, size_t subject_len,
		   struct buf *out, char *err, size_t errlen)
{
	char *start, *o;
	size_t need;

	if (too_long(to_len, subject_len)) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	need = HEAD_MAX + c->open_len + c->middle_len + c->close_len +
	       ESCAPE_MAX * (to_len + subject_len);
	if ((start = buf_space(out, need)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	o = form_head(start, id);
	memcpy(o, c->open, c->open_len);
	o = escape(o + c->open_len, &c->form, to, to_len);
	if (o) {
		memcpy(o, c->middle, c->middle_len);
		o = escape(o + c->middle_len, &c->form, subject, subject_len);
	}
	if (o == NULL) {
		*start = '\0'; /* out as it was */
		snprintf(err, errlen,
			 "cannot encode letter %" PRIu32
			 " as JSON (invalid UTF-8?)",
			 id);
		return -1;
	}
	memcpy(o, c->close, c->close_len);
	buf_commit(out, (size_t)(o + c->close_len - start));
	return 0;
}

char *message_json(const char *to, size_t to_len, const char *subject,
		   size_t subject_len)
{
	struct message_coder *c = message_coder_new();
	char *text = NULL, *o;

	if (c == NULL || too_long(to_len, subject_len) ||
	    (text = malloc(sizeof(OPEN) + sizeof(MIDDLE) + sizeof(CLOSE) +
			   ESCAPE_MAX * (to_len + subject_len))) == NULL) {
		message_coder_free(c);
		return NULL;
	}
	memcpy(text, OPEN, sizeof(OPEN) - 1);
	o = escape(text + sizeof(OPEN) - 1, &c->json, to, to_len);
	if (o) {
		memcpy(o, MIDDLE, sizeof(MIDDLE) - 1);
		o = escape(o + sizeof(MIDDLE) - 1, &c->json, subject,
			   subject_len);
	}
	message_coder_free(c);
	if (o == NULL) {
		free(text);
		return NULL;
	}
	memcpy(o, CLOSE, sizeof(CLOSE));
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

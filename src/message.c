#include "message.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Both texts are written in one pass over their bytes, with no object
 * built and nothing allocated but the result: the length is measured
 * first (the same walk with nowhere to write), then the result is
 * allocated at its exact size and written.  This used to be jansson's
 * json_dumps() of an object and then curl_easy_escape() of its text: a
 * dozen allocations and about 25,000 instructions a letter, a fifth of
 * sender's own work (callgrind).  The bytes are the same, and
 * tests/unit/test_message.c checks that against both libraries over
 * every byte value and many random strings:
 *
 *   JSON as jansson writes {"to": ..., "subject": ...} with flags
 *   JSON_PRESERVE_ORDER: ", " and ": " between items, '"' and '\' and
 *   \b \f \n \r \t escaped by a backslash, the other bytes below 0x20 as
 *   \u00XX (upper-case hex), everything else (UTF-8, '/', 0x7f) as it is;
 *   text that is not valid UTF-8 is refused (no overlong forms, no
 *   surrogates, nothing past U+10FFFF).
 *
 *   URL encoding as curl_easy_escape() does it: A-Z a-z 0-9 - . _ ~ as
 *   they are, every other byte as %XX (upper-case hex).
 */

static const char hex[] = "0123456789ABCDEF";

/* Where the text goes: out == NULL only counts. */
struct sink {
	char *out;
	size_t len;
	int url; /* percent-encode what is written */
};

static inline int unreserved(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
	       c == '~';
}

/* One byte of the JSON text, percent-encoded when s->url. */
static inline void put(struct sink *s, unsigned char c)
{
	if (!s->url || unreserved(c)) {
		if (s->out)
			s->out[s->len] = (char)c;
		s->len++;
		return;
	}
	if (s->out) {
		s->out[s->len] = '%';
		s->out[s->len + 1] = hex[c >> 4];
		s->out[s->len + 2] = hex[c & 15];
	}
	s->len += 3;
}

static void put_str(struct sink *s, const char *text)
{
	for (; *text; text++)
		put(s, (unsigned char)*text);
}

/*
 * n bytes that JSON takes as they are: the bulk of every letter, so in
 * one tight loop rather than byte by byte through put().
 */
static void put_plain(struct sink *s, const unsigned char *p, size_t n)
{
	size_t i;
	char *o;

	if (!s->url) {
		if (s->out)
			memcpy(s->out + s->len, p, n);
		s->len += n;
		return;
	}
	if (s->out == NULL) {
		for (i = 0; i < n; i++)
			s->len += unreserved(p[i]) ? 1 : 3;
		return;
	}
	o = s->out + s->len;
	for (i = 0; i < n; i++) {
		unsigned char c = p[i];

		if (unreserved(c)) {
			*o++ = (char)c;
		} else {
			o[0] = '%';
			o[1] = hex[c >> 4];
			o[2] = hex[c & 15];
			o += 3;
		}
	}
	s->len = (size_t)(o - s->out);
}

/*
 * The length of the UTF-8 sequence at s (n bytes left), or 0 when it is
 * not valid: the rules of jansson's utf8_check_first/utf8_check_full.
 */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	size_t need, k;
	unsigned long cp, min;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		need = 1, min = 0x80, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		need = 2, min = 0x800, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		need = 3, min = 0x10000, cp = s[0] & 0x07;
	else
		return 0;
	if (n <= need)
		return 0;
	for (k = 1; k <= need; k++) {
		if ((s[k] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[k] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return need + 1;
}

/* One byte that JSON escapes: '"', '\\' or below 0x20. */
static void put_escape(struct sink *s, unsigned char c)
{
	put(s, '\\');
	switch (c) {
	case '"': put(s, '"'); break;
	case '\\': put(s, '\\'); break;
	case '\b': put(s, 'b'); break;
	case '\f': put(s, 'f'); break;
	case '\n': put(s, 'n'); break;
	case '\r': put(s, 'r'); break;
	case '\t': put(s, 't'); break;
	default:
		put_str(s, "u00");
		put(s, (unsigned char)hex[c >> 4]);
		put(s, (unsigned char)hex[c & 15]);
		break;
	}
}

/* A JSON string, quotes included.  Returns -1 on invalid UTF-8. */
static int put_json_string(struct sink *s, const char *text, size_t n)
{
	const unsigned char *p = (const unsigned char *)text;
	size_t i = 0, run = 0, seq;

	put(s, '"');
	while (i < n) {
		unsigned char c = p[i];

		if (c >= 0x80) {
			/* checked when the length was measured */
			seq = s->out ? 1 : utf8_seq(p + i, n - i);
			if (seq == 0)
				return -1;
			i += seq;
		} else if (c >= 0x20 && c != '"' && c != '\\') {
			i++;
		} else {
			put_plain(s, p + run, i - run);
			put_escape(s, c);
			run = ++i;
		}
	}
	put_plain(s, p + run, n - run);
	put(s, '"');
	return 0;
}

static int put_object(struct sink *s, const char *to, size_t to_len,
		      const char *subject, size_t subject_len)
{
	put_str(s, "{\"to\": ");
	if (put_json_string(s, to, to_len) < 0)
		return -1;
	put_str(s, ", \"subject\": ");
	if (put_json_string(s, subject, subject_len) < 0)
		return -1;
	put(s, '}');
	return 0;
}

char *message_json(const char *to, size_t to_len, const char *subject,
		   size_t subject_len)
{
	struct sink s = { NULL, 0, 0 };

	if (put_object(&s, to, to_len, subject, subject_len) < 0)
		return NULL;
	s.out = malloc(s.len + 1);
	if (s.out == NULL)
		return NULL;
	s.len = 0;
	(void)put_object(&s, to, to_len, subject, subject_len);
	s.out[s.len] = '\0';
	return s.out;
}

char *message_form(uint32_t id, const char *to, size_t to_len,
		   const char *subject, size_t subject_len, size_t *len,
		   char *err, size_t errlen)
{
	char digits[10];
	size_t nd = 0, k;
	uint32_t v = id;
	struct sink s = { NULL, 0, 1 };

	do {
		digits[nd++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	s.len = strlen("id=") + nd + strlen("&message=");

	if (put_object(&s, to, to_len, subject, subject_len) < 0) {
		snprintf(err, errlen,
			 "cannot encode letter %" PRIu32
			 " as JSON (invalid UTF-8?)",
			 id);
		return NULL;
	}
	s.out = malloc(s.len + 1);
	if (s.out == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	/* the head as it is: '=' and '&' are the form's own */
	memcpy(s.out, "id=", strlen("id="));
	s.len = strlen("id=");
	for (k = nd; k > 0; k--)
		s.out[s.len++] = digits[k - 1];
	memcpy(s.out + s.len, "&message=", strlen("&message="));
	s.len += strlen("&message=");
	(void)put_object(&s, to, to_len, subject, subject_len);
	s.out[s.len] = '\0';
	*len = s.len;
	return s.out;
}

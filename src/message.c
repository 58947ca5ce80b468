#include "message.h"

#include <jansson.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * The JSON text is jansson's (SPEC section 3: built by a JSON library):
 * the object {"to": ..., "subject": ...} dumped with JSON_PRESERVE_ORDER
 * by json_dumpb() into a buffer on the stack (a heap one only for a text
 * past it), so the only allocations are jansson's object and strings.
 * The URL encoding that follows is sender's own, in one pass into one
 * allocation of the exact size: curl_easy_escape() formatted each %XX
 * with its printf and grew its buffer byte by byte, a fifth of sender's
 * own work per letter (callgrind).  It encodes as curl_easy_escape()
 * does (A-Z a-z 0-9 - . _ ~ as they are, every other byte as %XX in
 * upper-case hex), and tests/unit/test_message.c checks that byte for
 * byte against both libraries over every byte value and many random
 * strings.
 */

/* Bytes of JSON text kept on the stack: a usual letter fits. */
#define JSON_STACK 4096

static const char hex[] = "0123456789ABCDEF";

static inline int unreserved(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
	       c == '~';
}

/* The length of p[0..n) URL-encoded. */
static size_t url_len(const unsigned char *p, size_t n)
{
	size_t i, len = 0;

	for (i = 0; i < n; i++)
		len += unreserved(p[i]) ? 1 : 3;
	return len;
}

/* p[0..n) URL-encoded into o, which has url_len(p, n) bytes; the end. */
static char *url_encode(char *o, const unsigned char *p, size_t n)
{
	size_t i;

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
	return o;
}

/*
 * The JSON text of the letter in out (len bytes available), or in a new
 * heap buffer when it does not fit: *heap then owns it.  Returns the
 * length, or 0 when jansson refuses the text (not valid UTF-8) or memory
 * runs out.
 */
static size_t json_text(const char *to, size_t to_len, const char *subject,
			size_t subject_len, char *out, size_t len, char **heap)
{
	json_t *obj = json_object();
	json_t *jto = json_stringn(to, to_len);
	json_t *jsubject = json_stringn(subject, subject_len);
	size_t n = 0;

	*heap = NULL;
	if (obj == NULL || jto == NULL || jsubject == NULL ||
	    json_object_set(obj, "to", jto) < 0 ||
	    json_object_set(obj, "subject", jsubject) < 0)
		goto done;
	n = json_dumpb(obj, out, len, JSON_PRESERVE_ORDER);
	if (n > len) {
		*heap = malloc(n);
		if (*heap == NULL ||
		    json_dumpb(obj, *heap, n, JSON_PRESERVE_ORDER) != n) {
			free(*heap);
			*heap = NULL;
			n = 0;
		}
	}
done:
	json_decref(jto);
	json_decref(jsubject);
	json_decref(obj);
	return n;
}

char *message_json(const char *to, size_t to_len, const char *subject,
		   size_t subject_len)
{
	char stack[JSON_STACK], *heap = NULL, *text;
	size_t n = json_text(to, to_len, subject, subject_len, stack,
			     sizeof(stack), &heap);

	if (n == 0)
		return NULL;
	text = heap ? realloc(heap, n + 1) : malloc(n + 1);
	if (text == NULL) {
		free(heap);
		return NULL;
	}
	if (heap == NULL)
		memcpy(text, stack, n);
	text[n] = '\0';
	return text;
}

char *message_form(uint32_t id, const char *to, size_t to_len,
		   const char *subject, size_t subject_len, size_t *len,
		   char *err, size_t errlen)
{
	char stack[JSON_STACK], *heap = NULL, head[32], *body, *end;
	const unsigned char *json;
	size_t n;
	int head_len;

	n = json_text(to, to_len, subject, subject_len, stack, sizeof(stack),
		      &heap);
	if (n == 0) {
		snprintf(err, errlen,
			 "cannot encode letter %" PRIu32
			 " as JSON (invalid UTF-8?)",
			 id);
		return NULL;
	}
	json = (const unsigned char *)(heap ? heap : stack);
	/* the head as it is: '=' and '&' are the form's own */
	head_len = snprintf(head, sizeof(head), "id=%" PRIu32 "&message=", id);
	body = malloc((size_t)head_len + url_len(json, n) + 1);
	if (body == NULL) {
		free(heap);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	memcpy(body, head, (size_t)head_len);
	end = url_encode(body + head_len, json, n);
	*end = '\0';
	free(heap);
	*len = (size_t)(end - body);
	return body;
}

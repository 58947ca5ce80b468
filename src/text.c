#include "text.h"

#include <stdio.h>

static int is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

void text_trim(const char **s, size_t *n)
{
	while (*n > 0 && is_space((*s)[*n - 1]))
		(*n)--;
	while (*n > 0 && is_space(**s))
		(*s)++, (*n)--;
}

int text_parse_id(const char *text, uint32_t *id, char *why, size_t whylen)
{
	unsigned long long v = 0;
	const char *p;

	if (text[0] == '\0') {
		snprintf(why, whylen, "id is empty");
		return -1;
	}
	for (p = text; *p; p++) {
		if (*p < '0' || *p > '9') {
			snprintf(why, whylen,
				 "id '%.40s' is not a plain decimal number",
				 text);
			return -1;
		}
		if (v <= UINT32_MAX)
			v = v * 10 + (unsigned)(*p - '0');
	}
	if (text[0] == '0' && text[1] != '\0') {
		snprintf(why, whylen, "id '%.40s' has leading zeros", text);
		return -1;
	}
	if (v > UINT32_MAX) {
		snprintf(why, whylen,
			 "id '%.40s' is out of range (0..4294967295)", text);
		return -1;
	}
	*id = (uint32_t)v;
	return 0;
}

char *text_put_id(char *o, uint32_t id)
{
	char digits[TEXT_ID_MAX];
	int n = 0;

	do {
		digits[n++] = (char)('0' + id % 10);
		id /= 10;
	} while (id);
	while (n > 0)
		*o++ = digits[--n];
	return o;
}

/* Bytes of one escaped byte, "\\xNN". */
#define ESCAPED_LEN (sizeof("\\x00") - 1)

size_t text_utf8_seq(const unsigned char *s, size_t n)
{
	size_t need, i;
	unsigned long cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		need = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		need = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		need = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (n < need)
		return 0;
	for (i = 1; i < need; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	/* overlong forms, surrogates and past U+10FFFF are not UTF-8 */
	if ((need == 3 && cp < 0x800) || (need == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return need;
}

/*
 * Length of the UTF-8 sequence at s (n bytes left) that may be shown as it
 * is, 0 if none: C1 controls (U+0080..U+009F, c2 80..c2 9f) act like ESC
 * on some terminals.
 */
static size_t shown_seq(const unsigned char *s, size_t n)
{
	if (s[0] == 0xc2 && n > 1 && s[1] <= 0x9f)
		return 0;
	return text_utf8_seq(s, n);
}

size_t text_safe(char *out, size_t outlen, const char *in, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = (const unsigned char *)in;
	size_t i = 0, o = 0, n;

	if (outlen == 0)
		return 0;
	while (i < len) {
		if (s[i] >= 0x20 && s[i] < 0x7f) { /* the usual: as it is */
			if (o + 1 >= outlen)
				break;
			out[o++] = (char)s[i++];
			continue;
		}
		n = s[i] < 0x20 || s[i] == 0x7f ? 0 : shown_seq(s + i, len - i);
		if (n == 0) {
			/* "\xNN": four bytes, and room for the NUL after */
			if (o + ESCAPED_LEN >= outlen)
				break;
			/* by hand: snprintf() was most of a letter's cost
			 * here, for the newline after the API's "1" */
			out[o] = '\\';
			out[o + 1] = 'x';
			out[o + 2] = hex[s[i] >> 4];
			out[o + 3] = hex[s[i] & 15];
			o += ESCAPED_LEN;
			i++;
			continue;
		}
		if (o + n >= outlen)
			break;
		for (; n > 0; n--)
			out[o++] = (char)s[i++];
	}
	out[o] = '\0';
	return o;
}

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

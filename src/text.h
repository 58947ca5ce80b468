/*
 * text: the one definition of two things that text from outside (the XML
 * file, the API's answers, the journal) is checked against: the white
 * space trimmed around a value, and a letter id (SPEC section 2); and how
 * such text is made safe before it reaches a terminal, a log shipper or a
 * record.
 */
#ifndef SENDER_TEXT_H
#define SENDER_TEXT_H

#include <stddef.h>
#include <stdint.h>

/*
 * Narrow the n bytes at *s to leave out the white space at both ends:
 * space, tab, CR and LF (XML's white space; not \v, \f nor U+00A0).
 * Nothing is copied or written.
 */
void text_trim(const char **s, size_t *n);

/*
 * Parse a letter id: a plain decimal 0..4294967295, no sign, no spaces, no
 * leading zeros.  Returns 0 and stores the id, or -1 with the reason in
 * why (and *id untouched).
 */
int text_parse_id(const char *text, uint32_t *id, char *why, size_t whylen);

/* The most digits of a letter id: 4294967295. */
#define TEXT_ID_MAX 10

/*
 * Write id at o (room for TEXT_ID_MAX bytes) as text_parse_id() reads it,
 * without a NUL; returns where the digits end.  By hand: snprintf() took
 * a tenth of what sender spent on a letter's form head, and most of the
 * store thread's instructions on MySQL's lists of ids.
 */
char *text_put_id(char *o, uint32_t id);

/*
 * Length of the one UTF-8 sequence at s (n > 0 bytes left), or 0 when it
 * is not strict UTF-8: a stray or cut sequence, an overlong form, a
 * surrogate, past U+10FFFF.  What jansson and RFC 3629 accept, no more.
 */
size_t text_utf8_seq(const unsigned char *s, size_t n);

/*
 * text_utf8_seq() with the common cases inline: ASCII, and two bytes
 * (Latin, Greek, Cyrillic ...), which are never overlong from 0xc2.  For
 * the loops over every byte of a letter.
 */
static inline size_t text_utf8_next(const unsigned char *s, size_t n)
{
	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf && n > 1 && (s[1] & 0xc0) == 0x80)
		return 2;
	return text_utf8_seq(s, n);
}

/*
 * Copy len bytes of in into out (outlen > 0 bytes, always NUL-terminated)
 * as valid UTF-8 without control characters: C0 and C1 controls, DEL and
 * bytes that are not part of a valid UTF-8 sequence become "\xNN", so
 * that an escape sequence from outside is shown, never obeyed.  Copying
 * stops at a character boundary when out is full.  Returns the bytes
 * written, without the NUL.
 */
size_t text_safe(char *out, size_t outlen, const char *in, size_t len);

#endif

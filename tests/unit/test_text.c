/*
 * text: white space trimmed around values, letter ids (SPEC section 2);
 * text from outside shown as valid UTF-8 without control characters.
 */
#include "harness.h"
#include "text.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define TRIMS_TO(in, want) trims_to(in, sizeof(in) - 1, want, sizeof(want) - 1)
static void trims_to(const char *in, size_t n, const char *want, size_t wn)
{
	const char *s = in;
	size_t len = n;

	text_trim(&s, &len);
	CHECK_MEM_EQ(s, len, want, wn);
	/* a span of the input itself: nothing copied */
	CHECK(s >= in && s + len <= in + n);
}

static void test_trim(void)
{
	TRIMS_TO(" \t\r\nab c\r\n\t d \n\r\t ", "ab c\r\n\t d");
	TRIMS_TO("x", "x");
	TRIMS_TO(" \t\r\n", "");
	TRIMS_TO("\v\fx\v\f", "\v\fx\v\f"); /* only the four */
	TRIMS_TO("\xc2\xa0x\xc2\xa0", "\xc2\xa0x\xc2\xa0");
	TRIMS_TO("a\0 ", "a\0");
}

/* Only the n bytes given are looked at, and the text is not written. */
static void test_trim_span(void)
{
	static const char text[] = "  1  \n2";
	const char *s = text;
	size_t n = 5; /* "  1  " */

	text_trim(&s, &n);
	CHECK_INT_EQ(s - text, 2);
	CHECK_INT_EQ(n, 1);
	CHECK_STR_EQ(text, "  1  \n2");
	s = text;
	n = 0;
	text_trim(&s, &n);
	CHECK(s == text);
	CHECK_INT_EQ(n, 0);
}

static void test_parse_id(void)
{
	static const char *const bad[] = {
		"",
		"abc",
		"-1",
		"+1",
		" 5",
		"5 ",
		"007",
		"00",
		"4294967296",
		"99999999999999999999",
		"18446744073709551616",
		"0x10",
		"1e3",
		"5\n",
		"\xef\xbc\x95",
		"4294967295 ",
		NULL,
	};
	char why[200];
	uint32_t id = 7;
	size_t i;

	CHECK_INT_EQ(text_parse_id("0", &id, why, sizeof(why)), 0);
	CHECK_INT_EQ(id, 0);
	CHECK_INT_EQ(text_parse_id("4294967295", &id, why, sizeof(why)), 0);
	CHECK_INT_EQ(id, 4294967295u);
	CHECK_INT_EQ(text_parse_id("10", &id, why, sizeof(why)), 0);
	CHECK_INT_EQ(id, 10);
	for (i = 0; bad[i]; i++) {
		why[0] = '\0';
		id = 7;
		int rc = text_parse_id(bad[i], &id, why, sizeof(why));

		if (!CHECK_INT_EQ(rc, -1))
			printf("    id '%s' was accepted as %u\n", bad[i],
			       (unsigned)id);
		CHECK(why[0] != '\0');
		CHECK_INT_EQ(id, 7); /* untouched on failure */
	}
}

/* The reason names the id as given, cut at 40 bytes. */
static void test_parse_id_why(void)
{
	char why[200];
	uint32_t id;

	CHECK_INT_EQ(text_parse_id("", &id, why, sizeof(why)), -1);
	CHECK_STR_EQ(why, "id is empty");
	CHECK_INT_EQ(text_parse_id("12a", &id, why, sizeof(why)), -1);
	CHECK_STR_EQ(why, "id '12a' is not a plain decimal number");
	CHECK_INT_EQ(text_parse_id("012", &id, why, sizeof(why)), -1);
	CHECK_STR_EQ(why, "id '012' has leading zeros");
	CHECK_INT_EQ(text_parse_id("4294967296", &id, why, sizeof(why)), -1);
	CHECK_STR_EQ(why, "id '4294967296' is out of range (0..4294967295)");
	CHECK_INT_EQ(text_parse_id("1234567890123456789012345678901234567890"
				   "999",
				   &id, why, sizeof(why)),
		     -1);
	CHECK_STR_EQ(why, "id '1234567890123456789012345678901234567890' is "
			  "out of range (0..4294967295)");
}

static const char *safe(const char *in, size_t len, size_t outlen)
{
	static char out[256];

	text_safe(out, outlen, in, len);
	return out;
}

static void test_controls_escaped(void)
{
	CHECK_STR_EQ(safe(LIT("a\x1b[2Jb"), 256), "a\\x1b[2Jb");
	CHECK_STR_EQ(safe(LIT("t\ta\nb\r\x7f"), 256),
		     "t\\x09a\\x0ab\\x0d\\x7f");
	CHECK_STR_EQ(safe(LIT("nul\0x"), 256), "nul\\x00x");
	/* C1 control CSI (U+009B) acts like ESC [ on some terminals */
	CHECK_STR_EQ(safe(LIT("\xc2\x9b"
			      "2J"),
			  256),
		     "\\xc2\\x9b2J");
}

static void test_utf8_kept_invalid_escaped(void)
{
	CHECK_STR_EQ(
		safe(LIT("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"), 256),
		"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
	CHECK_STR_EQ(safe(LIT("\xff\xfe"), 256), "\\xff\\xfe");
	CHECK_STR_EQ(safe(LIT("\xc0\xaf"), 256), "\\xc0\\xaf"); /* overlong */
	CHECK_STR_EQ(safe(LIT("\xed\xa0\x80"), 256),
		     "\\xed\\xa0\\x80");			/* D800 */
	CHECK_STR_EQ(safe(LIT("\xe2\x82"), 256), "\\xe2\\x82"); /* cut */
}

static void test_cut_at_boundary(void)
{
	/* never half an escape, never half a character */
	CHECK_STR_EQ(safe(LIT("ab\x1b"), 5), "ab");
	CHECK_STR_EQ(safe(LIT("a\xc3\xa9"), 3), "a");
	CHECK_STR_EQ(safe(LIT("abcdef"), 4), "abc");
	CHECK_STR_EQ(safe(LIT("abc"), 4), "abc");
	CHECK_INT_EQ((long)text_safe(NULL, 0, LIT("x")), 0);
}

/*
 * An id written is the decimal snprintf() writes, and text_parse_id()
 * reads it back: the edges, each power of ten and its neighbours, and a
 * spread of others.
 */
static void put_id_is(uint32_t id)
{
	char got[TEXT_ID_MAX + 1], want[16], why[128];
	uint32_t back = 0;
	char *end = text_put_id(got, id);

	*end = '\0';
	snprintf(want, sizeof(want), "%" PRIu32, id);
	if (!CHECK_STR_EQ(got, want) ||
	    !CHECK_INT_EQ(text_parse_id(got, &back, why, sizeof(why)), 0) ||
	    !CHECK(back == id))
		printf("    (id %" PRIu32 ")\n", id);
}

static void test_put_id(void)
{
	uint32_t p = 1, x = 2463534242u; /* xorshift32 */
	int i, before = h_failures();

	put_id_is(0);
	put_id_is(UINT32_MAX);
	for (i = 0; i < 10; i++, p *= 10) {
		put_id_is(p - 1);
		put_id_is(p);
		put_id_is(p + 1);
	}
	for (i = 0; i < 100000 && h_failures() == before; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		put_id_is(x >> (i % 32));
	}
}

static const struct h_test tests[] = {
	TEST(test_trim),
	TEST(test_trim_span),
	TEST(test_parse_id),
	TEST(test_parse_id_why),
	TEST(test_put_id),
	TEST(test_controls_escaped),
	TEST(test_utf8_kept_invalid_escaped),
	TEST(test_cut_at_boundary),
	{ NULL, NULL },
};

int main(int argc, char **argv)
{
	return h_main(argc, argv, tests);
}

/*
 * message: the JSON object and the form body of SPEC section 3, byte for
 * byte.
 */
#include "harness.h"
#include "buf.h"
#include "message.h"

#include <curl/curl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* message_json() of two C strings must give want exactly. */
#define JSON_IS(to, subject, want)                                      \
	json_is(to, sizeof(to) - 1, subject, sizeof(subject) - 1, want, \
		sizeof(want) - 1, __LINE__)
static void json_is(const char *to, size_t to_len, const char *subject,
		    size_t subject_len, const char *want, size_t want_len,
		    int from)
{
	char *json = message_json(to, to_len, subject, subject_len);

	if (!CHECK_MEM_EQ(json, json ? strlen(json) : 0, want, want_len))
		printf("    (from line %d)\n", from);
	free(json);
}

static void test_json_ascii(void)
{
	JSON_IS("ivan@example.com", "Hello, world",
		"{\"to\": \"ivan@example.com\", "
		"\"subject\": \"Hello, world\"}");
	JSON_IS("", "", "{\"to\": \"\", \"subject\": \"\"}");
	/* '/' and the other printable bytes go as they are */
	JSON_IS("a/b@c", "<b>&amp;</b> 100% ' ~ \x7f",
		"{\"to\": \"a/b@c\", \"subject\": \"<b>&amp;</b> 100% ' ~ "
		"\x7f\"}");
}

static void test_json_escapes(void)
{
	JSON_IS("a\"b\\c", "say \"hi\" \\o/",
		"{\"to\": \"a\\\"b\\\\c\", \"subject\": "
		"\"say \\\"hi\\\" \\\\o/\"}");
	JSON_IS("x", "\b\f\n\r\t\x01\x1f",
		"{\"to\": \"x\", \"subject\": "
		"\"\\b\\f\\n\\r\\t\\u0001\\u001F\"}");
	/* lengths are honoured, inner NUL included */
	JSON_IS("a\0b", "s", "{\"to\": \"a\\u0000b\", \"subject\": \"s\"}");
}

static void test_json_lengths(void)
{
	char *json = message_json("abcdef", 3, "xyz-and-more", 3);

	CHECK_STR_EQ(json, "{\"to\": \"abc\", \"subject\": \"xyz\"}");
	free(json);
}

static void test_json_utf8(void)
{
	/* kept raw, not as \u escapes; 4-byte sequences too */
	JSON_IS("иван@пример.рф", "Привет, мир! Ёё 😀",
		"{\"to\": \"иван@пример.рф\", \"subject\": "
		"\"Привет, мир! Ёё 😀\"}");
}

static void test_json_invalid_utf8(void)
{
	static const char *const bad[] = {
		"\xff", "\xd0", "\xc0\xaf", "\xed\xa0\x80", "a\x80", NULL,
	};
	char err[256] = "";
	size_t i, len = 7;
	char *form;

	for (i = 0; bad[i]; i++) {
		char *json = message_json("a", 1, bad[i], strlen(bad[i]));

		if (!CHECK(json == NULL))
			printf("    (bad[%zu] was encoded as '%s')\n", i, json);
		free(json);
	}
	form = message_form(77, "a", 1, "\xff", 1, &len, err, sizeof(err));
	CHECK(form == NULL);
	CHECK_CONTAINS(err, "77");
	free(form);
}

/* Decode %XX; anything but an unreserved byte or %XX is an error. */
static int percent_decode(const char *s, char *out, size_t outlen)
{
	size_t n = 0;
	unsigned v;

	for (; *s && n + 1 < outlen; s++) {
		if (*s == '%' && sscanf(s + 1, "%2X", &v) == 1 &&
		    strchr("0123456789ABCDEF", s[1]) &&
		    strchr("0123456789ABCDEF", s[2])) {
			out[n++] = (char)v;
			s += 2;
		} else if (strchr("abcdefghijklmnopqrstuvwxyz"
				  "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~",
				  *s)) {
			out[n++] = *s;
		} else {
			return -1;
		}
	}
	out[n] = '\0';
	return *s ? -1 : 0;
}

/* message_form() must give want exactly, and decode back to the JSON. */
static void form_is(uint32_t id, const char *to, const char *subject,
		    const char *want)
{
	char err[256] = "", decoded[4096];
	size_t len = 12345;
	char *form = message_form(id, to, strlen(to), subject, strlen(subject),
				  &len, err, sizeof(err));
	char *json = message_json(to, strlen(to), subject, strlen(subject));
	const char *value;

	if (!CHECK(form != NULL)) {
		printf("    err: %s\n", err);
		free(json);
		return;
	}
	CHECK_STR_EQ(form, want);
	CHECK_INT_EQ(len, strlen(form));
	value = strstr(form, "&message=");
	if (CHECK(value != NULL) &&
	    CHECK(percent_decode(value + 9, decoded, sizeof(decoded)) == 0))
		CHECK_STR_EQ(decoded, json);
	free(form);
	free(json);
}

static void test_form(void)
{
	form_is(1, "a@b.c", "hi",
		"id=1&message=%7B%22to%22%3A%20%22a%40b.c%22%2C%20%22subject"
		"%22%3A%20%22hi%22%7D");
	/* every reserved byte is percent-encoded; a space is %20 */
	form_is(42, "a@b.c", "x&y=z+1 %;/?#[]!$'()*,",
		"id=42&message=%7B%22to%22%3A%20%22a%40b.c%22%2C%20%22subject"
		"%22%3A%20%22x%26y%3Dz%2B1%20%25%3B%2F%3F%23%5B%5D%21%24%27%28"
		"%29%2A%2C%22%7D");
	form_is(7, "иван@пример.рф", "Привет",
		"id=7&message=%7B%22to%22%3A%20%22%D0%B8%D0%B2%D0%B0%D0%BD%40"
		"%D0%BF%D1%80%D0%B8%D0%BC%D0%B5%D1%80.%D1%80%D1%84%22%2C%20%22"
		"subject%22%3A%20%22%D0%9F%D1%80%D0%B8%D0%B2%D0%B5%D1%82"
		"%22%7D");
	/* quotes, backslashes and newlines: escaped by JSON, then encoded */
	form_is(3, "q\"b\\s", "l1\nl2",
		"id=3&message=%7B%22to%22%3A%20%22q%5C%22b%5C%5Cs%22%2C%20%22"
		"subject%22%3A%20%22l1%5Cnl2%22%7D");
}

static void test_form_ids(void)
{
	char err[256];
	size_t len;
	char *form;

	form = message_form(0, "a", 1, "s", 1, &len, err, sizeof(err));
	CHECK(form != NULL && strncmp(form, LIT("id=0&message=%7B")) == 0);
	free(form);
	form = message_form(4294967295u, "a", 1, "s", 1, &len, err,
			    sizeof(err));
	CHECK(form != NULL &&
	      strncmp(form, LIT("id=4294967295&message=%7B")) == 0);
	free(form);
}

/* A subject at the reader's cap: the body is three times as long. */
static void test_form_long(void)
{
	size_t n = 65536, len = 0, i, bad = 0;
	char *subject = malloc(n), err[256];
	char *form;

	if (!CHECK(subject != NULL))
		return;
	for (i = 0; i < n; i++)
		subject[i] = "a b&"[i % 4];
	form = message_form(9, "to", 2, subject, n, &len, err, sizeof(err));
	if (CHECK(form != NULL)) {
		CHECK_INT_EQ(len, strlen(form));
		CHECK_INT_EQ(len, strlen("id=9&message=") +
					  strlen("%7B%22to%22%3A%20%22to%22%2C"
						 "%20%22subject%22%3A%20%22") +
					  n / 4 * (1 + 3 + 1 + 3) +
					  strlen("%22%7D"));
		for (i = 0; i < len; i++)
			bad += form[i] == ' ' || form[i] == '+';
		CHECK_INT_EQ(bad, 0);
	}
	free(form);
	free(subject);
}

/*
 * The reference: how the body was built before message.c wrote it itself,
 * with jansson's json_dumps() of the object and curl_easy_escape() of its
 * text.  message_json() and message_form() must give the same bytes, or
 * refuse exactly what jansson refuses.
 */
static char *ref_json(const char *to, size_t to_len, const char *subject,
		      size_t subject_len)
{
	json_t *obj = json_object();
	json_t *jto = json_stringn(to, to_len);
	json_t *jsubject = json_stringn(subject, subject_len);
	char *text = NULL;

	if (obj && jto && jsubject && json_object_set(obj, "to", jto) == 0 &&
	    json_object_set(obj, "subject", jsubject) == 0)
		text = json_dumps(obj, JSON_PRESERVE_ORDER);
	json_decref(jto);
	json_decref(jsubject);
	json_decref(obj);
	return text;
}

static char *ref_form(uint32_t id, const char *to, size_t to_len,
		      const char *subject, size_t subject_len)
{
	char *json = ref_json(to, to_len, subject, subject_len), *escaped;
	char *form = NULL;
	size_t need;

	if (json == NULL)
		return NULL;
	escaped = curl_easy_escape(NULL, json, (int)strlen(json));
	if (escaped) {
		need = strlen(escaped) + sizeof("id=4294967295&message=");
		form = malloc(need);
		if (form)
			snprintf(form, need, "id=%" PRIu32 "&message=%s", id,
				 escaped);
	}
	curl_free(escaped);
	free(json);
	return form;
}

/*
 * The coder every comparison shares, as run.c keeps one for a whole run:
 * each letter meets the coder as the letters before it, refused ones
 * included, left it.  Its output goes after a marker in one
 * buffer, which a refusal must leave as it was.
 */
static struct message_coder *shared_coder;
static struct buf shared_out;

/* message_append() with the shared coder; 1 when it gives want (or NULL). */
static int shared_gives(uint32_t id, const char *to, size_t to_len,
			const char *subject, size_t subject_len,
			const char *want)
{
	char err[256] = "";
	int rc, ok;

	if (shared_coder == NULL) {
		shared_coder = message_coder_new();
		buf_init(&shared_out, 0);
	}
	buf_reset(&shared_out);
	buf_append(&shared_out, LIT("before|"));
	rc = message_append(shared_coder, id, to, to_len, subject, subject_len,
			    &shared_out, err, sizeof(err));
	if (want == NULL)
		ok = rc < 0 && strcmp(buf_str(&shared_out), "before|") == 0 &&
		     strstr(err, "invalid UTF-8") != NULL;
	else
		ok = rc == 0 && shared_out.len == 7 + strlen(want) &&
		     strcmp(shared_out.data + 7, want) == 0;
	return ok;
}

/* All three functions against the reference for one pair; 1 if they agree. */
static int same_as_reference(uint32_t id, const char *to, size_t to_len,
			     const char *subject, size_t subject_len)
{
	char err[256] = "";
	size_t len = 0;
	char *want_json = ref_json(to, to_len, subject, subject_len);
	char *want_form = ref_form(id, to, to_len, subject, subject_len);
	char *json = message_json(to, to_len, subject, subject_len);
	char *form = message_form(id, to, to_len, subject, subject_len, &len,
				  err, sizeof(err));
	int ok = (want_json == NULL) == (json == NULL) &&
		 (want_form == NULL) == (form == NULL) &&
		 (json == NULL || strcmp(json, want_json) == 0) &&
		 (form == NULL ||
		  (strcmp(form, want_form) == 0 && len == strlen(form))) &&
		 shared_gives(id, to, to_len, subject, subject_len, want_form);

	free(want_json);
	free(want_form);
	free(json);
	free(form);
	return ok;
}

static void hexdump(const char *what, const char *s, size_t n)
{
	size_t i;

	printf("    %s:", what);
	for (i = 0; i < n; i++)
		printf(" %02x", (unsigned char)s[i]);
	printf("\n");
}

/* Every byte value, and every pair of byte values, alone and in context. */
static void test_reference_bytes(void)
{
	unsigned a, b;
	size_t bad = 0;
	char s[4];

	for (a = 0; a < 256; a++) {
		s[0] = (char)a;
		if (!same_as_reference(a, (char *)s, 1, "x", 1) ||
		    !same_as_reference(a, "t", 1, (char *)s, 1)) {
			if (bad++ < 5)
				hexdump("differs", s, 1);
		}
		for (b = 0; b < 256; b++) {
			s[0] = 'z';
			s[1] = (char)a;
			s[2] = (char)b;
			if (!same_as_reference(b, "t", 1, s, 3) && bad++ < 5)
				hexdump("differs", s, 3);
		}
	}
	CHECK_INT_EQ(bad, 0);
}

/*
 * Every lead byte from 0xc0 with every second byte, and third and fourth
 * bytes at the edges of the continuation range: the limits of overlong
 * forms, surrogates and U+10FFFF all fall in there.
 */
static void test_reference_sequences(void)
{
	static const unsigned char third[] = { 0x7f, 0x80, 0x8f, 0x90,
					       0x9f, 0xa0, 0xbf, 0xc0 };
	static const unsigned char fourth[] = { 0x80, 0xbf, 0x41 };
	unsigned lead, b1;
	size_t i, k, bad = 0;
	char s[5];

	for (lead = 0xc0; lead < 0x100; lead++)
		for (b1 = 0; b1 < 256; b1++)
			for (i = 0; i < sizeof(third); i++)
				for (k = 0; k < sizeof(fourth); k++) {
					s[0] = (char)lead;
					s[1] = (char)b1;
					s[2] = (char)third[i];
					s[3] = (char)fourth[k];
					s[4] = 'x';
					if (!same_as_reference(1, "t", 1, s,
							       5) &&
					    bad++ < 5)
						hexdump("differs", s, 5);
				}
	CHECK_INT_EQ(bad, 0);
}

/* Random strings, biased towards what needs escaping or validating. */
static void test_reference_random(void)
{
	static const char *const pieces[] = {
		"a",
		"Z",
		"9",
		"-",
		".",
		"_",
		"~",
		" ",
		"%",
		"+",
		"&",
		"=",
		"\"",
		"\\",
		"/",
		"\n",
		"\r",
		"\t",
		"\b",
		"\f",
		"\x01",
		"\x1f",
		"\x7f",
		"\0",
		"@",
		"<",
		">",
		"'",
		"\xc3\xa9",
		"\xd0\x96",
		"\xe2\x82\xac",
		"\xf0\x9f\x98\x80",
		"\xef\xbf\xbf",
		"\xf4\x8f\xbf\xbf",
		"\xed\x9f\xbf",
		"\xee\x80\x80",
		/* invalid: lone, cut, overlong, surrogate, past U+10FFFF */
		"\x80",
		"\xbf",
		"\xc0\x80",
		"\xc1\xbf",
		"\xe0\x80\x80",
		"\xed\xa0\x80",
		"\xf4\x90\x80\x80",
		"\xf5",
		"\xff",
		"\xc3",
		"\xe2\x82",
		"\xf0\x9f\x98",
	};
	const size_t np = sizeof(pieces) / sizeof(pieces[0]);
	unsigned long state = 0x5eed1234u;
	char to[256], subject[256], *ref;
	size_t round, bad = 0, refused = 0;

	for (round = 0; round < 20000; round++) {
		size_t tn = 0, sn = 0, k, count;

		state = state * 6364136223846793005u + 1442695040888963407u;
		count = (state >> 33) % 12;
		for (k = 0; k < count; k++) {
			size_t i, plen;

			state = state * 6364136223846793005u +
				1442695040888963407u;
			i = (state >> 33) % np;
			/* a piece is its literal, the NUL piece one byte */
			plen = pieces[i][0] ? strlen(pieces[i]) : 1;
			if (k % 3 == 0) {
				memcpy(to + tn, pieces[i], plen);
				tn += plen;
			} else {
				memcpy(subject + sn, pieces[i], plen);
				sn += plen;
			}
		}
		/* now and then purely random bytes */
		if (round % 7 == 0)
			for (k = 0; k < 8; k++) {
				state = state * 6364136223846793005u +
					1442695040888963407u;
				subject[sn++] = (char)(state >> 40);
			}
		ref = ref_json(to, tn, subject, sn);
		refused += ref == NULL;
		free(ref);
		if (!same_as_reference((uint32_t)(state >> 32), to, tn, subject,
				       sn) &&
		    bad++ < 5) {
			hexdump("to", to, tn);
			hexdump("subject", subject, sn);
		}
	}
	CHECK_INT_EQ(bad, 0);
	/* the strings did test both ways */
	CHECK(refused > 1000 && refused < 19000);
}

static const struct h_test tests[] = {
	TEST(test_json_ascii),	      TEST(test_json_escapes),
	TEST(test_json_lengths),      TEST(test_json_utf8),
	TEST(test_json_invalid_utf8), TEST(test_form),
	TEST(test_form_ids),	      TEST(test_form_long),
	TEST(test_reference_bytes),   TEST(test_reference_sequences),
	TEST(test_reference_random),  { NULL, NULL },
};

int main(int argc, char **argv)
{
	int rc = h_main(argc, argv, tests);

	message_coder_free(shared_coder);
	buf_release(&shared_out);
	return rc;
}

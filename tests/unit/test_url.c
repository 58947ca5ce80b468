/*
 * url: the API URL checked (http and https only) and masked wherever it
 * is shown.
 */
#include "harness.h"
#include "url.h"

#include <string.h>

static const char *mask(const char *url)
{
	static char out[256];

	url_mask(url, out, sizeof(out));
	return out;
}

static void test_url_mask(void)
{
	CHECK_STR_EQ(mask("http://apiuser:secret@host/api?token=x"),
		     "http://***@host/api?***");
	CHECK_STR_EQ(mask("https://host:8443/api.php"),
		     "https://host:8443/api.php");
	CHECK_STR_EQ(mask("http://a@b@host/p#frag"), "http://***@host/p#***");
	CHECK_STR_EQ(mask("not a url?secret"), "not a url?***");
	/* an @ in the path is not userinfo */
	CHECK_STR_EQ(mask("http://host/a@b"), "http://host/a@b");
	CHECK_STR_EQ(mask(""), "");
	/* found by fuzz_config: a "://" in a fragment is no scheme */
	CHECK_STR_EQ(mask("#http://a:8080/x"), "#***");
	/* an unencoded '?' in a password leaks neither part of it */
	CHECK_STR_EQ(mask("http://user:p?ss@host/x"), "http://***@?***");
	/* found by fuzz_config: the '#' before the '@' began a fragment */
	CHECK_STR_EQ(mask("x@#y@://z@w"), "***@#***");
}

static void test_url_check(void)
{
	char err[256];

	CHECK_INT_EQ(
		url_check("http://127.0.0.1:8080/api.php", err, sizeof(err)),
		0);
	CHECK_INT_EQ(url_check("HTTPS://example.com/", err, sizeof(err)), 0);
	CHECK_INT_EQ(url_check("", err, sizeof(err)), -1);
	CHECK_INT_EQ(url_check("not a url", err, sizeof(err)), -1);
	CHECK_INT_EQ(url_check("htp://example.com/", err, sizeof(err)), -1);
	CHECK(strstr(err, "htp") != NULL);
	CHECK_INT_EQ(url_check("file:///etc/passwd", err, sizeof(err)), -1);
	CHECK_INT_EQ(url_check("dict://host/", err, sizeof(err)), -1);
	CHECK_INT_EQ(url_check("http://", err, sizeof(err)), -1);
	/* libcurl takes these for http://host/: a slash too few or many */
	CHECK_INT_EQ(url_check("http:///nohost", err, sizeof(err)), -1);
	CHECK(strstr(err, "two slashes") != NULL);
	CHECK_INT_EQ(url_check("http:/host/api", err, sizeof(err)), -1);
	CHECK_INT_EQ(url_check("HTTPS:///host/api", err, sizeof(err)), -1);
	CHECK_INT_EQ(url_check("https://host/a///b", err, sizeof(err)), 0);
}

static const struct h_test tests[] = {
	TEST(test_url_mask),
	TEST(test_url_check),
	{ NULL, NULL },
};

int main(int argc, char **argv)
{
	return h_main(argc, argv, tests);
}

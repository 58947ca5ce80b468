/*
 * cfg: typed keys with defaults, an INI file, the environment and the
 * command line, lowest first; every error names the file, line and key.
 */
#include "cfg.h"
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct cfg_key api_keys[] = {
	{ "api", "url", CFG_STRING, "http://default.example/", 0, 0,
	  "UNIT_CFG_URL", "where letters go" },
	{ "api", "timeout", CFG_SECONDS, "30", 0, 3600, NULL, "seconds" },
	{ "api", "concurrency", CFG_UINT, "32", 1, 1024, "UNIT_CFG_CONCURRENCY",
	  "in flight" },
	{ NULL, NULL, CFG_STRING, NULL, 0, 0, NULL, NULL },
};

static const struct cfg_key extra_keys[] = {
	{ "extra", "path", CFG_STRING, "x.db", 0, 0, NULL, "a file" },
	{ "extra", "password", CFG_SECRET, "", 0, 0, "UNIT_CFG_PASSWORD",
	  "never printed" },
	{ "extra", "file", CFG_PATH, "f.db", 0, 0, NULL, "beside the INI" },
	{ NULL, NULL, CFG_STRING, NULL, 0, 0, NULL, NULL },
};

static const struct cfg_key *const tables[] = { api_keys, extra_keys, NULL };

static char err[1024];

static int init(struct cfg *c)
{
	err[0] = '\0';
	if (!CHECK_INT_EQ(cfg_init(c, tables, err, sizeof(err)), 0)) {
		printf("    cfg_init: %s\n", err);
		return -1;
	}
	return 0;
}

static void check_origin(const struct cfg *c, const char *section,
			 const char *name, const char *want)
{
	const struct cfg_entry *e = cfg_find(c, section, name);

	if (CHECK(e != NULL))
		CHECK_STR_EQ(e->origin, want);
}

static void test_defaults(void)
{
	struct cfg c;

	if (init(&c) < 0)
		return;
	CHECK_INT_EQ(c.n, 6);
	CHECK_STR_EQ(cfg_str(&c, "api", "url"), "http://default.example/");
	CHECK(cfg_seconds(&c, "api", "timeout") == 30.0);
	CHECK_INT_EQ(cfg_uint(&c, "api", "concurrency"), 32);
	CHECK_STR_EQ(cfg_str(&c, "extra", "path"), "x.db");
	CHECK_STR_EQ(cfg_str(&c, "extra", "password"), "");
	check_origin(&c, "api", "url", "default");
	CHECK(cfg_find(&c, "api", "nope") == NULL);
	CHECK(cfg_find(&c, "nope", "url") == NULL);
	cfg_release(&c);
	CHECK_INT_EQ(c.n, 0);
}

static void test_file(void)
{
	const char *path = h_data("cfg_ok.ini");
	char origin[600];
	struct cfg c;

	if (init(&c) < 0)
		return;
	if (!CHECK_INT_EQ(cfg_load_file(&c, path, err, sizeof(err)), 0))
		printf("    %s\n", err);
	CHECK_STR_EQ(cfg_str(&c, "api", "url"), "http://file.example/api.php");
	CHECK(cfg_seconds(&c, "api", "timeout") == 2.5);
	CHECK_INT_EQ(cfg_uint(&c, "api", "concurrency"), 8);
	CHECK_STR_EQ(cfg_str(&c, "extra", "path"), "/var/lib/sender/x.db");
	snprintf(origin, sizeof(origin), "%s:5", path);
	check_origin(&c, "api", "url", origin);
	snprintf(origin, sizeof(origin), "%s:7", path);
	check_origin(&c, "api", "concurrency", origin);
	check_origin(&c, "extra", "password", "default");
	cfg_release(&c);
}

/* Windows line ends and a byte order mark are read like any file. */
static void test_file_crlf_bom(void)
{
	static const char text[] = "\xef\xbb\xbf[api]\r\nconcurrency = 8\r\n"
				   "url = http://crlf/\r\n";
	const char *path = h_tmp("crlf.ini");
	struct cfg c;

	h_write(path, text, sizeof(text) - 1);
	if (init(&c) < 0)
		return;
	if (!CHECK_INT_EQ(cfg_load_file(&c, path, err, sizeof(err)), 0))
		printf("    %s\n", err);
	CHECK_INT_EQ(cfg_uint(&c, "api", "concurrency"), 8);
	CHECK_STR_EQ(cfg_str(&c, "api", "url"), "http://crlf/");
	cfg_release(&c);
}

/*
 * Loading text must fail with an error naming the file, line and what
 * (the key, or the section).
 */
#define BAD_FILE(text, line, what) bad_file(text, line, what, __LINE__)
static void bad_file(const char *text, int line, const char *what, int from)
{
	const char *path = h_tmp("bad.ini");
	char where[600];
	int before = h_failures();
	struct cfg c;

	h_write(path, text, strlen(text));
	if (init(&c) < 0)
		return;
	err[0] = '\0';
	CHECK_INT_EQ(cfg_load_file(&c, path, err, sizeof(err)), -1);
	snprintf(where, sizeof(where), "%s:%d:", path, line);
	CHECK_CONTAINS(err, where);
	CHECK_CONTAINS(err, what);
	if (h_failures() != before)
		printf("    (from line %d, file:\n%s)\n", from, text);
	cfg_release(&c);
}

static void test_file_errors(void)
{
	BAD_FILE("[api]\nurl = x\nbogus = 1\n", 3, "bogus");
	BAD_FILE("[api]\nurl = x\n\n[nope]\nkey = 1\n", 4, "nope");
	BAD_FILE("[api]\n\n[nope]\n", 3, "nope"); /* even with no keys */
	BAD_FILE("url = x\n[api]\n", 1, "url");
	BAD_FILE("; comment\n[api]\nconcurrency = ten\n", 3, "concurrency");
	BAD_FILE("[api]\nconcurrency =\n", 2, "concurrency");
	BAD_FILE("[api]\nconcurrency = 0\n", 2, "concurrency");
	BAD_FILE("[api]\nconcurrency = 1025\n", 2, "concurrency");
	BAD_FILE("[api]\nconcurrency = -1\n", 2, "concurrency");
	BAD_FILE("[api]\nconcurrency = 8.5\n", 2, "concurrency");
	BAD_FILE("[api]\nconcurrency = 0x10\n", 2, "concurrency");
	BAD_FILE("[api]\nconcurrency = 18446744073709551617\n", 2,
		 "concurrency");
	BAD_FILE("[api]\nconcurrency = 99999999999999999999999\n", 2,
		 "concurrency");
	BAD_FILE("[api]\ntimeout = 0\n", 2, "timeout");
	BAD_FILE("[api]\ntimeout = -5\n", 2, "timeout");
	BAD_FILE("[api]\ntimeout = 3601\n", 2, "timeout");
	BAD_FILE("[api]\ntimeout = soon\n", 2, "timeout");
	BAD_FILE("[api]\ntimeout = 5s\n", 2, "timeout");
	BAD_FILE("[api]\ntimeout = nan\n", 2, "timeout");
	BAD_FILE("[api]\ntimeout = inf\n", 2, "timeout");
	BAD_FILE("[api]\nurl = x\nthis is not ini\n", 3, "");
	BAD_FILE("[api\nurl = x\n", 1, "");
	/* the error is on the right line after many good ones */
	BAD_FILE("[api]\n; 2\n; 3\nurl = a\n\n\n; 7\ntimeout = 1\n"
		 "concurrency = 2000\n",
		 9, "concurrency");
}

static void test_missing_file(void)
{
	struct cfg c;

	if (init(&c) < 0)
		return;
	CHECK_INT_EQ(cfg_load_file(&c, h_tmp("none.ini"), err, sizeof(err)),
		     -1);
	CHECK_CONTAINS(err, h_tmp("none.ini"));
	CHECK_CONTAINS(err, "No such file or directory");
	cfg_release(&c);
}

/* A key indented under another is a key, not more of the last value. */
static void test_indented_keys(void)
{
	static const char text[] = "[api]\n  url = http://indented/\n"
				   "  concurrency = 7\n";
	const char *path = h_tmp("indented.ini");
	struct cfg c;
	int rc;

	h_write(path, text, sizeof(text) - 1);
	if (init(&c) < 0)
		return;
	rc = cfg_load_file(&c, path, err, sizeof(err));
	if (rc == 0) {
		CHECK_STR_EQ(cfg_str(&c, "api", "url"), "http://indented/");
		CHECK_INT_EQ(cfg_uint(&c, "api", "concurrency"), 7);
	} else {
		CHECK_CONTAINS(err, path);
	}
	cfg_release(&c);
}

static void test_env(void)
{
	struct cfg c;

	if (init(&c) < 0)
		return;
	setenv("UNIT_CFG_URL", "http://env.example/", 1);
	setenv("UNIT_CFG_PASSWORD", "s3cret", 1);
	unsetenv("UNIT_CFG_CONCURRENCY");
	CHECK_INT_EQ(cfg_load_env(&c, err, sizeof(err)), 0);
	CHECK_STR_EQ(cfg_str(&c, "api", "url"), "http://env.example/");
	CHECK_STR_EQ(cfg_str(&c, "extra", "password"), "s3cret");
	CHECK_INT_EQ(cfg_uint(&c, "api", "concurrency"), 32);
	check_origin(&c, "api", "url", "$UNIT_CFG_URL");
	/* a bad value names the variable and the key */
	setenv("UNIT_CFG_CONCURRENCY", "lots", 1);
	CHECK_INT_EQ(cfg_load_env(&c, err, sizeof(err)), -1);
	CHECK_CONTAINS(err, "$UNIT_CFG_CONCURRENCY");
	CHECK_CONTAINS(err, "concurrency");
	CHECK_INT_EQ(cfg_uint(&c, "api", "concurrency"), 32);
	cfg_release(&c);
}

/* A key without its own variable has SENDER_<SECTION>_<NAME>. */
static void test_env_derived_names(void)
{
	char name[128];
	struct cfg c;

	cfg_env_name(&extra_keys[0], name, sizeof(name));
	CHECK_STR_EQ(name, "SENDER_EXTRA_PATH");
	cfg_env_name(&api_keys[0], name, sizeof(name));
	CHECK_STR_EQ(name, "UNIT_CFG_URL");
	if (init(&c) < 0)
		return;
	setenv("SENDER_EXTRA_PATH", "/env/x.db", 1);
	setenv("SENDER_API_TIMEOUT", "-3", 1);
	CHECK_INT_EQ(cfg_load_env(&c, err, sizeof(err)), -1);
	CHECK_CONTAINS(err, "$SENDER_API_TIMEOUT");
	CHECK_CONTAINS(err, "timeout");
	unsetenv("SENDER_API_TIMEOUT");
	CHECK_INT_EQ(cfg_load_env(&c, err, sizeof(err)), 0);
	CHECK_STR_EQ(cfg_str(&c, "extra", "path"), "/env/x.db");
	check_origin(&c, "extra", "path", "$SENDER_EXTRA_PATH");
	unsetenv("SENDER_EXTRA_PATH");
	cfg_release(&c);
}

/* default < file < environment < command line, whatever is set twice. */
static void test_precedence(void)
{
	struct cfg c;

	if (init(&c) < 0)
		return;
	setenv("UNIT_CFG_URL", "http://env.example/", 1);
	setenv("UNIT_CFG_CONCURRENCY", "12", 1);
	CHECK_INT_EQ(cfg_load_file(&c, h_data("cfg_ok.ini"), err, sizeof(err)),
		     0);
	CHECK_INT_EQ(cfg_load_env(&c, err, sizeof(err)), 0);
	CHECK_INT_EQ(cfg_set(&c, "api", "concurrency", "16", "--concurrency",
			     err, sizeof(err)),
		     0);
	CHECK_STR_EQ(cfg_str(&c, "extra", "password"), ""); /* default */
	CHECK(cfg_seconds(&c, "api", "timeout") == 2.5);    /* file */
	CHECK_STR_EQ(cfg_str(&c, "api", "url"), "http://env.example/");
	CHECK_INT_EQ(cfg_uint(&c, "api", "concurrency"), 16); /* command */
	check_origin(&c, "api", "concurrency", "--concurrency");
	cfg_release(&c);
}

static void test_set(void)
{
	struct cfg c;

	if (init(&c) < 0)
		return;
	CHECK_INT_EQ(cfg_set(&c, "api", "concurrency", "1024", "-j", err,
			     sizeof(err)),
		     0);
	CHECK_INT_EQ(cfg_uint(&c, "api", "concurrency"), 1024);
	/* a refused value leaves the last good one */
	CHECK_INT_EQ(cfg_set(&c, "api", "concurrency", "1025", "-j", err,
			     sizeof(err)),
		     -1);
	CHECK_CONTAINS(err, "-j");
	CHECK_CONTAINS(err, "concurrency");
	CHECK_CONTAINS(err, "1025");
	CHECK_INT_EQ(cfg_uint(&c, "api", "concurrency"), 1024);
	CHECK_INT_EQ(
		cfg_set(&c, "api", "nope", "1", "--nope", err, sizeof(err)),
		-1);
	CHECK_CONTAINS(err, "nope");
	CHECK_INT_EQ(cfg_set(&c, "store", "backend", "x", "--backend", err,
			     sizeof(err)),
		     -1);
	CHECK_CONTAINS(err, "backend");
	CHECK_INT_EQ(
		cfg_set(&c, "api", "timeout", "0.25", "cli", err, sizeof(err)),
		0);
	CHECK(cfg_seconds(&c, "api", "timeout") == 0.25);
	cfg_release(&c);
}

/* A CFG_PATH value in a file is relative to the file's directory. */
static void test_path_beside_file(void)
{
	const char *path = h_tmp("paths.ini");
	const char *ini = "[extra]\nfile = data/x.db\npath = rel.db\n";
	char want[1200];
	struct cfg c;

	if (init(&c) < 0)
		return;
	h_write(path, ini, strlen(ini));
	CHECK_INT_EQ(cfg_load_file(&c, path, err, sizeof(err)), 0);
	snprintf(want, sizeof(want), "%.*s/data/x.db",
		 (int)(strrchr(path, '/') - path), path);
	CHECK_STR_EQ(cfg_str(&c, "extra", "file"), want);
	/* a plain string key is left alone */
	CHECK_STR_EQ(cfg_str(&c, "extra", "path"), "rel.db");
	ini = "[extra]\nfile = /abs/x.db\n";
	h_write(path, ini, strlen(ini));
	CHECK_INT_EQ(cfg_load_file(&c, path, err, sizeof(err)), 0);
	CHECK_STR_EQ(cfg_str(&c, "extra", "file"), "/abs/x.db");
	/* set otherwise (environment, options): as given */
	CHECK_INT_EQ(
		cfg_set(&c, "extra", "file", "y.db", "--x", err, sizeof(err)),
		0);
	CHECK_STR_EQ(cfg_str(&c, "extra", "file"), "y.db");
	cfg_release(&c);
}

/* SENDER_* variables that set no key are named; known ones are not. */
static void test_unknown_env(void)
{
	char *env[] = { "HOME=/root",
			"SENDER_EXTRA_PATH=x",
			"SENDER_CONFIG=/x.ini",
			"SENDER_API_URLL=x",
			"SENDER_NOPE",
			"UNIT_CFG_URL=y",
			NULL };
	char out[256];
	struct cfg c;

	if (init(&c) < 0)
		return;
	CHECK_INT_EQ(cfg_unknown_env(&c, env, out, sizeof(out)), 2);
	CHECK_STR_EQ(out, "SENDER_API_URLL, SENDER_NOPE");
	CHECK_INT_EQ(cfg_unknown_env(&c, env + 1, out, 10), 2);
	CHECK(strlen(out) < 10);
	cfg_release(&c);
}

static const struct h_test tests[] = {
	TEST(test_defaults),
	TEST(test_file),
	TEST(test_file_crlf_bom),
	TEST(test_file_errors),
	TEST(test_missing_file),
	TEST(test_indented_keys),
	TEST(test_env),
	TEST(test_env_derived_names),
	TEST(test_precedence),
	TEST(test_set),
	TEST(test_path_beside_file),
	TEST(test_unknown_env),
	{ NULL, NULL },
};

int main(int argc, char **argv)
{
	return h_main(argc, argv, tests);
}

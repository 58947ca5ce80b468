/*
 * reader: letters out of XML (SPEC section 2), one at a time, in constant
 * memory, with nothing loaded from outside the file.
 */
#include "harness.h"
#include "reader.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* The message and the letter of the last reader_next() in a helper. */
static char msg[1024];
static struct letter last;

static struct reader *open_path(const char *path)
{
	char err[512] = "";
	struct reader *r = reader_open(path, err, sizeof(err));

	if (!CHECK(r != NULL))
		printf("    reader_open('%s'): %s\n", path, err);
	return r;
}

/* The next item must be a letter with these fields. */
#define NEXT_LETTER(r, id, to, subject) \
	next_letter(r, id, to, subject, sizeof(subject) - 1, __LINE__)
static void next_letter(struct reader *r, uint32_t id, const char *to,
			const char *subject, size_t subject_len, int from)
{
	struct letter l;
	int before = h_failures();
	enum reader_status st;

	msg[0] = '\0';
	st = reader_next(r, &l, msg, sizeof(msg));
	if (CHECK_INT_EQ(st, READER_LETTER)) {
		CHECK_INT_EQ(l.id, id);
		CHECK_MEM_EQ(l.to, l.to_len, to, strlen(to));
		CHECK_INT_EQ(strlen(l.to), l.to_len);
		CHECK_MEM_EQ(l.subject, l.subject_len, subject, subject_len);
		CHECK_INT_EQ(strlen(l.subject), l.subject_len);
	}
	if (h_failures() != before)
		printf("    (letter %u expected at line %d; msg '%s')\n",
		       (unsigned)id, from, msg);
}

/* The next item must have this status; msg is left in the global. */
#define NEXT_STATUS(r, status) next_status(r, status, __LINE__)
static int next_status(struct reader *r, enum reader_status want, int from)
{
	enum reader_status st;

	msg[0] = '\0';
	st = reader_next(r, &last, msg, sizeof(msg));
	if (!CHECK_INT_EQ(st, want)) {
		printf("    (expected at line %d; msg '%s'", from, msg);
		if (st == READER_LETTER)
			printf(", got letter %u", (unsigned)last.id);
		printf(")\n");
		return 0;
	}
	return 1;
}

/* The 1-based line of path holding needle, or -1. */
static long line_of(const char *path, const char *needle)
{
	char *line = NULL;
	size_t alloc = 0;
	long n = 0, found = -1;
	FILE *f = fopen(path, "r");

	while (f && found < 0 && getline(&line, &alloc, f) > 0)
		if (n++, strstr(line, needle))
			found = n;
	free(line);
	if (f)
		fclose(f);
	return found;
}

/*
 * msg must start with "path:line:" (and a column, for XML errors); line 0
 * stands for any line.
 */
static void check_where(const char *path, long line, int with_col)
{
	char want[600];
	const char *rest;
	char *end;

	if (line == 0 && strncmp(msg, path, strlen(path)) == 0 &&
	    msg[strlen(path)] == ':')
		line = strtol(msg + strlen(path) + 1, NULL, 10);
	snprintf(want, sizeof(want), "%s:%ld:", path, line);
	if (!CHECK(strncmp(msg, want, strlen(want)) == 0)) {
		printf("    msg '%s' should start with '%s'\n", msg, want);
		return;
	}
	rest = msg + strlen(want);
	if (with_col) {
		long col = strtol(rest, &end, 10);

		CHECK(end != rest && col >= 0 && *end == ':');
	} else {
		CHECK(*rest == ' '); /* no column for an invalid letter */
	}
}

static void test_open_missing(void)
{
	char err[512] = "";

	CHECK(reader_open(h_tmp("nope.xml"), err, sizeof(err)) == NULL);
	CHECK_CONTAINS(err, h_tmp("nope.xml"));
	CHECK_CONTAINS(err, "No such file or directory");
}

static void test_entities_and_cdata(void)
{
	struct reader *r = open_path(h_data("entities.xml"));

	if (r == NULL)
		return;
	NEXT_LETTER(r, 1, "a&b@example.com",
		    "<>&\"' AB\xd0\x9f\xf0\x9f\x98\x80 Hello, Webjet & Co!");
	NEXT_LETTER(r, 2, "cdata@example.com", "a<b>&amp;</b> z");
	NEXT_STATUS(r, READER_END);
	NEXT_STATUS(r, READER_END); /* and it stays there */
	reader_free(r);
}

static void test_trim(void)
{
	struct reader *r = open_path(h_data("trim.xml"));

	if (r == NULL)
		return;
	/* only space, tab, CR, LF at both ends; the inside byte for byte */
	NEXT_LETTER(r, 1, "a@example.com", "Hello,   big\n  world\r!");
	NEXT_LETTER(r, 2, "b@example.com", "\xc2\xa0nbsp\xc2\xa0");
	NEXT_LETTER(r, 3, "c@example.com", ""); /* blank subject: valid */
	NEXT_STATUS(r, READER_END);
	reader_free(r);
}

static void test_cyrillic(void)
{
	struct reader *r = open_path(h_data("cyrillic.xml"));

	if (r == NULL)
		return;
	NEXT_LETTER(r, 1, "иван@пример.рф", "Привет, мир! Ёё — «тест»");
	NEXT_STATUS(r, READER_END);
	reader_free(r);
}

/* A declared legacy encoding is converted: the text is UTF-8 after. */
static void test_declared_encoding(void)
{
	static const char doc[] =
		"<?xml version=\"1.0\" encoding=\"windows-1251\"?>\n"
		"<e><email id=\"1\"><to>a@example.com</to>"
		"<subject>\xcf\xf0\xe8\xe2\xe5\xf2</subject></email></e>\n";
	struct reader *r;

	h_write(h_tmp("cp1251.xml"), doc, sizeof(doc) - 1);
	r = open_path(h_tmp("cp1251.xml"));
	if (r == NULL)
		return;
	NEXT_LETTER(r, 1, "a@example.com", "Привет");
	NEXT_STATUS(r, READER_END);
	reader_free(r);
}

static void test_ids_in_file(void)
{
	static const char *const bad[] = {
		"note=\"no id\"",
		"id=\"\"",
		"id=\"abc\"",
		"id=\"-1\"",
		"id=\"+1\"",
		"id=\" 5\"",
		"id=\"5 \"",
		"id=\"007\"",
		"id=\"4294967296\"",
		"id=\"99999999999999999999\"",
		NULL,
	};
	const char *path = h_data("ids.xml");
	struct reader *r = open_path(path);
	size_t i;

	if (r == NULL)
		return;
	NEXT_LETTER(r, 0, "zero@example.com", "s");
	NEXT_LETTER(r, 4294967295u, "max@example.com", "s");
	for (i = 0; bad[i]; i++) {
		if (NEXT_STATUS(r, READER_INVALID))
			check_where(path, line_of(path, bad[i]), 0);
		else
			printf("    (the letter with %s)\n", bad[i]);
	}
	NEXT_LETTER(r, 42, "last@example.com", "s"); /* the run goes on */
	NEXT_STATUS(r, READER_END);
	reader_free(r);
}

static void test_fields(void)
{
	const char *path = h_data("fields.xml");
	struct reader *r = open_path(path);

	if (r == NULL)
		return;
	if (NEXT_STATUS(r, READER_INVALID)) {
		check_where(path, line_of(path, "id=\"1\""), 0);
		CHECK_CONTAINS(msg, "<to>");
	}
	if (NEXT_STATUS(r, READER_INVALID)) {
		check_where(path, line_of(path, "id=\"2\""), 0);
		CHECK_CONTAINS(msg, "<subject>");
	}
	NEXT_LETTER(r, 3, "c@example.com", "");
	NEXT_LETTER(r, 4, "d@example.com", "");
	/* 6 is not directly under the root; <to> inside <note> is not it */
	NEXT_LETTER(r, 7, "g@example.com", "abc");
	NEXT_LETTER(r, 10, "j@example.com", "order is free");
	NEXT_STATUS(r, READER_END);
	reader_free(r);
}

/*
 * Text the parser does not hand over as one text node (an element inside
 * a field, an id that is the DTD's default) is read all the same, as
 * libxml2's copying calls put it together; plain text is read in place.
 */
static void test_text_from_several_nodes(void)
{
	static const char doc[] =
		"<?xml version=\"1.0\"?>\n"
		"<!DOCTYPE e [\n"
		"<!ENTITY n \"12\">\n"
		"<!ENTITY who \"bob\">\n"
		"<!ATTLIST email id CDATA \"77\">\n"
		"]>\n"
		"<e>\n"
		"<email id=\"1&n;\"><to>a@example.com</to>"
		"<subject> x<b>bold</b>y &who; </subject></email>\n"
		"<email><to>d@example.com</to><subject>default</subject></email>\n"
		"<email x:id=\"9\" id=\"3\" xmlns:x=\"urn:x\">"
		"<to>  <i>c</i>@example.com </to>"
		"<subject><![CDATA[a]]>b&#65;&amp;</subject></email>\n"
		"<email id=\"4\"><to>e@example.com</to><subject/></email>\n"
		"</e>\n";
	struct reader *r;

	h_write(h_tmp("nodes.xml"), doc, sizeof(doc) - 1);
	r = open_path(h_tmp("nodes.xml"));
	if (r == NULL)
		return;
	NEXT_LETTER(r, 112, "a@example.com", "xboldy bob");
	NEXT_LETTER(r, 77, "d@example.com", "default");
	NEXT_LETTER(r, 3, "c@example.com", "abA&");
	NEXT_LETTER(r, 4, "e@example.com", "");
	NEXT_STATUS(r, READER_END);
	reader_free(r);
}

static void test_stdin(void)
{
	int fd = open(h_data("cyrillic.xml"), O_RDONLY);
	struct reader *r;

	if (!CHECK(fd >= 0) || !CHECK(dup2(fd, 0) == 0))
		return;
	close(fd);
	r = open_path("-");
	if (r == NULL)
		return;
	CHECK_STR_EQ(reader_name(r), "<stdin>");
	NEXT_LETTER(r, 1, "иван@пример.рф", "Привет, мир! Ёё — «тест»");
	NEXT_STATUS(r, READER_END);
	reader_free(r);
}

static void test_malformed_in_the_middle(void)
{
	const char *path = h_data("malformed.xml");
	struct reader *r = open_path(path);

	if (r == NULL)
		return;
	NEXT_LETTER(r, 1, "a@example.com", "one");
	NEXT_LETTER(r, 2, "b@example.com", "two");
	NEXT_LETTER(r, 3, "c@example.com", "three");
	if (NEXT_STATUS(r, READER_ERROR))
		check_where(path, line_of(path, "oops"), 1);
	NEXT_STATUS(r, READER_ERROR); /* and it stays there */
	reader_free(r);
}

static void test_truncated(void)
{
	const char *path = h_data("truncated.xml");
	struct reader *r = open_path(path);

	if (r == NULL)
		return;
	NEXT_LETTER(r, 1, "a@example.com", "one");
	NEXT_LETTER(r, 2, "b@example.com", "two");
	if (NEXT_STATUS(r, READER_ERROR))
		check_where(path, line_of(path, "id=\"3\""), 1);
	reader_free(r);
}

/*
 * Documents that break at various places.  want lists the ids returned
 * before READER_ERROR, ending with -1; line is where the error is.
 */
static const struct broken {
	const char *doc;
	long want[4];
	long line;
} broken[] = {
	{ "<r><email id=\"1\"><to>a</to><subject>s</subject></email>\n"
	  "<email id=\"2\"><to>b</to><subject>s</email></r>\n",
	  { 1, -1 },
	  2 },
	/* the error right after a complete letter, nothing in between */
	{ "<r>\n<email id=\"1\"><to>a</to><subject>s</subject></email>\n"
	  "<email id=\"2\"><to>b</to><subject>s</subject></email></x>\n",
	  { 1, 2, -1 },
	  3 },
	{ "<r><email id=\"1\"><to>a</to><subject>s</subject></email>"
	  "<email id=\"2\"><to>b</to><subject>s</subject></email>\n&undef;\n"
	  "</r>\n",
	  { 1, 2, -1 },
	  2 },
	{ "<r><email id=\"1\"><to>a</to><subject>s</subject></email>",
	  { 1, -1 },
	  1 },
	{ "<r><email id=\"1\"><to>a</to><subject>s</subject></email\n",
	  { -1 },
	  2 },
	{ "<r><email id=\"1\"><to>a & b</to><subject>s</subject></email></r>",
	  { -1 },
	  1 },
	{ "not xml at all\n", { -1 }, 1 },
	{ "<r/>\n<r/>\n", { -1 }, 2 },
	{ NULL, { -1 }, 0 },
};

static void test_broken_documents(void)
{
	const struct broken *b;
	const char *path = h_tmp("broken.xml");

	for (b = broken; b->doc; b++) {
		struct reader *r;
		int before = h_failures();
		size_t i;

		h_write(path, b->doc, strlen(b->doc));
		r = open_path(path);
		if (r == NULL)
			continue;
		for (i = 0; b->want[i] >= 0; i++)
			if (NEXT_STATUS(r, READER_LETTER))
				CHECK_INT_EQ(last.id, b->want[i]);
		if (NEXT_STATUS(r, READER_ERROR))
			check_where(path, b->line, 1);
		if (h_failures() != before)
			printf("    (document %d: '%s')\n", (int)(b - broken),
			       b->doc);
		reader_free(r);
	}
}

/* Empty input and a directory are named as such, not as libxml2's "Extra
 * content at the end of the document". */
static void test_empty_and_directory(void)
{
	const char *path = h_tmp("empty.xml");
	char err[512] = "";
	struct reader *r;

	h_write(path, "", 0);
	r = reader_open(path, err, sizeof(err));
	CHECK(r == NULL);
	CHECK_CONTAINS(err, "is empty");
	reader_free(r);
	err[0] = '\0';
	r = reader_open("/", err, sizeof(err));
	CHECK(r == NULL);
	CHECK_CONTAINS(err, "'/' is a directory");
	reader_free(r);
}

static void test_broken_after_many(void)
{
	const char *path = h_tmp("many-broken.xml");
	FILE *f = fopen(path, "w");
	struct reader *r;
	struct letter l;
	enum reader_status st;
	unsigned i, n = 0;

	if (!CHECK(f != NULL))
		return;
	fprintf(f, "<?xml version=\"1.0\"?>\n<emails>\n");
	for (i = 1; i <= 5000; i++)
		fprintf(f,
			"<email id=\"%u\"><to>u%u@example.com</to>"
			"<subject>letter %u</subject></email>\n",
			i, i, i);
	fprintf(f, "<email id=\"5001\"><to>x</to><subject>s</to></email>\n");
	for (i = 5002; i <= 6000; i++)
		fprintf(f,
			"<email id=\"%u\"><to>u@example.com</to>"
			"<subject>late</subject></email>\n",
			i);
	fprintf(f, "</emails>\n");
	fclose(f);
	r = open_path(path);
	if (r == NULL)
		return;
	while ((st = reader_next(r, &l, msg, sizeof(msg))) == READER_LETTER)
		if (l.id == n + 1)
			n++;
	CHECK_INT_EQ(n, 5000); /* every letter before the error, in order */
	if (CHECK_INT_EQ(st, READER_ERROR))
		check_where(path, 5003, 1); /* letter 5001's line */
	else
		printf("    msg '%s'\n", msg);
	reader_free(r);
}

static void test_bad_bytes(void)
{
	static const char utf8[] =
		"<e><email id=\"1\"><to>a</to><subject>ok</subject></email>\n"
		"<email id=\"2\"><to>b</to><subject>\xff\xfe</subject>"
		"</email>\n"
		"</e>\n";
	static const char nul[] =
		"<e><email id=\"1\"><to>a</to><subject>ok</subject></email>\n"
		"<email id=\"2\"><to>b</to><subject>a\0b</subject></email>\n"
		"</e>\n";
	static const char overlong[] = /* "/" as an overlong 2-byte form */
		"<e><email id=\"1\"><to>a</to><subject>\xc0\xaf</subject>"
		"</email></e>\n";
	const char *path = h_tmp("bytes.xml");
	struct reader *r;

	h_write(path, utf8, sizeof(utf8) - 1);
	if ((r = open_path(path)) != NULL) {
		NEXT_LETTER(r, 1, "a", "ok");
		if (NEXT_STATUS(r, READER_ERROR))
			check_where(path, 2, 1);
		reader_free(r);
	}
	h_write(path, nul, sizeof(nul) - 1);
	if ((r = open_path(path)) != NULL) {
		NEXT_LETTER(r, 1, "a", "ok");
		if (NEXT_STATUS(r, READER_ERROR))
			check_where(path, 2, 1);
		reader_free(r);
	}
	h_write(path, overlong, sizeof(overlong) - 1);
	if ((r = open_path(path)) != NULL) {
		NEXT_STATUS(r, READER_ERROR);
		reader_free(r);
	}
}

/*
 * libxml2 2.9 passes bytes in CDATA that are not UTF-8: the letter is
 * invalid, the run goes on.  Valid 2-, 3- and 4-byte forms pass.
 */
static void test_cdata_utf8(void)
{
	static const char text[] =
		"<e><email id=\"1\"><to>a</to><subject><![CDATA[\xc0\xaf]]>"
		"</subject></email>\n"
		"<email id=\"2\"><to>b</to><subject><![CDATA[\xe0\x80\xaf]]>"
		"</subject></email>\n"
		"<email id=\"3\"><to>c</to><subject><![CDATA[\xf0\x80\x80\xaf]]>"
		"</subject></email>\n"
		"<email id=\"4\"><to>d</to><subject><![CDATA[\xd0\x9f\xc2"
		"\xa9\xe2\x82\xac\xf0\x9f\x98\x80]]></subject></email>\n"
		"</e>\n";
	const char *path = h_tmp("cdata.xml");
	struct reader *r;

	h_write(path, text, sizeof(text) - 1);
	if ((r = open_path(path)) == NULL)
		return;
	NEXT_STATUS(r, READER_INVALID); /* "/" as an overlong 2-byte form */
	NEXT_STATUS(r, READER_INVALID); /* and as an overlong 3-byte one */
	NEXT_STATUS(r, READER_INVALID); /* and a 4-byte one */
	NEXT_LETTER(r, 4, "d", "\xd0\x9f\xc2\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
	NEXT_STATUS(r, READER_END);
	reader_free(r);
}

static double cpu_seconds(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static long maxrss_kb(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

/*
 * Peak memory of this test (each runs in its own process) under limit.
 * Not under AddressSanitizer: its quarantine keeps freed memory on purpose.
 */
static void check_rss(long limit_kb, double t0)
{
	printf("    %.2f s CPU, max RSS %ld KiB\n", cpu_seconds() - t0,
	       maxrss_kb());
#if !defined(__SANITIZE_ADDRESS__)
	CHECK(maxrss_kb() < limit_kb);
#else
	(void)limit_kb;
#endif
}

/*
 * Read a document to its end: it must not yield a letter, and must end in
 * READER_ERROR at line (0: any line).
 */
static void refused(const char *path, long line)
{
	struct reader *r = open_path(path);
	struct letter l;
	enum reader_status st;
	int n = 0;

	if (r == NULL)
		return;
	while ((st = reader_next(r, &l, msg, sizeof(msg))) == READER_LETTER ||
	       st == READER_INVALID)
		if (st == READER_LETTER && n++ == 0)
			printf("    letter %u: subject '%.60s' (%zu bytes)\n",
			       (unsigned)l.id, l.subject, l.subject_len);
	CHECK_INT_EQ(n, 0);
	CHECK_INT_EQ(st, READER_ERROR);
	check_where(path, line, 1);
	reader_free(r);
}

/* Read a document to its end, whatever it holds. */
static void drain(const char *path)
{
	struct reader *r = open_path(path);
	struct letter l;
	enum reader_status st;

	if (r == NULL)
		return;
	while ((st = reader_next(r, &l, msg, sizeof(msg))) == READER_LETTER ||
	       st == READER_INVALID)
		;
	reader_free(r);
}

/* Billion laughs: 10^9 "lol"s, refused in bounded time and memory. */
static void test_entity_bomb(void)
{
	double t0 = cpu_seconds();

	refused(h_data("bomb.xml"), line_of(h_data("bomb.xml"), "&lol9;"));
	CHECK(cpu_seconds() - t0 < 10.0);
	check_rss(100 * 1024, t0);
}

/* Quadratic blowup: one 50 KB entity used 50,000 times (2.5 GB). */
static void test_entity_quadratic(void)
{
	const char *path = h_tmp("quadratic.xml");
	FILE *f = fopen(path, "w");
	double t0 = cpu_seconds();
	int i;

	if (!CHECK(f != NULL))
		return;
	fprintf(f, "<?xml version=\"1.0\"?>\n<!DOCTYPE e [<!ENTITY a \"");
	for (i = 0; i < 50000; i++)
		fputc('a', f);
	fprintf(f, "\">]>\n<e>\n<email id=\"1\"><to>x</to><subject>");
	for (i = 0; i < 50000; i++)
		fputs("&a;", f);
	fprintf(f, "</subject></email></e>\n");
	fclose(f);
	refused(path, line_of(path, "&a;&a;"));
	CHECK(cpu_seconds() - t0 < 10.0);
	check_rss(100 * 1024, t0);
}

/* No event on an inotify watch: nothing opened or read the file. */
static int untouched(int ino)
{
	char ev[4096];

	return read(ino, ev, sizeof(ev)) < 0 && errno == EAGAIN;
}

static void test_external_entities(void)
{
	const char *secret = h_tmp("secret.txt");
	char doc[1024];
	int ino = inotify_init1(IN_NONBLOCK);
	int n;

	refused(h_data("ext_file.xml"), 0);
	CHECK(strstr(msg, "root:") == NULL);
	h_write(secret, LIT("SECRET\n"));
	if (!CHECK(ino >= 0) ||
	    !CHECK(inotify_add_watch(ino, secret, IN_OPEN | IN_ACCESS) >= 0))
		return;
	/* a general entity, a parameter entity, an external DTD */
	n = snprintf(doc, sizeof(doc),
		     "<?xml version=\"1.0\"?>\n<!DOCTYPE e [ <!ENTITY x SYSTEM "
		     "\"file://%s\"> ]>\n<e><email id=\"1\"><to>a</to>"
		     "<subject>&x;</subject></email></e>\n",
		     secret);
	h_write(h_tmp("ext1.xml"), doc, (size_t)n);
	refused(h_tmp("ext1.xml"), 0);
	n = snprintf(doc, sizeof(doc),
		     "<?xml version=\"1.0\"?>\n<!DOCTYPE e [ <!ENTITY %% p "
		     "SYSTEM \"%s\"> %%p; ]>\n<e><email id=\"1\"><to>a</to>"
		     "<subject>s</subject></email></e>\n",
		     secret);
	h_write(h_tmp("ext2.xml"), doc, (size_t)n);
	refused(h_tmp("ext2.xml"), 0);
	CHECK_CONTAINS(msg, "ext2.xml:");
	n = snprintf(doc, sizeof(doc),
		     "<?xml version=\"1.0\"?>\n<!DOCTYPE e SYSTEM \"%s\">\n"
		     "<e><email id=\"1\"><to>a</to><subject>s</subject>"
		     "</email></e>\n",
		     secret);
	h_write(h_tmp("ext3.xml"), doc, (size_t)n);
	drain(h_tmp("ext3.xml")); /* an external DTD is simply not read */
	if (!CHECK(untouched(ino)))
		printf("    the reader opened '%s'\n", secret);
	close(ino);
}

static void test_no_network(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	char doc[1024];
	int n, c;

	refused(h_data("ext_param.xml"), 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (!CHECK(s >= 0) || !CHECK(bind(s, (void *)&sa, sizeof(sa)) == 0) ||
	    !CHECK(listen(s, 8) == 0) ||
	    !CHECK(getsockname(s, (void *)&sa, &len) == 0))
		return;
	n = snprintf(doc, sizeof(doc),
		     "<?xml version=\"1.0\"?>\n<!DOCTYPE e [\n"
		     "<!ENTITY %% p SYSTEM \"http://127.0.0.1:%d/p\"> %%p;\n"
		     "<!ENTITY x SYSTEM \"http://127.0.0.1:%d/x\">\n]>\n"
		     "<e><email id=\"1\"><to>a</to><subject>&x;</subject>"
		     "</email></e>\n",
		     ntohs(sa.sin_port), ntohs(sa.sin_port));
	h_write(h_tmp("net.xml"), doc, (size_t)n);
	alarm(30); /* a fetch would wait for an answer that never comes */
	refused(h_tmp("net.xml"), 0);
	c = accept(s, NULL, NULL);
	if (!CHECK(c < 0 && errno == EAGAIN))
		printf("    the reader connected to port %d\n",
		       ntohs(sa.sin_port));
	if (c >= 0)
		close(c);
	close(s);
}

/* A 10 MB subject: refused, one way or the other, without a crash. */
static void test_huge_subject(void)
{
	const char *path = h_tmp("huge.xml");
	FILE *f = fopen(path, "w");
	struct reader *r;
	struct letter l;
	enum reader_status st;
	int i;

	if (!CHECK(f != NULL))
		return;
	fprintf(f, "<e>\n<email id=\"1\"><to>a@example.com</to><subject>");
	for (i = 0; i < 10 * 1024; i++)
		fprintf(f, "%01023d\n", i);
	fprintf(f, "</subject></email>\n<email id=\"2\"><to>b</to>"
		   "<subject>s</subject></email>\n</e>\n");
	fclose(f);
	if ((r = open_path(path)) == NULL)
		return;
	st = reader_next(r, &l, msg, sizeof(msg));
	CHECK(st == READER_INVALID || st == READER_ERROR);
	if (st == READER_INVALID) {
		check_where(path, 2, 0);
		NEXT_LETTER(r, 2, "b", "s");
	} else {
		check_where(path, 0, 1);
	}
	reader_free(r);
}

/* Subject and to at their caps are fine; one byte more is not. */
static void test_caps(void)
{
	const char *path = h_tmp("caps.xml");
	size_t n = READER_SUBJECT_MAX + 1;
	char *subject = malloc(n + 1);
	FILE *f = fopen(path, "w");
	struct reader *r;

	if (!CHECK(f != NULL && subject != NULL))
		return;
	memset(subject, 'x', n);
	subject[n] = '\0';
	fprintf(f,
		"<e>\n<email id=\"1\"><to>a</to><subject>%s</subject>"
		"</email>\n",
		subject + 1);
	fprintf(f,
		"<email id=\"2\"><to>a</to><subject>%s</subject>"
		"</email>\n",
		subject);
	/* the cap is on the text after trimming */
	fprintf(f,
		"<email id=\"3\"><to>a</to><subject>\n          %s\n"
		"        </subject></email>\n</e>\n",
		subject + 1);
	fclose(f);
	if ((r = open_path(path)) != NULL) {
		next_letter(r, 1, "a", subject + 1, n - 1, __LINE__);
		if (NEXT_STATUS(r, READER_INVALID))
			check_where(path, 3, 0);
		next_letter(r, 3, "a", subject + 1, n - 1, __LINE__);
		NEXT_STATUS(r, READER_END);
		reader_free(r);
	}
	free(subject);
}

/* Line numbers past 65535 (libxml2 keeps 16 bits in a node). */
static void test_big_line_numbers(void)
{
	const char *path = h_tmp("long.xml");
	FILE *f = fopen(path, "w");
	struct reader *r;
	long i;

	if (!CHECK(f != NULL))
		return;
	fprintf(f, "<?xml version=\"1.0\"?>\n<emails>\n");
	for (i = 3; i < 70000; i++)
		fprintf(f, "<!-- %ld -->\n", i);
	fprintf(f, "  <email id=\"abc\">\n    <to>a</to>\n"
		   "    <subject>s</subject>\n  </email>\n");
	fprintf(f, "  <email id=\"7\">\n    <subject>s</subject>\n"
		   "  </email>\n</emails>\n");
	fclose(f);
	if ((r = open_path(path)) == NULL)
		return;
	if (NEXT_STATUS(r, READER_INVALID))
		check_where(path, 70000, 0);
	if (NEXT_STATUS(r, READER_INVALID))
		check_where(path, 70004, 0);
	NEXT_STATUS(r, READER_END);
	reader_free(r);
}

/* 100,000 letters (about 10 MB) go through in flat memory. */
static void test_stream_memory(void)
{
	const char *path = h_tmp("big.xml");
	FILE *f = fopen(path, "w");
	struct reader *r;
	struct letter l;
	unsigned long i, n = 0, ok = 0;
	double t0;

	if (!CHECK(f != NULL))
		return;
	fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<emails>\n");
	for (i = 0; i < 100000; i++)
		fprintf(f,
			"  <email id=\"%lu\">\n"
			"    <to>user%lu@example.com</to>\n"
			"    <subject>Привет &amp; welcome, letter %lu"
			"</subject>\n  </email>\n",
			i + 1, i, i);
	fprintf(f, "</emails>\n");
	CHECK(fclose(f) == 0);
	t0 = cpu_seconds();
	if ((r = open_path(path)) == NULL)
		return;
	while (reader_next(r, &l, msg, sizeof(msg)) == READER_LETTER) {
		n++;
		ok += l.id == n;
	}
	CHECK_INT_EQ(n, 100000);
	CHECK_INT_EQ(ok, 100000); /* every id, in order */
	CHECK_INT_EQ(reader_next(r, &l, msg, sizeof(msg)), READER_END);
	reader_free(r);
	check_rss(40 * 1024, t0);
}

static const struct h_test tests[] = {
	TEST(test_open_missing),
	TEST(test_entities_and_cdata),
	TEST(test_trim),
	TEST(test_cyrillic),
	TEST(test_declared_encoding),
	TEST(test_ids_in_file),
	TEST(test_fields),
	TEST(test_text_from_several_nodes),
	TEST(test_stdin),
	TEST(test_malformed_in_the_middle),
	TEST(test_truncated),
	TEST(test_broken_documents),
	TEST(test_empty_and_directory),
	TEST(test_broken_after_many),
	TEST(test_bad_bytes),
	TEST(test_cdata_utf8),
	TEST(test_entity_bomb),
	TEST(test_entity_quadratic),
	TEST(test_external_entities),
	TEST(test_no_network),
	TEST(test_huge_subject),
	TEST(test_caps),
	TEST(test_big_line_numbers),
	TEST(test_stream_memory),
	{ NULL, NULL },
};

int main(int argc, char **argv)
{
	return h_main(argc, argv, tests);
}

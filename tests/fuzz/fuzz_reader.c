/*
 * fuzz_reader: libFuzzer target for src/reader.c.
 *
 * Each input is a letters file.  It is put in a memfd and read through its
 * /proc/self/fd path with reader_open/reader_next/reader_free, as the real
 * program reads a file.  Whatever the bytes, these must hold (abort()
 * otherwise, so that libFuzzer keeps the input):
 *
 *  - every READER_LETTER has a non-empty <to> and a <subject> with no
 *    leading or trailing space, tab, CR or LF, no NUL inside their length,
 *    no more bytes than READER_TO_MAX / READER_SUBJECT_MAX, valid UTF-8
 *    (as iconv decodes it, not as the reader checks it), and a line number
 *    of at least 1;
 *  - READER_INVALID says "FILE:LINE: ...", READER_ERROR "FILE:LINE:COL: ...";
 *    after READER_END or READER_ERROR the next call says the same again;
 *  - the reader ends within a bounded number of calls;
 *  - nothing is loaded from outside the input: libxml2 never asks its I/O
 *    layer to open any URI (a recording input callback would see it), and
 *    no text comes from the canary file that the seeds name as external
 *    entities (file:///tmp/sender-fuzz-canary);
 *  - no descriptor stays open after reader_free() (leaks of memory are
 *    LeakSanitizer's part);
 *  - for a document that the reader read to READER_END, the letters are
 *    exactly those of a reference built from libxml2's tree parser with the
 *    same options and SPEC section 2's rules (which <email> is a letter,
 *    its id attribute, not x:id, trimmed to and subject, invalid ones);
 *    the tree parser also finds the document well formed, and it refers
 *    to no entity that it does not declare (libxml2 only warns when the
 *    DTD is external or has parameter entities, and drops the reference).
 */
#include "buf.h"
#include "reader.h"
#include "text.h"

#include <errno.h>
#include <fcntl.h>
#include <iconv.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlerror.h>
#include <libxml/xmlIO.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <unistd.h>

#define CANARY_PATH "/tmp/sender-fuzz-canary"
#define MAX_CALLS   1000000 /* reader_next() calls before "does not end" */
#define MAX_REF	    100000  /* letters the reference model keeps */

static int memfd = -1;
static char path[64];
/*
 * The canary file's text: random per process, and looked for with a loop
 * of our own, because libFuzzer learns the needles given to strstr() and
 * memmem() and would soon write the text into an input itself.
 */
static struct buf canary; /* for the whole process */
static int verbose;	  /* $FUZZ_VERBOSE: print what the reader gives */
static int io_opened;	  /* URIs libxml2's I/O layer was asked for */
static char io_uri[256];
static iconv_t utf8_decoder; /* UTF-8 to UTF-32, the UTF-8 oracle */

#define FAIL(...)                                                   \
	do {                                                        \
		fprintf(stderr, "fuzz_reader: invariant broken: "); \
		fprintf(stderr, __VA_ARGS__);                       \
		fputc('\n', stderr);                                \
		abort();                                            \
	} while (0)

/* Any URI libxml2 tries to load through its I/O layer is recorded. */
static int io_match(const char *uri)
{
	io_opened++;
	snprintf(io_uri, sizeof(io_uri), "%s", uri ? uri : "(null)");
	return 0; /* let the default handlers (and the refusal) go on */
}

static void silent(void *ctx, const char *fmt, ...)
{
	(void)ctx;
	(void)fmt;
}

static int lowest_free_fd(void)
{
	int fd = dup(0);

	if (fd >= 0)
		close(fd);
	return fd;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	FILE *f;

	(void)argc;
	(void)argv;
	/* After xmlInitParser(), so that ours is asked before the defaults. */
	xmlInitParser();
	xmlRegisterInputCallbacks(io_match, NULL, NULL, NULL);
	xmlSetGenericErrorFunc(NULL, silent);
	utf8_decoder = iconv_open("UTF-32LE", "UTF-8");
	if (utf8_decoder == (iconv_t)-1) {
		perror("fuzz_reader: iconv_open UTF-8");
		exit(1);
	}
	memfd = memfd_create("fuzz_reader", MFD_CLOEXEC);
	if (memfd < 0) {
		perror("fuzz_reader: memfd_create");
		exit(1);
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", memfd);
	verbose = getenv("FUZZ_VERBOSE") != NULL;
	{
		unsigned char rnd[12];

		if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
			abort();
		buf_init(&canary, 0);
		buf_addf(&canary, "CANARY-");
		for (size_t i = 0; i < sizeof(rnd); i++)
			buf_addf(&canary, "%02x", rnd[i]);
	}
	f = fopen(CANARY_PATH, "w");
	if (f != NULL) {
		fprintf(f, "%s\n", buf_str(&canary));
		fclose(f);
	}
	return 0;
}

static int put_input(const uint8_t *data, size_t size)
{
	size_t done = 0;

	if (ftruncate(memfd, 0) < 0)
		return -1;
	while (done < size) {
		ssize_t n = pwrite(memfd, data + done, size - done,
				   (off_t)done);

		if (n <= 0)
			return -1;
		done += (size_t)n;
	}
	return 0;
}

/*
 * Valid UTF-8 as glibc's iconv decodes it: an oracle apart from the
 * reader's own check, and as strict (no overlong forms, no surrogates,
 * nothing past U+10FFFF), which libxml2's xmlCheckUTF8() is not: it lets
 * all three through.
 */
static int utf8_valid(const char *s, size_t n)
{
	char out[4096], *in = (char *)s;
	size_t left = n;

	iconv(utf8_decoder, NULL, NULL, NULL, NULL); /* the initial state */
	while (left > 0) {
		char *o = out;
		size_t room = sizeof(out);

		/* E2BIG: the output is full, the input goes on */
		if (iconv(utf8_decoder, &in, &left, &o, &room) == (size_t)-1 &&
		    errno != E2BIG)
			return 0; /* EILSEQ, or EINVAL: cut short at the end */
	}
	return 1;
}

static int holds_canary(const char *s, size_t len)
{
	const char *needle = buf_str(&canary);
	size_t n = canary.len;

	for (size_t i = 0; i + n <= len; i++) {
		size_t k = 0;

		while (k < n && s[i + k] == needle[k])
			k++;
		if (k == n)
			return 1;
	}
	return 0;
}

static int is_trim_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static void check_text(const char *what, const char *s, size_t len, size_t max,
		       int may_be_empty)
{
	if (s == NULL)
		FAIL("%s is NULL", what);
	if (strlen(s) != len)
		FAIL("%s: strlen %zu but len %zu", what, strlen(s), len);
	if (len > max)
		FAIL("%s: %zu bytes, more than %zu", what, len, max);
	if (len == 0 && !may_be_empty)
		FAIL("%s is empty", what);
	if (len > 0 && (is_trim_space(s[0]) || is_trim_space(s[len - 1])))
		FAIL("%s is not trimmed", what);
	if (!utf8_valid(s, len))
		FAIL("%s is not valid UTF-8", what);
	if (holds_canary(s, len))
		FAIL("%s holds the canary file's text: an external entity "
		     "was loaded",
		     what);
}

/* "NAME:" then digits, colon, [digits, colon,] space. */
static void check_message(const char *msg, int with_col, const char *kind)
{
	size_t n = strlen(path);
	const char *p = msg + n;
	int fields = with_col ? 2 : 1;

	if (strncmp(msg, path, n) != 0 || *p != ':')
		FAIL("%s message does not start with the file name: '%s'", kind,
		     msg);
	while (fields-- > 0) {
		const char *digits = ++p;

		while (*p >= '0' && *p <= '9')
			p++;
		if (p == digits || *p != ':')
			FAIL("%s message is not FILE:LINE%s: '%s'", kind,
			     with_col ? ":COL" : "", msg);
	}
	if (p[1] != ' ' || p[2] == '\0')
		FAIL("%s message has no text: '%s'", kind, msg);
}

/* ------------------------------------------------ the reference model */

struct ref_letter {
	int valid;
	uint32_t id;
	char *to, *subject;
	long line;
};

struct ref {
	struct ref_letter *v;
	size_t n, alloc;
	int overflow;
};

static char *trimmed(const xmlChar *text)
{
	const char *s = text ? (const char *)text : "";
	size_t len = strlen(s);
	char *out;

	while (len > 0 && is_trim_space(s[len - 1]))
		len--;
	while (len > 0 && is_trim_space(*s))
		s++, len--;
	out = malloc(len + 1);
	if (out == NULL)
		abort();
	memcpy(out, s, len);
	out[len] = '\0';
	return out;
}

/* SPEC 2: a plain decimal 0..4294967295, written without leading zeros. */
static int ref_id(const xmlChar *text, uint32_t *id)
{
	const char *s = (const char *)text;
	uint64_t v = 0;
	size_t i;

	if (s == NULL || s[0] == '\0' || (s[0] == '0' && s[1] != '\0'))
		return -1;
	for (i = 0; s[i]; i++) {
		if (s[i] < '0' || s[i] > '9' || i >= 10)
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v > UINT32_MAX)
		return -1;
	*id = (uint32_t)v;
	return 0;
}

static void ref_add(struct ref *ref, xmlNodePtr email)
{
	struct ref_letter l = { 0, 0, NULL, NULL, xmlGetLineNo(email) };
	int seen_to = 0, seen_subject = 0, twice = 0, bad = 0;
	size_t raw_to = 0, raw_subject = 0;
	xmlChar *id = xmlGetNoNsProp(email, BAD_CAST "id");

	for (xmlNodePtr c = email->children; c; c = c->next) {
		xmlChar *text;
		int is_to;

		if (c->type != XML_ELEMENT_NODE)
			continue;
		is_to = strcmp((const char *)c->name, "to") == 0;
		if (!is_to && strcmp((const char *)c->name, "subject") != 0)
			continue;
		if (is_to ? seen_to++ : seen_subject++)
			twice = 1;
		text = xmlNodeGetContent(c);
		if (is_to) {
			free(l.to);
			l.to = trimmed(text);
			raw_to = text ? strlen((const char *)text) : 0;
		} else {
			free(l.subject);
			l.subject = trimmed(text);
			raw_subject = text ? strlen((const char *)text) : 0;
		}
		xmlFree(text);
	}
	(void)raw_to;
	(void)raw_subject;
	if (ref_id(id, &l.id) < 0 || !seen_to || l.to[0] == '\0' ||
	    !seen_subject || twice || strlen(l.to) > READER_TO_MAX ||
	    strlen(l.subject) > READER_SUBJECT_MAX)
		bad = 1;
	l.valid = !bad;
	xmlFree(id);
	if (ref->n == ref->alloc) {
		ref->alloc = ref->alloc ? 2 * ref->alloc : 16;
		ref->v = realloc(ref->v, ref->alloc * sizeof(*ref->v));
		if (ref->v == NULL)
			abort();
	}
	ref->v[ref->n++] = l;
}

static void ref_free(struct ref *ref)
{
	for (size_t i = 0; i < ref->n; i++) {
		free(ref->v[i].to);
		free(ref->v[i].subject);
	}
	free(ref->v);
	memset(ref, 0, sizeof(*ref));
}

/* Notes that the tree parser met an entity that no declaration names. */
static void on_ref_error(void *arg, xmlErrorPtr e)
{
	if (e != NULL && e->code == XML_WAR_UNDECLARED_ENTITY)
		*(int *)arg = 1;
}

/*
 * 0 and the letters of a well-formed document; else -1 and the error in
 * *errnum.
 */
static int ref_build(const uint8_t *data, size_t size, struct ref *ref,
		     int *errnum, int *undeclared)
{
	const int options = XML_PARSE_NOENT | XML_PARSE_NONET |
			    XML_PARSE_NOCDATA | XML_PARSE_BIG_LINES;
	xmlParserCtxtPtr ctxt = xmlNewParserCtxt();
	xmlDocPtr doc;
	xmlNodePtr root;
	int ok;

	if (ctxt == NULL)
		abort();
	xmlSetStructuredErrorFunc(undeclared, on_ref_error);
	doc = xmlCtxtReadMemory(ctxt, (const char *)data, (int)size, path, NULL,
				options);
	xmlSetStructuredErrorFunc(NULL, NULL);
	ok = doc != NULL && ctxt->wellFormed;
	*errnum = ctxt->errNo;
	root = ok ? xmlDocGetRootElement(doc) : NULL;
	for (xmlNodePtr n = root ? root->children : NULL; n; n = n->next) {
		if (n->type != XML_ELEMENT_NODE ||
		    strcmp((const char *)n->name, "email") != 0)
			continue;
		if (ref->n == MAX_REF) {
			ref->overflow = 1;
			break;
		}
		ref_add(ref, n);
	}
	xmlFreeDoc(doc);
	xmlFreeParserCtxt(ctxt);
	return ok ? 0 : -1;
}

/* ------------------------------------------------ what the reader gave */

struct got {
	enum reader_status status;
	uint32_t id;
	char *to, *subject;
	long line;
};

/*
 * Equal, once CR LF and CR are read as LF: libxml2 2.9's push parser (under
 * xmlTextReader) leaves the line ends of CDATA sections as they are, the
 * tree parser turns them into LF as XML says.
 */
static int same_text(const char *a, const char *b)
{
	for (;;) {
		char ca = *a, cb = *b;

		if (ca == '\r')
			ca = '\n', a += a[1] == '\n';
		if (cb == '\r')
			cb = '\n', b += b[1] == '\n';
		if (ca != cb)
			return 0;
		if (ca == '\0')
			return 1;
		a++, b++;
	}
}

static void compare(const struct got *got, size_t ngot, const struct ref *ref)
{
	if (ref->overflow)
		return;
	if (ngot != ref->n)
		FAIL("reader gave %zu letters (valid and invalid), the tree "
		     "parser %zu",
		     ngot, ref->n);
	for (size_t i = 0; i < ngot; i++) {
		const struct got *g = &got[i];
		const struct ref_letter *r = &ref->v[i];

		if ((g->status == READER_LETTER) != r->valid)
			FAIL("letter %zu (line %ld): reader says %s, the "
			     "reference %s",
			     i, r->line,
			     g->status == READER_LETTER ? "valid" : "invalid",
			     r->valid ? "valid" : "invalid");
		if (!r->valid)
			continue;
		if (g->id != r->id || !same_text(g->to, r->to) ||
		    !same_text(g->subject, r->subject))
			FAIL("letter %zu (line %ld): reader gives id %u to "
			     "'%s' subject '%.80s', the reference id %u to "
			     "'%s' subject '%.80s'",
			     i, r->line, g->id, g->to, g->subject, r->id, r->to,
			     r->subject);
		/*
		 * Nodes built from an entity's text have no line.  Past
		 * 65534, xmlGetLineNo() gives the line where the first text
		 * inside ends, the reader counts back to the start tag.
		 */
		if (r->line >= 65535 && (g->line < 65535 || g->line > r->line))
			FAIL("letter %zu: reader says line %ld, the reference "
			     "%ld (or a little before)",
			     i, g->line, r->line);
		if (r->line > 0 && r->line < 65535 && g->line != r->line)
			FAIL("letter %zu: reader says line %ld, the reference "
			     "%ld",
			     i, g->line, r->line);
	}
}

static char *copy(const char *s)
{
	char *d = strdup(s);

	if (d == NULL)
		abort();
	return d;
}

/*
 * What sender shows of XML text and messages goes through text_safe():
 * its output holds no control character, and is a fixed point (it is
 * valid UTF-8 without anything left to escape).
 */
static void check_safe(const char *what, const char *s, size_t n)
{
	static char out[4 * 65536 + 64], again[sizeof(out)];
	size_t len = text_safe(out, sizeof(out), s, n), i;

	if (len != strlen(out))
		FAIL("%s: text_safe length %zu, string %zu", what, len,
		     strlen(out));
	for (i = 0; i < len; i++)
		if ((unsigned char)out[i] < 0x20 || out[i] == 0x7f)
			FAIL("%s: control character 0x%02x kept", what,
			     (unsigned char)out[i]);
	if (text_safe(again, sizeof(again), out, len) != len ||
	    memcmp(again, out, len) != 0)
		FAIL("%s: text_safe output is not safe: '%s'", what, out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[512], msg[1024];
	struct reader *r = NULL;
	struct got *got = NULL;
	size_t ngot = 0, alloc = 0, calls = 0;
	enum reader_status st;
	int fd_before = lowest_free_fd();

	if (put_input(data, size) < 0)
		abort();
	io_opened = 0;
	r = reader_open(path, err, sizeof(err));
	/* an empty file is refused at once, named as such */
	if (size == 0) {
		if (r != NULL || strstr(err, "is empty") == NULL)
			FAIL("an empty file was not refused as empty: %s",
			     r ? "opened" : err);
		return 0;
	}
	if (r == NULL)
		FAIL("reader_open failed on an existing file: %s", err);
	if (strcmp(reader_name(r), path) != 0)
		FAIL("reader_name is '%s'", reader_name(r));
	for (;;) {
		struct letter l;

		memset(&l, 0, sizeof(l));
		msg[0] = '\0';
		if (++calls > MAX_CALLS)
			FAIL("reader_next did not end after %d calls",
			     MAX_CALLS);
		st = reader_next(r, &l, msg, sizeof(msg));
		if (verbose && st == READER_LETTER)
			fprintf(stderr,
				"letter %u line %ld to '%s' subject '%.200s'\n",
				l.id, l.line, l.to, l.subject);
		else if (verbose)
			fprintf(stderr, "status %d: %s\n", (int)st, msg);
		if (st == READER_END || st == READER_ERROR)
			break;
		if (st == READER_LETTER) {
			check_text("to", l.to, l.to_len, READER_TO_MAX, 0);
			check_text("subject", l.subject, l.subject_len,
				   READER_SUBJECT_MAX, 1);
			check_safe("to", l.to, l.to_len);
			check_safe("subject", l.subject, l.subject_len);
			if (l.line < 1)
				FAIL("letter %u has line %ld", l.id, l.line);
		} else if (st == READER_INVALID) {
			check_message(msg, 0, "READER_INVALID");
			check_safe("message", msg, strlen(msg));
		} else {
			FAIL("reader_next returned %d", (int)st);
		}
		if (ngot == alloc) {
			alloc = alloc ? 2 * alloc : 16;
			got = realloc(got, alloc * sizeof(*got));
			if (got == NULL)
				abort();
		}
		got[ngot].status = st;
		got[ngot].id = l.id;
		got[ngot].to = st == READER_LETTER ? copy(l.to) : NULL;
		got[ngot].subject = st == READER_LETTER ? copy(l.subject)
							: NULL;
		got[ngot].line = l.line;
		ngot++;
	}
	if (st == READER_ERROR)
		check_message(msg, 1, "READER_ERROR");
	check_safe("message", msg, strlen(msg));
	for (int again = 0; again < 2; again++) {
		struct letter l;
		enum reader_status st2 = reader_next(r, &l, msg, sizeof(msg));

		if (st2 != st)
			FAIL("reader_next returned %d after %d", (int)st2,
			     (int)st);
	}
	if (reader_offset(r) < 0)
		FAIL("reader_offset is %ld", reader_offset(r));
	reader_free(r);
	if (io_opened)
		FAIL("libxml2 was asked to load '%s' from outside the input",
		     io_uri);
	if (lowest_free_fd() != fd_before)
		FAIL("a descriptor is left open after reader_free");

	/* Only a document read to its end has a well-defined set of letters. */
	if (st == READER_END) {
		struct ref ref = { 0 };
		int errnum = 0, undeclared = 0;

		if (ref_build(data, size, &ref, &errnum, &undeclared) < 0) {
			/*
			 * libxml2 2.9's push parser, under xmlTextReader,
			 * checks less than the tree parser does: UTF-8 in
			 * CDATA sections (overlong forms), "]]>" in text
			 * that spans its chunks.  The letters are checked
			 * above, the document is let be.
			 */
			if (!(errnum == XML_ERR_INVALID_CHAR &&
			      memmem(data, size, "<![CDATA[",
				     sizeof("<![CDATA[") - 1) != NULL) &&
			    errnum != XML_ERR_MISPLACED_CDATA_END)
				FAIL("the reader read to the end a document "
				     "that the tree parser finds not well "
				     "formed (error %d)",
				     errnum);
		} else {
			compare(got, ngot, &ref);
		}
		/*
		 * Not well-formedness, only a warning when the DTD is
		 * outside (never loaded) or has parameter entities: the text
		 * would vanish from the letter without a word.
		 */
		if (undeclared)
			FAIL("the reader read to the end a document that "
			     "refers to an entity it does not declare");
		ref_free(&ref);
		if (io_opened)
			FAIL("libxml2 was asked to load '%s' from outside the "
			     "input",
			     io_uri);
	}
	for (size_t i = 0; i < ngot; i++) {
		free(got[i].to);
		free(got[i].subject);
	}
	free(got);
	xmlResetLastError(); /* libxml2 keeps a copy of the last error */
	return 0;
}

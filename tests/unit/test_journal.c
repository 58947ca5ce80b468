/*
 * journal: outcomes written, read back as they were written, bad lines
 * named with their line number, and journal_replay() into a real SQLite
 * store, where replaying twice changes nothing.
 */
#include "cfg.h"
#include "harness.h"
#include "journal.h"
#include "store.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOW 1700000000 /* 2023-11-14 22:13:20 UTC */

static char err[1024];

/* Append bytes as they are, as a write cut short would leave them. */
static void append_raw(const char *path, const char *text)
{
	FILE *f = fopen(path, "ab");

	CHECK(f != NULL && fputs(text, f) >= 0);
	if (f)
		CHECK(fclose(f) == 0);
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *text = calloc(1, 1 << 16);
	size_t n = 0;

	if (CHECK(f != NULL && text != NULL))
		n = fread(text, 1, (1 << 16) - 1, f);
	if (f)
		fclose(f);
	if (text)
		text[n] = '\0';
	return text;
}

static struct journal_reader *open_journal(const char *path)
{
	struct journal_reader *j;

	err[0] = '\0';
	j = journal_open(path, err, sizeof(err));
	if (!CHECK(j != NULL))
		printf("    journal_open: %s\n", err);
	return j;
}

#define NEXT_IS(j, want) next_is(j, want, __LINE__)
static void next_is(struct journal_reader *j, const struct store_result *want,
		    int from)
{
	struct store_result got;
	int before = h_failures();

	memset(&got, 0xff, sizeof(got));
	if (CHECK_INT_EQ(journal_next(j, &got, err, sizeof(err)), 1)) {
		CHECK_INT_EQ(got.id, want->id);
		CHECK_INT_EQ(got.ts, want->ts);
		CHECK_INT_EQ(got.status, want->status);
		CHECK_INT_EQ(got.attempts, want->attempts);
		CHECK_STR_EQ(got.error, want->error);
	} else {
		printf("    journal_next: %s\n", err);
	}
	if (h_failures() != before)
		printf("    (from line %d)\n", from);
}

/* The next call fails with exactly "PATH:LINE: not a journal line". */
static void next_fails_at(struct journal_reader *j, const char *path, long line)
{
	struct store_result got;
	char want[600];

	err[0] = '\0';
	CHECK_INT_EQ(journal_next(j, &got, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s:%ld: not a journal line", path, line);
	CHECK_STR_EQ(err, want);
}

static void test_append_read_back(void)
{
	static const struct store_result r[] = {
		{ 1, NOW, 1, 1, NULL },
		{ 4294967295u, NOW + 61, 0, 3, NULL },
		{ 0, NOW + 86400, -1, 2, "bad\taddress\nline two \\ end" },
	};
	static const struct store_result more = { 7, NOW + 1, -1, 1, "x" };
	const char *path = h_tmp("append.journal");
	struct journal_reader *j;
	struct store_result got;
	char *text;

	CHECK_INT_EQ(journal_append(path, r, 3, err, sizeof(err)), 0);
	/* a second run appends to the same file, under the same header */
	CHECK_INT_EQ(journal_append(path, &more, 1, err, sizeof(err)), 0);
	text = slurp(path);
	if (text) {
		CHECK(strncmp(text, "# sender journal 1:",
			      sizeof("# sender journal 1:") - 1) == 0);
		CHECK(strstr(text + 1, "# sender") == NULL);
		/* one outcome per line: the escapes keep them whole */
		CHECK_CONTAINS(text, "\n0\t2023-11-15 22:13:20\t-\t2\t"
				     "bad\\taddress\\nline two \\\\ end\n");
		CHECK_CONTAINS(text, "\n1\t2023-11-14 22:13:20\t1\t1\t\n");
	}
	free(text);
	if ((j = open_journal(path)) == NULL)
		return;
	NEXT_IS(j, &r[0]);
	NEXT_IS(j, &r[1]);
	NEXT_IS(j, &r[2]);
	NEXT_IS(j, &more);
	CHECK_INT_EQ(journal_next(j, &got, err, sizeof(err)), 0);
	CHECK_INT_EQ(journal_next(j, &got, err, sizeof(err)), 0);
	journal_close(j);
}

static void test_cannot_write(void)
{
	static const struct store_result r = { 1, NOW, 1, 1, NULL };
	const char *path = h_tmp("no-such-dir/x.journal");
	char want[600];

	CHECK_INT_EQ(journal_append(path, &r, 1, err, sizeof(err)), -1);
	snprintf(want, sizeof(want),
		 "cannot write journal '%s': No such file or directory", path);
	CHECK_STR_EQ(err, want);
}

static void test_missing(void)
{
	const char *path = h_tmp("missing.journal");
	char want[600];

	CHECK(journal_open(path, err, sizeof(err)) == NULL);
	snprintf(want, sizeof(want),
		 "cannot read journal '%s': No such file or directory", path);
	CHECK_STR_EQ(err, want);
}

/*
 * A run killed while it wrote leaves a last line without its end: the
 * outcomes before it are read, the torn one is refused by its number.
 */
static void test_torn_last_line(void)
{
	static const struct store_result r[] = {
		{ 10, NOW, 1, 1, NULL },
		{ 11, NOW, 0, 1, NULL },
	};
	const char *path = h_tmp("torn.journal");
	struct journal_reader *j;

	CHECK_INT_EQ(journal_append(path, r, 2, err, sizeof(err)), 0);
	append_raw(path, "12\t2023-11-14 22:1");
	if ((j = open_journal(path)) == NULL)
		return;
	NEXT_IS(j, &r[0]);
	NEXT_IS(j, &r[1]);
	next_fails_at(j, path, 4); /* after the header and two outcomes */
	journal_close(j);
}

/* Each kind of bad line, after comments and blank lines that count. */
static void test_bad_line_named(void)
{
	static const char *const bad[] = {
		"007\t2023-11-14 22:13:20\t1\t1\t",	   /* leading zero */
		"-1\t2023-11-14 22:13:20\t1\t1\t",	   /* sign */
		"4294967296\t2023-11-14 22:13:20\t1\t1\t", /* range */
		"5\t2023-11-14\t1\t1\t",		   /* no time */
		"5\t2023-11-14 22:13:20\t2\t1\t",	   /* status */
		"5\t2023-11-14 22:13:20\t1\tx\t",	   /* attempts */
		"5\t2023-11-14 22:13:20\t1\t1",		   /* 4 fields */
		"5\t2023-11-14 22:13:20\t1\t1\terr\tmore", /* 6 fields */
		"5 2023-11-14 22:13:20 1 1",		   /* spaces */
		NULL,
	};
	static const struct store_result good = { 5, NOW, 1, 1, NULL };
	const char *path = h_tmp("bad.journal");
	struct journal_reader *j;
	char text[512];
	size_t i;

	for (i = 0; bad[i]; i++) {
		snprintf(text, sizeof(text),
			 "# sender journal 1\n\n# a note\n"
			 "5\t2023-11-14 22:13:20\t1\t1\t\n%s\n"
			 "6\t2023-11-14 22:13:20\t1\t1\t\n",
			 bad[i]);
		h_write(path, text, strlen(text));
		if ((j = open_journal(path)) == NULL)
			return;
		NEXT_IS(j, &good);
		next_fails_at(j, path, 5);
		if (h_failures())
			printf("    (bad line '%s')\n", bad[i]);
		journal_close(j);
	}
}

/* ------------------------------------------------ replay into SQLite */

struct fixture {
	struct cfg cfg;
	struct store *store;
	sqlite3 *db;
};

static int setup(struct fixture *f, const char *db_path)
{
	const struct store_ops *ops = store_find("sqlite");
	const struct cfg_key *tables[2] = { NULL, NULL };
	struct store_owner owner = { .name = "replay" };

	memset(f, 0, sizeof(*f));
	if (!CHECK(ops != NULL))
		return -1;
	tables[0] = ops->keys;
	if (!CHECK_INT_EQ(cfg_init(&f->cfg, tables, err, sizeof(err)), 0))
		return -1;
	if (!CHECK_INT_EQ(cfg_set(&f->cfg, "sqlite", "path", db_path, "test",
				  err, sizeof(err)),
			  0) ||
	    !CHECK_INT_EQ(cfg_set(&f->cfg, "sqlite", "busy_timeout", "0.001",
				  "test", err, sizeof(err)),
			  0))
		return -1;
	f->store = store_open(ops, &f->cfg, &owner, err, sizeof(err));
	if (!CHECK(f->store != NULL)) {
		printf("    store_open: %s\n", err);
		return -1;
	}
	return CHECK_INT_EQ(sqlite3_open(db_path, &f->db), SQLITE_OK) ? 0 : -1;
}

static void teardown(struct fixture *f)
{
	store_close(f->store);
	sqlite3_close(f->db);
	cfg_release(&f->cfg);
}

/* Every column of every row, in id order, as one string (malloc'd). */
static char *dump(sqlite3 *db)
{
	sqlite3_stmt *st = NULL;
	char *out = NULL;

	if (CHECK_INT_EQ(
		    sqlite3_prepare_v2(
			    db,
			    "SELECT count(*) || ':' || ifnull(group_concat("
			    "id || '|' || ifnull(ts, 'N') || '|' || "
			    "ifnull(delivery_status, 'N') || '|' || "
			    "ifnull(owner, 'N') || '|' || "
			    "ifnull(claimed_at, 'N') || '|' || "
			    "ifnull(attempts, 'N') || '|' || "
			    "ifnull(error, 'N'), ';'), '') "
			    "FROM (SELECT * FROM results ORDER BY id)",
			    -1, &st, NULL),
		    SQLITE_OK) &&
	    CHECK_INT_EQ(sqlite3_step(st), SQLITE_ROW))
		out = strdup((const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	return out;
}

static long rows(sqlite3 *db)
{
	char *d = dump(db);
	long n = d ? strtol(d, NULL, 10) : -1;

	free(d);
	return n;
}

/* n outcomes, ids from first, every third one with an error text. */
static void write_journal(const char *path, uint32_t first, size_t n)
{
	struct store_result *r = calloc(n, sizeof(*r));
	char(*text)[32] = calloc(n, sizeof(*text));
	size_t i;

	if (!CHECK(r != NULL && text != NULL))
		goto out;
	for (i = 0; i < n; i++) {
		r[i].id = first + (uint32_t)i;
		r[i].ts = NOW + (time_t)i;
		r[i].status = (int)(i % 3) - 1;
		r[i].attempts = (unsigned)(i % 4) + 1;
		snprintf(text[i], sizeof(text[i]), "HTTP 400\t#%zu", i);
		if (r[i].status < 0)
			r[i].error = text[i];
	}
	CHECK_INT_EQ(journal_append(path, r, n, err, sizeof(err)), 0);
out:
	free(r);
	free(text);
}

static enum journal_replay replay(const char *path, struct store *s,
				  unsigned long *n)
{
	struct journal_reader *j = open_journal(path);
	enum journal_replay rc;

	*n = 0;
	if (j == NULL)
		return JOURNAL_BAD;
	err[0] = '\0';
	rc = journal_replay(j, s, n, err, sizeof(err));
	journal_close(j);
	return rc;
}

/* More outcomes than a batch, twice: the second replay changes nothing. */
static void test_replay_idempotent(void)
{
	const char *path = h_tmp("replay.journal");
	struct fixture f;
	unsigned long n = 0;
	char *first = NULL, *second = NULL, want[64];
	size_t total = 2 * JOURNAL_REPLAY_BATCH + 7;

	if (setup(&f, h_tmp("replay.db")) < 0)
		goto out;
	write_journal(path, 1000, total);
	if (!CHECK_INT_EQ(replay(path, f.store, &n), JOURNAL_REPLAYED))
		printf("    journal_replay: %s\n", err);
	CHECK_INT_EQ(n, total);
	first = dump(f.db);
	if (first == NULL)
		goto out;
	snprintf(want, sizeof(want), "%zu:1000|2023-11-14 22:13:20|N|", total);
	CHECK(strncmp(first, want, strlen(want)) == 0);
	/* the error text unescaped, the last one past two batches */
	CHECK_CONTAINS(first, "|1|HTTP 400\t#0;1001|2023-11-14 22:13:21|0|");
	CHECK_CONTAINS(first, ";1002|2023-11-14 22:13:22|1|");
	CHECK_CONTAINS(first, ";2005|2023-11-14 22:30:05|N|");
	CHECK_CONTAINS(first, ";2006|2023-11-14 22:30:06|0|");
	CHECK_INT_EQ(replay(path, f.store, &n), JOURNAL_REPLAYED);
	CHECK_INT_EQ(n, total);
	second = dump(f.db);
	CHECK_STR_EQ(second, first);
out:
	free(first);
	free(second);
	teardown(&f);
}

/*
 * A bad line stops the replay with its number; what was recorded before
 * it is counted, and no more than that is in the store.
 */
static void test_replay_bad_line(void)
{
	const char *path = h_tmp("replay-bad.journal");
	struct fixture f;
	unsigned long n = 99;
	char want[600];

	if (setup(&f, h_tmp("replay-bad.db")) < 0)
		goto out;
	write_journal(path, 1, JOURNAL_REPLAY_BATCH + 10);
	append_raw(path, "not a line\n");
	write_journal(path, 5000, 3);
	CHECK_INT_EQ(replay(path, f.store, &n), JOURNAL_BAD);
	snprintf(want, sizeof(want), "%s:%d: not a journal line", path,
		 JOURNAL_REPLAY_BATCH + 10 + 2);
	CHECK_STR_EQ(err, want);
	CHECK(n <= JOURNAL_REPLAY_BATCH + 10);
	CHECK_INT_EQ(rows(f.db), n);
out:
	teardown(&f);
}

/* The store refuses (another connection holds the write lock). */
static void test_replay_store_failed(void)
{
	const char *path = h_tmp("replay-locked.journal");
	struct fixture f;
	unsigned long n = 99;

	if (setup(&f, h_tmp("replay-locked.db")) < 0)
		goto out;
	write_journal(path, 1, 3);
	if (!CHECK_INT_EQ(
		    sqlite3_exec(f.db, "BEGIN EXCLUSIVE", NULL, NULL, NULL),
		    SQLITE_OK))
		goto out;
	CHECK_INT_EQ(replay(path, f.store, &n), JOURNAL_STORE_FAILED);
	CHECK_INT_EQ(n, 0);
	CHECK_CONTAINS(err, "replay-locked.db");
	sqlite3_exec(f.db, "ROLLBACK", NULL, NULL, NULL);
	CHECK_INT_EQ(rows(f.db), 0);
	/* once the lock is gone, the same journal goes in whole */
	CHECK_INT_EQ(replay(path, f.store, &n), JOURNAL_REPLAYED);
	CHECK_INT_EQ(n, 3);
	CHECK_INT_EQ(rows(f.db), 3);
out:
	teardown(&f);
}

static const struct h_test tests[] = {
	TEST(test_append_read_back),
	TEST(test_cannot_write),
	TEST(test_missing),
	TEST(test_torn_last_line),
	TEST(test_bad_line_named),
	TEST(test_replay_idempotent),
	TEST(test_replay_bad_line),
	TEST(test_replay_store_failed),
	{ NULL, NULL },
};

int main(int argc, char **argv)
{
	return h_main(argc, argv, tests);
}

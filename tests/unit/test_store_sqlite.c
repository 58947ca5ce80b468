/*
 * store_sqlite through the store interface: claims by atomic insert,
 * outcomes as SPEC section 5 fixes them, releases of our own claims only.
 * The rows are read back with sqlite3 itself.
 */
#include "cfg.h"
#include "harness.h"
#include "store.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NOW 1700000000 /* 2023-11-14 22:13:20 UTC */

static char err[1024];

struct fixture {
	struct cfg cfg;
	const struct store_ops *ops;
	char path[512];
};

/* A config for the sqlite backend with its file at path. */
static int setup(struct fixture *f, const char *path)
{
	const struct cfg_key *tables[2] = { NULL, NULL };

	f->ops = store_find("sqlite");
	if (!CHECK(f->ops != NULL) || !CHECK_STR_EQ(f->ops->name, "sqlite"))
		return -1;
	tables[0] = f->ops->keys;
	snprintf(f->path, sizeof(f->path), "%s", path);
	if (!CHECK_INT_EQ(cfg_init(&f->cfg, tables, err, sizeof(err)), 0))
		return -1;
	if (!CHECK_INT_EQ(cfg_set(&f->cfg, "sqlite", "path", f->path, "test",
				  err, sizeof(err)),
			  0)) {
		printf("    %s\n", err);
		cfg_release(&f->cfg);
		return -1;
	}
	return 0;
}

/* A run of another host ("host" is not ours), within its lease. */
static struct store *open_as(struct fixture *f, const char *owner)
{
	struct store_owner o = { .name = owner, .claim_lease = 3600 };
	struct store *s;

	err[0] = '\0';
	s = store_open(f->ops, &f->cfg, &o, err, sizeof(err));
	if (!CHECK(s != NULL))
		printf("    store_open: %s\n", err);
	return s;
}

/* Claim n ids; out must match want (NULL: do not look). */
static int claim(struct store *s, const uint32_t *ids, size_t n,
		 const enum claim *want)
{
	enum claim out[16];
	size_t i;

	if (!CHECK_INT_EQ(store_claim(s, ids, n, out, err, sizeof(err)), 0)) {
		printf("    store_claim: %s\n", err);
		return -1;
	}
	for (i = 0; want && i < n; i++)
		if (!CHECK_INT_EQ(out[i], want[i]))
			printf("    (id %u)\n", (unsigned)ids[i]);
	return 0;
}

static sqlite3 *db_open(const char *path)
{
	sqlite3 *db = NULL;

	if (!CHECK_INT_EQ(
		    sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL),
		    SQLITE_OK)) {
		sqlite3_close(db);
		return NULL;
	}
	return db;
}

/*
 * Two runs on one file: a ("host:1:a") and b (b_owner), and a handle to
 * look in it.  On failure what was opened is closed again.
 */
struct two_runs {
	struct fixture f;
	struct store *a, *b;
	sqlite3 *db;
};

static void close_two_runs(struct two_runs *t)
{
	sqlite3_close(t->db);
	store_close(t->a);
	store_close(t->b);
	cfg_release(&t->f.cfg);
}

static int open_two_runs(struct two_runs *t, const char *file,
			 const char *b_owner)
{
	t->a = t->b = NULL;
	t->db = NULL;
	if (setup(&t->f, h_tmp(file)) < 0)
		return -1;
	if ((t->a = open_as(&t->f, "host:1:a")) == NULL ||
	    (t->b = open_as(&t->f, b_owner)) == NULL ||
	    (t->db = db_open(t->f.path)) == NULL) {
		close_two_runs(t);
		return -1;
	}
	return 0;
}

/*
 * Look at the row of id: returns 1 and fills ts ("" for NULL) and status
 * (-1 for NULL), 0 when there is no row, -1 on error.
 */
static int row(sqlite3 *db, uint32_t id, char ts[32], int *status)
{
	sqlite3_stmt *st = NULL;
	int rc, found = -1;

	if (!CHECK_INT_EQ(
		    sqlite3_prepare_v2(
			    db,
			    "SELECT ts, delivery_status, typeof(ts) FROM results "
			    "WHERE id = ?1",
			    -1, &st, NULL),
		    SQLITE_OK))
		return -1;
	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const unsigned char *t = sqlite3_column_text(st, 0);

		snprintf(ts, 32, "%s", t ? (const char *)t : "");
		*status = sqlite3_column_type(st, 1) == SQLITE_NULL
				  ? -1
				  : sqlite3_column_int(st, 1);
		found = 1;
	} else if (rc == SQLITE_DONE) {
		found = 0;
	}
	sqlite3_finalize(st);
	return found;
}

static long count(sqlite3 *db, const char *where)
{
	char sql[256];
	sqlite3_stmt *st = NULL;
	long n = -1;

	snprintf(sql, sizeof(sql), "SELECT count(*) FROM results WHERE %s",
		 where);
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}

#define ROW_IS(db, id, ts, status) row_is(db, id, ts, status, __LINE__)
static void row_is(sqlite3 *db, uint32_t id, const char *want_ts,
		   int want_status, int from)
{
	char ts[32] = "?";
	int status = -2, before = h_failures();

	if (CHECK_INT_EQ(row(db, id, ts, &status), 1)) {
		CHECK_STR_EQ(ts, want_ts);
		CHECK_INT_EQ(status, want_status);
	}
	if (h_failures() != before)
		printf("    (row of id %u, from line %d)\n", (unsigned)id,
		       from);
}

static void test_claim_finish_claim(void)
{
	static const uint32_t ids[] = { 1, 2, 3 }, more[] = { 1, 2, 3, 4 };
	static const enum claim ok[] = { CLAIM_OK, CLAIM_OK, CLAIM_OK };
	static const enum claim held[] = { CLAIM_HELD, CLAIM_HELD, CLAIM_HELD,
					   CLAIM_OK };
	static const enum claim done[] = { CLAIM_DONE, CLAIM_DONE, CLAIM_DONE };
	struct store_result r[3] = {
		{ 1, NOW, 1, 1, NULL },
		{ 2, NOW + 1, 0, 2, NULL },
		{ 3, NOW + 59, -1, 1, "bad address" },
	};
	struct two_runs t;

	if (open_two_runs(&t, "claim.db", "host:2:b") < 0)
		return;
	claim(t.a, ids, 3, ok);
	ROW_IS(t.db, 1, "", -1); /* claimed: ts and status NULL */
	CHECK_INT_EQ(count(t.db, "ts IS NULL AND delivery_status IS NULL"), 3);
	/* before finish: held, for this run and another alike */
	claim(t.a, more, 4, held);
	claim(t.b, ids, 3, held);
	CHECK_INT_EQ(store_finish(t.a, r, 3, err, sizeof(err)), 0);
	ROW_IS(t.db, 1, "2023-11-14 22:13:20", 1);
	ROW_IS(t.db, 2, "2023-11-14 22:13:21", 0);
	ROW_IS(t.db, 3, "2023-11-14 22:14:19", -1);
	ROW_IS(t.db, 4, "", -1);
	/* after finish: done, for everyone */
	claim(t.a, ids, 3, done);
	claim(t.b, ids, 3, done);
	CHECK_INT_EQ(count(t.db, "1"), 4);
	close_two_runs(&t);
}

static void test_release(void)
{
	static const uint32_t mine[] = { 10, 11, 12 }, theirs[] = { 20 };
	static const uint32_t rel[] = { 10, 11, 20, 99 };
	struct store_result done = { 12, NOW, 1, 1, NULL };
	struct two_runs t;
	int status;
	char ts[32];

	if (open_two_runs(&t, "release.db", "host:2:b") < 0)
		return;
	claim(t.a, mine, 3, NULL);
	claim(t.b, theirs, 1, NULL);
	CHECK_INT_EQ(store_finish(t.a, &done, 1, err, sizeof(err)), 0);
	/* 10, 11: our claims, gone; 12: done, kept; 20: theirs, kept */
	CHECK_INT_EQ(store_release(t.a, rel, 4, err, sizeof(err)), 0);
	CHECK_INT_EQ(store_release(t.a, &mine[2], 1, err, sizeof(err)), 0);
	CHECK_INT_EQ(row(t.db, 10, ts, &status), 0);
	CHECK_INT_EQ(row(t.db, 11, ts, &status), 0);
	ROW_IS(t.db, 12, "2023-11-14 22:13:20", 1);
	ROW_IS(t.db, 20, "", -1);
	CHECK_INT_EQ(count(t.db, "1"), 2);
	/* a released id can be claimed again */
	claim(t.b, mine, 1, (const enum claim[]){ CLAIM_OK });
	close_two_runs(&t);
}

/* Ids at both ends of the range, and a batch of a thousand. */
static void test_id_range_and_big_batch(void)
{
	static const uint32_t edge[] = { 0, 2147483647u, 2147483648u,
					 4294967295u };
	uint32_t *ids = malloc(1000 * sizeof(*ids));
	enum claim *out = malloc(1000 * sizeof(*out));
	struct store_result r[4];
	struct fixture f;
	struct store *s = NULL;
	sqlite3 *db = NULL;
	size_t i, ok = 0;

	if (!CHECK(ids && out) || setup(&f, h_tmp("range.db")) < 0)
		goto nofix;
	if ((s = open_as(&f, "host:1:a")) == NULL ||
	    (db = db_open(f.path)) == NULL)
		goto out;
	claim(s, edge, 4,
	      (const enum claim[]){ CLAIM_OK, CLAIM_OK, CLAIM_OK, CLAIM_OK });
	for (i = 0; i < 4; i++)
		r[i] = (struct store_result){ edge[i], NOW, 1, 1, NULL };
	CHECK_INT_EQ(store_finish(s, r, 4, err, sizeof(err)), 0);
	CHECK_INT_EQ(count(db, "id = 4294967295 AND delivery_status = 1"), 1);
	CHECK_INT_EQ(count(db, "id = 2147483648 AND delivery_status = 1"), 1);
	CHECK_INT_EQ(count(db, "id = 0 AND delivery_status = 1"), 1);
	CHECK_INT_EQ(count(db, "id < 0"), 0);
	for (i = 0; i < 1000; i++)
		ids[i] = 1000000 + (uint32_t)i;
	if (CHECK_INT_EQ(store_claim(s, ids, 1000, out, err, sizeof(err)), 0))
		for (i = 0; i < 1000; i++)
			ok += out[i] == CLAIM_OK;
	CHECK_INT_EQ(ok, 1000);
	CHECK_INT_EQ(count(db, "id >= 1000000 AND ts IS NULL"), 1000);
out:
	sqlite3_close(db);
	store_close(s);
	cfg_release(&f.cfg);
nofix:
	free(ids);
	free(out);
}

/*
 * Claims go 32 ids to a statement: an id that is there (held by another
 * run, done) sends its 32 one by one, and the ids claimed before it in the
 * same batch stay claimed.  71 ids: two statements and 7 alone.
 */
static void test_claim_in_rows(void)
{
	enum { N = 71 };
	static const uint32_t theirs[] = { 140, 150, 165 };
	struct store_result done[] = { { 150, NOW, 1, 1, NULL },
				       { 165, NOW, 0, 1, NULL } };
	uint32_t ids[N];
	enum claim out[N];
	struct two_runs t;
	size_t i, pass;

	if (open_two_runs(&t, "claimrows.db", "otherhost:1:b") < 0)
		return;
	claim(t.b, theirs, 3, NULL);
	CHECK_INT_EQ(store_finish(t.b, done, 2, err, sizeof(err)), 0);
	for (i = 0; i < N; i++)
		ids[i] = 100 + (uint32_t)i;
	/* then again: every id is there, every statement meets one */
	for (pass = 0; pass < 2; pass++) {
		if (!CHECK_INT_EQ(
			    store_claim(t.a, ids, N, out, err, sizeof(err)),
			    0)) {
			printf("    store_claim: %s\n", err);
			break;
		}
		for (i = 0; i < N; i++) {
			enum claim want = pass ? CLAIM_HELD : CLAIM_OK;

			if (ids[i] == 140)
				want = CLAIM_HELD;
			else if (ids[i] == 150 || ids[i] == 165)
				want = CLAIM_DONE;
			if (!CHECK_INT_EQ(out[i], want))
				printf("    (id %u, pass %zu)\n",
				       (unsigned)ids[i], pass);
		}
		CHECK_INT_EQ(count(t.db, "owner = 'host:1:a' AND ts IS NULL AND"
					 " claimed_at IS NOT NULL"),
			     N - 3);
		CHECK_INT_EQ(count(t.db, "id = 140 AND owner = 'otherhost:1:b'"
					 " AND ts IS NULL"),
			     1);
		CHECK_INT_EQ(count(t.db, "ts IS NOT NULL"), 2);
		CHECK_INT_EQ(count(t.db, "1"), N);
	}
	close_two_runs(&t);
}

/*
 * Outcomes are written 32 rows to a statement and the rest one by one:
 * every row gets its own fields, and an id given twice (in one statement
 * or in two) ends as the later one says.
 */
static void test_finish_in_rows(void)
{
	enum { N = 71 };
	uint32_t ids[N];
	enum claim out[N];
	struct store_result r[N];
	char errors[N][16], sql[160];
	struct fixture f;
	struct store *s = NULL;
	sqlite3 *db = NULL;
	size_t i, bad = 0;

	if (setup(&f, h_tmp("rows.db")) < 0)
		return;
	if ((s = open_as(&f, "host:1:a")) == NULL ||
	    (db = db_open(f.path)) == NULL)
		goto out;
	for (i = 0; i < N; i++) {
		ids[i] = 100 + (uint32_t)i;
		snprintf(errors[i], sizeof(errors[i]), "e%zu", i);
		r[i] = (struct store_result){ ids[i], NOW + (time_t)i,
					      (int)(i % 3) - 1,
					      (unsigned)(i % 5) + 1,
					      i % 3 == 0 ? errors[i] : NULL };
	}
	CHECK_INT_EQ(store_claim(s, ids, N, out, err, sizeof(err)), 0);
	/* in the first statement: 103 again; across them: 101 in the last */
	r[10] = (struct store_result){ 103, NOW, 1, 9, NULL };
	r[N - 1] = (struct store_result){ 101, NOW, 0, 8, errors[0] };
	CHECK_INT_EQ(store_finish(s, r, N, err, sizeof(err)), 0);
	for (i = 0; i < N; i++) {
		const struct store_result *w = &r[i];
		char ts[20];

		if (i == 1 || i == 3)
			continue; /* said again later */
		store_format_ts(w->ts, ts);
		snprintf(sql, sizeof(sql),
			 "id = %u AND ts = '%s' AND delivery_status IS %s "
			 "AND attempts = %u AND error IS %s%s%s "
			 "AND owner IS NULL",
			 (unsigned)w->id, ts,
			 w->status < 0 ? "NULL"
			 : w->status   ? "1"
				       : "0",
			 w->attempts, w->error ? "'" : "",
			 w->error ? w->error : "NULL", w->error ? "'" : "");
		if (count(db, sql) != 1 && bad++ < 5)
			printf("    not so: %s\n", sql);
	}
	CHECK_INT_EQ(bad, 0);
	/* ids 110 and 170 left: 100..170 once each */
	CHECK_INT_EQ(count(db, "ts IS NULL"), 2);
	CHECK_INT_EQ(count(db, "1"), N);
out:
	sqlite3_close(db);
	store_close(s);
	cfg_release(&f.cfg);
}

/* ts is UTC whatever the local time zone. */
static void test_ts_is_utc(void)
{
	char ts[20];

	setenv("TZ", "Asia/Vladivostok", 1);
	store_format_ts(NOW, ts);
	CHECK_STR_EQ(ts, "2023-11-14 22:13:20");
	store_format_ts(0, ts);
	CHECK_STR_EQ(ts, "1970-01-01 00:00:00");
	store_format_ts(951782400, ts); /* a leap day */
	CHECK_STR_EQ(ts, "2000-02-29 00:00:00");
}

static void test_schema(void)
{
	struct fixture f;
	struct store *s = NULL;
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;

	if (setup(&f, h_tmp("schema.db")) < 0)
		return;
	/* a table made by hand with SPEC's three columns and a done row */
	if (!CHECK_INT_EQ(sqlite3_open(f.path, &db), SQLITE_OK) ||
	    !CHECK_INT_EQ(
		    sqlite3_exec(
			    db,
			    "CREATE TABLE results (id INTEGER PRIMARY KEY, ts TEXT,"
			    " delivery_status INTEGER);"
			    "INSERT INTO results"
			    " VALUES (5, '2020-01-01 00:00:00', 1)",
			    NULL, NULL, NULL),
		    SQLITE_OK))
		goto out;
	if ((s = open_as(&f, "host:1:a")) == NULL)
		goto out;
	claim(s, (const uint32_t[]){ 5, 6 }, 2,
	      (const enum claim[]){ CLAIM_DONE, CLAIM_OK });
	/* WAL is a property of the file: a new connection sees it */
	sqlite3_close(db);
	if ((db = db_open(f.path)) == NULL)
		goto out;
	if (CHECK_INT_EQ(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st,
					    NULL),
			 SQLITE_OK) &&
	    CHECK_INT_EQ(sqlite3_step(st), SQLITE_ROW))
		CHECK_STR_EQ((const char *)sqlite3_column_text(st, 0), "wal");
	sqlite3_finalize(st);
out:
	sqlite3_close(db);
	store_close(s);
	cfg_release(&f.cfg);
}

static void test_open_fails(void)
{
	struct fixture f;
	struct store_owner o = { .name = "host:1:a" };
	struct store *s;

	if (setup(&f, h_tmp("no/such/dir/x.db")) < 0)
		return;
	err[0] = '\0';
	s = store_open(f.ops, &f.cfg, &o, err, sizeof(err));
	CHECK(s == NULL);
	CHECK_CONTAINS(err, f.path);
	store_close(s);
	cfg_release(&f.cfg);
}

/* Another writer holds the lock past busy_timeout: -1, and no claim. */
static void test_claim_all_or_nothing(void)
{
	static const uint32_t ids[] = { 1, 2 };
	struct fixture f;
	struct store *s = NULL;
	sqlite3 *db = NULL;
	enum claim out[2];

	if (setup(&f, h_tmp("locked.db")) < 0)
		return;
	CHECK_INT_EQ(cfg_set(&f.cfg, "sqlite", "busy_timeout", "0.2", "test",
			     err, sizeof(err)),
		     0);
	if ((s = open_as(&f, "host:1:a")) == NULL ||
	    (db = db_open(f.path)) == NULL)
		goto out;
	if (!CHECK_INT_EQ(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL),
			  SQLITE_OK))
		goto out;
	err[0] = '\0';
	CHECK_INT_EQ(store_claim(s, ids, 2, out, err, sizeof(err)), -1);
	CHECK_CONTAINS(err, f.path);
	sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	CHECK_INT_EQ(count(db, "1"), 0);
	/* and the store works again once the lock is gone */
	claim(s, ids, 2, (const enum claim[]){ CLAIM_OK, CLAIM_OK });
out:
	sqlite3_close(db);
	store_close(s);
	cfg_release(&f.cfg);
}

/*
 * A claim whose run is gone: CLAIM_STALE without --reclaim (for --wait,
 * which stops waiting for it), taken over with it; a live claim of
 * another host within its lease stays CLAIM_HELD either way.
 */
static void test_stale_claims(void)
{
	static const uint32_t ids[] = { 1, 2 };
	char host[256] = "", dead[300];
	struct store_owner w = { .name = "w", .claim_lease = 3600 };
	struct store_owner rc = { .name = "r",
				  .reclaim = 1,
				  .claim_lease = 3600 };
	struct fixture f;
	struct store *a = NULL, *b = NULL, *watcher = NULL, *reclaimer = NULL;

	if (setup(&f, h_tmp("stale.db")) < 0)
		return;
	gethostname(host, sizeof(host) - 1);
	/* this host, a pid that cannot exist (above pid_max) */
	snprintf(dead, sizeof(dead), "%s:99999999:1", host);
	if ((a = open_as(&f, dead)) == NULL ||
	    (b = open_as(&f, "otherhost:1:1")) == NULL)
		goto out;
	claim(a, ids, 1, (const enum claim[]){ CLAIM_OK });
	claim(b, ids + 1, 1, (const enum claim[]){ CLAIM_OK });
	watcher = store_open(f.ops, &f.cfg, &w, err, sizeof(err));
	reclaimer = store_open(f.ops, &f.cfg, &rc, err, sizeof(err));
	if (!CHECK(watcher != NULL && reclaimer != NULL))
		goto out;
	claim(watcher, ids, 2, (const enum claim[]){ CLAIM_STALE, CLAIM_HELD });
	claim(reclaimer, ids, 2, (const enum claim[]){ CLAIM_OK, CLAIM_HELD });
	claim(watcher, ids, 1, (const enum claim[]){ CLAIM_HELD });
out:
	store_close(a);
	store_close(b);
	store_close(watcher);
	store_close(reclaimer);
	cfg_release(&f.cfg);
}

static const struct h_test tests[] = {
	TEST(test_stale_claims),  TEST(test_claim_finish_claim),
	TEST(test_release),	  TEST(test_id_range_and_big_batch),
	TEST(test_claim_in_rows), TEST(test_finish_in_rows),
	TEST(test_ts_is_utc),	  TEST(test_schema),
	TEST(test_open_fails),	  TEST(test_claim_all_or_nothing),
	{ NULL, NULL },
};

int main(int argc, char **argv)
{
	return h_main(argc, argv, tests);
}

/*
 * store_worker on a real SQLite store: jobs come back done, in the order
 * they went in, with the claims filled in (also when the worker does
 * several in one store call); the caller is woken for each; after a
 * failed call the later jobs come back untried and the store is the
 * caller's again after store_worker_stop().  Given a second connection,
 * claims go through the first and outcomes through the second, and a
 * failure on either stops both.
 */
#include "cfg.h"
#include "harness.h"
#include "store.h"
#include "store_worker.h"

#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NOW 1700000000

static char err[1024];
static atomic_int wakes;

static void on_wake(void *arg)
{
	(void)arg;
	atomic_fetch_add(&wakes, 1);
}

static struct store *open_store(struct cfg *cfg, const char *name,
				const char *busy)
{
	const struct cfg_key *tables[2] = { NULL, NULL };
	const struct store_ops *ops = store_find("sqlite");
	struct store_owner o = { .name = "host:1:2:3", .claim_lease = 3600 };
	const char *path = h_tmp(name);
	struct store *s;

	unlink(path);
	tables[0] = ops->keys;
	if (!CHECK_INT_EQ(cfg_init(cfg, tables, err, sizeof(err)), 0) ||
	    !CHECK_INT_EQ(cfg_set(cfg, "sqlite", "path", path, "test", err,
				  sizeof(err)),
			  0) ||
	    !CHECK_INT_EQ(cfg_set(cfg, "sqlite", "busy_timeout", busy, "test",
				  err, sizeof(err)),
			  0))
		return NULL;
	s = store_open(ops, cfg, &o, err, sizeof(err));
	if (!CHECK(s != NULL))
		printf("    store_open: %s\n", err);
	return s;
}

/* The next job back, waiting for it up to 10 s. */
static struct store_job *take(struct store_worker *w)
{
	struct timespec pause = { 0, 1000000 };
	struct store_job *j;
	int i;

	for (i = 0; i < 10000; i++) {
		j = store_worker_take(w);
		if (j)
			return j;
		nanosleep(&pause, NULL);
	}
	return NULL;
}

static void claim_job(struct store_job *j, uint32_t *ids, enum claim *out,
		      size_t n)
{
	memset(j, 0, sizeof(*j));
	j->kind = STORE_JOB_CLAIM;
	j->ids = ids;
	j->claims = out;
	j->n = n;
}

static void test_jobs_back_in_order_with_claims(void)
{
	struct cfg cfg;
	struct store *s = open_store(&cfg, "worker_order.db", "1");
	struct store_worker *w;
	uint32_t a_ids[] = { 1, 2, 3 }, b_ids[] = { 4, 5 }, c_ids[] = { 1, 6 };
	enum claim a_out[3], b_out[2], c_out[2], again[2];
	struct store_job a, b, c, f, *back[3];
	struct store_result r[2] = { { 4, NOW, 1, 1, NULL },
				     { 5, NOW, 0, 1, NULL } };
	size_t i;

	if (s == NULL)
		return;
	atomic_store(&wakes, 0);
	w = store_worker_start(s, NULL, on_wake, NULL, err, sizeof(err));
	if (!CHECK(w != NULL))
		goto out;
	claim_job(&a, a_ids, a_out, 3);
	claim_job(&b, b_ids, b_out, 2);
	/* 1 again in another job: ours already, not ours to send twice */
	claim_job(&c, c_ids, c_out, 2);
	store_worker_submit(w, &a);
	store_worker_submit(w, &b);
	store_worker_submit(w, &c);
	for (i = 0; i < 3; i++)
		back[i] = take(w);
	CHECK(back[0] == &a);
	CHECK(back[1] == &b);
	CHECK(back[2] == &c);
	CHECK(atomic_load(&wakes) >= 1);
	CHECK_INT_EQ(a.rc, 0);
	CHECK_INT_EQ(b.rc, 0);
	CHECK_INT_EQ(c.rc, 0);
	CHECK_INT_EQ(a.tried && b.tried && c.tried, 1);
	for (i = 0; i < 3; i++)
		CHECK_INT_EQ(a_out[i], CLAIM_OK);
	CHECK_INT_EQ(b_out[0], CLAIM_OK);
	CHECK_INT_EQ(b_out[1], CLAIM_OK);
	CHECK(c_out[0] != CLAIM_OK);
	CHECK_INT_EQ(c_out[1], CLAIM_OK);

	memset(&f, 0, sizeof(f));
	f.kind = STORE_JOB_FINISH;
	f.results = r;
	f.n = 2;
	store_worker_submit(w, &f);
	CHECK(take(w) == &f);
	CHECK_INT_EQ(f.rc, 0);
	store_worker_stop(w);
	CHECK(store_worker_take(w) == NULL);
	store_worker_free(w);

	/* the store is the caller's again: 4 and 5 are done */
	if (CHECK_INT_EQ(store_claim(s, b_ids, 2, again, err, sizeof(err)),
			 0)) {
		CHECK_INT_EQ(again[0], CLAIM_DONE);
		CHECK_INT_EQ(again[1], CLAIM_DONE);
	}
out:
	store_close(s);
	cfg_release(&cfg);
}

/* Another connection to the file holds its write lock: 1, or 0. */
static int lock_file(const char *name, sqlite3 **db)
{
	return CHECK_INT_EQ(sqlite3_open(h_tmp(name), db), SQLITE_OK) &&
	       CHECK_INT_EQ(
		       sqlite3_exec(*db, "BEGIN EXCLUSIVE", NULL, NULL, NULL),
		       SQLITE_OK);
}

static void test_after_a_failure_jobs_come_back_untried(void)
{
	struct cfg cfg;
	struct store *s = open_store(&cfg, "worker_fail.db", "1");
	struct store_worker *w = NULL;
	sqlite3 *db = NULL;
	uint32_t a_ids[] = { 10 }, b_ids[] = { 11 };
	enum claim a_out[1], b_out[1];
	struct store_job a, b;

	if (s == NULL)
		return;
	/* another connection holds the write lock: the claim fails */
	if (!lock_file("worker_fail.db", &db))
		goto out;
	w = store_worker_start(s, NULL, NULL, NULL, err, sizeof(err));
	if (!CHECK(w != NULL))
		goto out;
	claim_job(&a, a_ids, a_out, 1);
	store_worker_submit(w, &a);
	CHECK(take(w) == &a);
	CHECK_INT_EQ(a.rc, -1);
	CHECK_INT_EQ(a.tried, 1);
	CHECK(a.err[0] != '\0');
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	/* the store would take it now, but the worker tries no more */
	claim_job(&b, b_ids, b_out, 1);
	store_worker_submit(w, &b);
	CHECK(take(w) == &b);
	CHECK_INT_EQ(b.rc, -1);
	CHECK_INT_EQ(b.tried, 0);
	CHECK_CONTAINS(b.err, "not tried");
	store_worker_stop(w);
	/* the caller's own try at the end */
	CHECK_INT_EQ(store_claim(s, b_ids, 1, b_out, err, sizeof(err)), 0);
	CHECK_INT_EQ(b_out[0], CLAIM_OK);
out:
	store_worker_free(w);
	sqlite3_close(db);
	store_close(s);
	cfg_release(&cfg);
}

/* What the SQLite file at name says of id: "ts NULL", "ts set", "none". */
static const char *record_of(const char *name, uint32_t id)
{
	static char what[16];
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;

	snprintf(what, sizeof(what), "error");
	if (sqlite3_open(h_tmp(name), &db) == SQLITE_OK &&
	    sqlite3_prepare_v2(db,
			       "SELECT ts IS NULL FROM results WHERE id = ?",
			       -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, id);
		switch (sqlite3_step(st)) {
		case SQLITE_ROW:
			snprintf(what, sizeof(what), "%s",
				 sqlite3_column_int(st, 0) ? "ts NULL"
							   : "ts set");
			break;
		case SQLITE_DONE: snprintf(what, sizeof(what), "none"); break;
		}
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	return what;
}

/*
 * The second connection goes to another file here, so that where each
 * job went can be seen: claims in the first, outcomes in the second.
 */
static void test_second_connection_takes_the_outcomes(void)
{
	struct cfg cfg_a, cfg_b;
	struct store *a = open_store(&cfg_a, "worker_lane_a.db", "1");
	struct store *b = open_store(&cfg_b, "worker_lane_b.db", "1");
	struct store_worker *w = NULL;
	sqlite3 *db = NULL;
	uint32_t ids[] = { 20, 21 }, rel[] = { 21 }, later[] = { 22 };
	enum claim out[2], later_out[1];
	struct store_result r[1] = { { 20, NOW, 1, 1, NULL } };
	struct store_job c, f, rl, f2, c2;

	if (a == NULL || b == NULL)
		goto out;
	/* B already holds claims on 20 and 21, as A will */
	if (!CHECK_INT_EQ(store_claim(b, ids, 2, out, err, sizeof(err)), 0))
		goto out;
	w = store_worker_start(a, b, NULL, NULL, err, sizeof(err));
	if (!CHECK(w != NULL))
		goto out;
	claim_job(&c, ids, out, 2);
	store_worker_submit(w, &c);
	CHECK(take(w) == &c);
	CHECK_INT_EQ(c.rc, 0);
	CHECK_INT_EQ(out[0], CLAIM_OK);
	CHECK_INT_EQ(out[1], CLAIM_OK);

	memset(&f, 0, sizeof(f));
	f.kind = STORE_JOB_FINISH;
	f.results = r;
	f.n = 1;
	memset(&rl, 0, sizeof(rl));
	rl.kind = STORE_JOB_RELEASE;
	rl.ids = rel;
	rl.n = 1;
	store_worker_submit(w, &f);
	store_worker_submit(w, &rl);
	CHECK(take(w) != NULL);
	CHECK(take(w) != NULL);
	CHECK_INT_EQ(f.rc, 0);
	CHECK_INT_EQ(rl.rc, 0);
	CHECK_STR_EQ(record_of("worker_lane_a.db", 20), "ts NULL");
	CHECK_STR_EQ(record_of("worker_lane_a.db", 21), "ts NULL");
	CHECK_STR_EQ(record_of("worker_lane_b.db", 20), "ts set");
	CHECK_STR_EQ(record_of("worker_lane_b.db", 21), "none");

	/* an outcome batch fails on the second: the first stops too */
	if (!lock_file("worker_lane_b.db", &db))
		goto out;
	f2 = f;
	store_worker_submit(w, &f2);
	CHECK(take(w) == &f2);
	CHECK_INT_EQ(f2.rc, -1);
	CHECK_INT_EQ(f2.tried, 1);
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	claim_job(&c2, later, later_out, 1);
	store_worker_submit(w, &c2);
	CHECK(take(w) == &c2);
	CHECK_INT_EQ(c2.rc, -1);
	CHECK_INT_EQ(c2.tried, 0);
	CHECK_CONTAINS(c2.err, "not tried");
	CHECK_STR_EQ(record_of("worker_lane_a.db", 22), "none");
out:
	store_worker_free(w);
	sqlite3_close(db);
	store_close(a);
	store_close(b);
	if (a)
		cfg_release(&cfg_a);
	if (b)
		cfg_release(&cfg_b);
}

static const struct h_test tests[] = {
	TEST(test_jobs_back_in_order_with_claims),
	TEST(test_after_a_failure_jobs_come_back_untried),
	TEST(test_second_connection_takes_the_outcomes),
	{ 0 },
};

int main(int argc, char **argv)
{
	return h_main(argc, argv, tests);
}

/*
 * store_sqlite: the embedded default backend.
 *
 * One file shared by every run on the host, in WAL mode so readers and one
 * writer at a time proceed together; a busy timeout makes concurrent runs
 * queue for the write lock instead of failing.  Each batch is one
 * transaction: one commit per batch, never one per letter.  synchronous is
 * FULL: a claim committed before its POST survives even a power cut, so a
 * later run cannot send that id again; the fsync is one per batch.
 */
#include "cfg.h"
#include "owner.h"
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct store_sqlite {
	struct store base; /* first: the common part */
	sqlite3 *db;
	char *path;
	char owner[OWNER_MAX];
	int reclaim;
	long lease; /* seconds before --reclaim may take another host's claim */
	sqlite3_stmt *insert, *insert_many, *state, *update, *update_many;
	sqlite3_stmt *delete, *takeover;
	sqlite3_stmt *begin, *commit;
	char absent[300]; /* read-only: the file or table that is not there */
};

/* Claims and outcomes written by one statement, when a batch has that many. */
#define CLAIM_ROWS  32
#define FINISH_ROWS 32

static const struct cfg_key sqlite_keys[] = {
	{ "sqlite", "path", CFG_PATH, "sender.db", 0, 0, "SENDER_SQLITE_PATH",
	  "the database file, created if missing" },
	{ "sqlite", "busy_timeout", CFG_SECONDS, "30", 0, 3600, NULL,
	  "seconds to wait for another run's write lock" },
	{ NULL, NULL, CFG_STRING, NULL, 0, 0, NULL, NULL },
};

extern const struct store_ops store_sqlite_ops;

static struct store_sqlite *downcast(struct store *s)
{
	return (struct store_sqlite *)store_checked(s, &store_sqlite_ops,
						    "store_sqlite");
}

static int fail(struct store_sqlite *q, const char *what, char *err,
		size_t errlen)
{
	snprintf(err, errlen, "sqlite '%s': %s: %s", q->path, what,
		 sqlite3_errmsg(q->db));
	return -1;
}

static int exec(struct store_sqlite *q, const char *sql, char *err,
		size_t errlen)
{
	if (sqlite3_exec(q->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return fail(q, sql, err, errlen);
	return 0;
}

/* A prepared statement without rows (BEGIN, COMMIT); 0 or -1 with err. */
static int step_once(struct store_sqlite *q, sqlite3_stmt *st, const char *what,
		     char *err, size_t errlen)
{
	int rc = sqlite3_step(st);

	if (rc != SQLITE_DONE)
		fail(q, what, err, errlen);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* Every batch is a transaction: its statements are parsed once. */
static int begin(struct store_sqlite *q, char *err, size_t errlen)
{
	return step_once(q, q->begin, "BEGIN IMMEDIATE", err, errlen);
}

static int commit(struct store_sqlite *q, char *err, size_t errlen)
{
	return step_once(q, q->commit, "COMMIT", err, errlen);
}

/*
 * The end of a batch: COMMIT when every step was done (rc SQLITE_DONE),
 * else ROLLBACK with what failed in err.  0, or -1.
 */
static int end_batch(struct store_sqlite *q, int rc, const char *what,
		     char *err, size_t errlen)
{
	if (rc != SQLITE_DONE || commit(q, err, errlen) < 0) {
		if (rc != SQLITE_DONE)
			fail(q, what, err, errlen);
		sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
		return -1;
	}
	return 0;
}

/*
 * Switch to WAL.  The switch needs the file to itself, and SQLite answers
 * "locked" at once, without its busy handler, while another run opens the
 * same new file: so wait here, within the same busy timeout.
 */
static int set_wal(struct store_sqlite *q, long timeout_ms, char *err,
		   size_t errlen)
{
	long waited = 0;
	int rc;

	while ((rc = sqlite3_exec(q->db, "PRAGMA journal_mode = WAL", NULL,
				  NULL, NULL)) != SQLITE_OK) {
		if ((rc != SQLITE_BUSY && rc != SQLITE_LOCKED) ||
		    waited >= timeout_ms)
			return fail(q, "PRAGMA journal_mode = WAL", err,
				    errlen);
		sqlite3_sleep(10);
		waited += 10;
	}
	return 0;
}

/* Columns beyond SPEC's three: who holds a claim, since when, diagnostics. */
static const char *const extra_columns[] = {
	"owner TEXT", "claimed_at TEXT", "attempts INTEGER", "error TEXT", NULL,
};

static int has_column(struct store_sqlite *q, const char *name, size_t len)
{
	sqlite3_stmt *st = NULL;
	int found = 0;

	if (sqlite3_prepare_v2(q->db, "PRAGMA table_info(results)", -1, &st,
			       NULL) != SQLITE_OK)
		return 0;
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *col = (const char *)sqlite3_column_text(st, 1);

		if (col && strlen(col) == len && strncmp(col, name, len) == 0)
			found = 1;
	}
	sqlite3_finalize(st);
	return found;
}

static int create_schema(struct store_sqlite *q, char *err, size_t errlen)
{
	char sql[128];
	size_t i;

	if (exec(q,
		 "CREATE TABLE IF NOT EXISTS results ("
		 " id INTEGER PRIMARY KEY,"
		 " ts TEXT,"
		 " delivery_status INTEGER,"
		 " owner TEXT, claimed_at TEXT, attempts INTEGER, error TEXT)",
		 err, errlen) < 0)
		return -1;
	/* a table made by hand with SPEC's three columns gets the others */
	for (i = 0; extra_columns[i]; i++) {
		const char *def = extra_columns[i];

		if (has_column(q, def, (size_t)(strchr(def, ' ') - def)))
			continue;
		snprintf(sql, sizeof(sql), "ALTER TABLE results ADD COLUMN %s",
			 def);
		if (exec(q, sql, err, errlen) < 0)
			return -1;
	}
	return 0;
}

static int prepare(struct store_sqlite *q, sqlite3_stmt **st, const char *sql,
		   char *err, size_t errlen)
{
	if (sqlite3_prepare_v3(q->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st,
			       NULL) != SQLITE_OK)
		return fail(q, "prepare", err, errlen);
	return 0;
}

/*
 * A statement that writes rows rows at once: head, rows copies of row
 * with commas between, tail.  A statement's own cost (opening its cursor,
 * the halt) was a third of an outcome's and more of a claim's when it
 * wrote one row (callgrind).  Every ? is numbered after the one before
 * it, so row k's parameters follow row k-1's.
 */
static int prepare_rows(struct store_sqlite *q, sqlite3_stmt **st,
			const char *head, const char *row, size_t rows,
			const char *tail, char *err, size_t errlen)
{
	char sql[1024];
	size_t hl = strlen(head), rl = strlen(row), tl = strlen(tail);
	size_t len = hl, i;

	if (hl + rows * (rl + 1) + tl >= sizeof(sql)) {
		snprintf(err, errlen, "sqlite: no room for %zu rows", rows);
		return -1;
	}
	memcpy(sql, head, hl);
	for (i = 0; i < rows; i++) {
		if (i > 0)
			sql[len++] = ',';
		memcpy(sql + len, row, rl);
		len += rl;
	}
	memcpy(sql + len, tail, tl + 1);
	return prepare(q, st, sql, err, errlen);
}

/* A claim: id, owner, claimed_at, the owner bound once (prepare_all()). */
static const char claim_head[] =
	"INSERT INTO results (id, owner, claimed_at) VALUES ";
#define CLAIM_ROW    "(?,?,?)"
#define CLAIM_PARAMS 3

/*
 * An outcome: id, ts, delivery_status, attempts, error (bind_result()).
 * A later row with the same id updates what an earlier one wrote, as one
 * statement each would.
 */
static const char outcome_head[] =
	"INSERT INTO results (id, ts, delivery_status, attempts, error) VALUES ";
#define OUTCOME_ROW    "(?,?,?,?,?)"
#define OUTCOME_PARAMS 5
static const char outcome_tail[] =
	" ON CONFLICT (id) DO UPDATE SET"
	" ts = excluded.ts, delivery_status = excluded.delivery_status,"
	" attempts = excluded.attempts, error = excluded.error,"
	" owner = NULL";

static int prepare_all(struct store_sqlite *q, char *err, size_t errlen)
{
	size_t i;

	/*
	 * The claim of CLAIM_ROWS ids has no conflict clause: an id that is
	 * there aborts the statement (claim_rows()).
	 */
	if (prepare_rows(q, &q->insert, claim_head, CLAIM_ROW, 1,
			 " ON CONFLICT (id) DO NOTHING", err, errlen) < 0 ||
	    prepare_rows(q, &q->insert_many, claim_head, CLAIM_ROW, CLAIM_ROWS,
			 "", err, errlen) < 0 ||
	    prepare_rows(q, &q->update, outcome_head, OUTCOME_ROW, 1,
			 outcome_tail, err, errlen) < 0 ||
	    prepare_rows(q, &q->update_many, outcome_head, OUTCOME_ROW,
			 FINISH_ROWS, outcome_tail, err, errlen) < 0 ||
	    prepare(q, &q->state,
		    "SELECT ts IS NULL, owner, claimed_at FROM results WHERE id = ?1",
		    err, errlen) < 0 ||
	    prepare(q, &q->takeover,
		    "UPDATE results SET owner = ?2, claimed_at = ?3"
		    " WHERE id = ?1 AND ts IS NULL",
		    err, errlen) < 0 ||
	    prepare(q, &q->delete,
		    "DELETE FROM results WHERE id = ?1 AND ts IS NULL AND owner = ?2",
		    err, errlen) < 0 ||
	    prepare(q, &q->begin, "BEGIN IMMEDIATE", err, errlen) < 0 ||
	    prepare(q, &q->commit, "COMMIT", err, errlen) < 0)
		return -1;
	/* bindings outlive sqlite3_reset(): the owner is bound once */
	sqlite3_bind_text(q->insert, 2, q->owner, -1, SQLITE_STATIC);
	for (i = 0; i < CLAIM_ROWS; i++)
		sqlite3_bind_text(q->insert_many, (int)(CLAIM_PARAMS * i + 2),
				  q->owner, -1, SQLITE_STATIC);
	sqlite3_bind_text(q->delete, 2, q->owner, -1, SQLITE_STATIC);
	sqlite3_bind_text(q->takeover, 2, q->owner, -1, SQLITE_STATIC);
	return 0;
}

static void sqlite_close(struct store *s)
{
	struct store_sqlite *q = downcast(s);

	if (q == NULL)
		return;
	sqlite3_finalize(q->insert);
	sqlite3_finalize(q->insert_many);
	sqlite3_finalize(q->state);
	sqlite3_finalize(q->update);
	sqlite3_finalize(q->update_many);
	sqlite3_finalize(q->delete);
	sqlite3_finalize(q->takeover);
	sqlite3_finalize(q->begin);
	sqlite3_finalize(q->commit);
	sqlite3_close(q->db);
	free(q->path);
	free(q);
}

/*
 * --status: the file as it is, never written.  SQLite would create a
 * missing file (and sender the table): a file or table that is not there
 * is noted in absent instead, and totals reports nothing recorded.
 */
static int open_read_only(struct store_sqlite *q, const struct cfg *cfg,
			  char *err, size_t errlen)
{
	if (access(q->path, F_OK) != 0 && errno == ENOENT) {
		snprintf(q->absent, sizeof(q->absent), "no file '%s'", q->path);
		return 0;
	}
	/*
	 * Not SQLITE_OPEN_READONLY: a read-only connection to a WAL file
	 * leaves its -wal and -shm behind.  Without SQLITE_OPEN_CREATE
	 * nothing is made, query_only forbids any write, and the last
	 * connection to close removes the -wal and -shm as usual (SQLite
	 * falls back to reading only if the file is write-protected).
	 */
	if (sqlite3_open_v2(q->path, &q->db,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK ||
	    sqlite3_exec(q->db, "PRAGMA query_only = 1", NULL, NULL, NULL) !=
		    SQLITE_OK) {
		if (q->db == NULL)
			snprintf(err, errlen, "sqlite '%s': out of memory",
				 q->path);
		else
			fail(q, "cannot open read-only", err, errlen);
		return -1;
	}
	sqlite3_busy_timeout(
		q->db,
		(int)(cfg_seconds(cfg, "sqlite", "busy_timeout") * 1000));
	if (!has_column(q, "id", 2))
		snprintf(q->absent, sizeof(q->absent),
			 "no table 'results' in '%s'", q->path);
	return 0;
}

/*
 * A new database file is made here, not by SQLite: mode 0600 (the -wal
 * and -shm files SQLite adds take the file's mode), never through a
 * symlink, and O_EXCL so that it is ours.  An existing file is used as
 * it is; a symlink that leads nowhere is refused, since SQLite would
 * create its target.
 */
static int create_private(const char *path, char *err, size_t errlen)
{
	struct stat st;
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		      0600);

	if (fd >= 0)
		return close(fd);
	if (errno == EEXIST && (lstat(path, &st) != 0 || !S_ISLNK(st.st_mode) ||
				stat(path, &st) == 0))
		return 0;
	if (errno == EEXIST)
		snprintf(err, errlen,
			 "sqlite '%s': a symlink to nothing; refusing to "
			 "create a database through it",
			 path);
	else
		snprintf(err, errlen, "sqlite '%s': cannot create: %s", path,
			 strerror(errno));
	return -1;
}

/*
 * SQLite counts every allocation it makes under one process-wide mutex
 * (SQLITE_CONFIG_MEMSTATUS), for sqlite3_memory_used() and a soft heap
 * limit, neither of which sender asks for; a claim or an outcome row
 * takes several.  The setting must come before SQLite initialises, so at
 * the first open, which is on the main thread; later it is refused, and
 * harmless.
 */
static void sqlite_global_init(void)
{
	static int done;

	if (done)
		return;
	done = 1;
	sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

static struct store *sqlite_open(const struct cfg *cfg,
				 const struct store_owner *owner, char *err,
				 size_t errlen)
{
	struct store_sqlite *q = calloc(1, sizeof(*q));

	sqlite_global_init();
	if (q == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	q->base.ops = &store_sqlite_ops;
	if ((q->path = strdup(cfg_str(cfg, "sqlite", "path"))) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	snprintf(q->owner, sizeof(q->owner), "%s", owner->name);
	q->reclaim = owner->reclaim;
	q->lease = owner->claim_lease;
	if (owner->read_only) {
		if (open_read_only(q, cfg, err, errlen) < 0)
			goto fail;
		return &q->base;
	}
	if (create_private(q->path, err, errlen) < 0)
		goto fail;
	if (sqlite3_open_v2(q->path, &q->db,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
				    SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK) {
		if (q->db == NULL)
			snprintf(err, errlen, "sqlite '%s': out of memory",
				 q->path);
		else
			fail(q, "cannot open", err, errlen);
		goto fail;
	}
	sqlite3_busy_timeout(
		q->db,
		(int)(cfg_seconds(cfg, "sqlite", "busy_timeout") * 1000));
	if (set_wal(q,
		    (long)(cfg_seconds(cfg, "sqlite", "busy_timeout") * 1000),
		    err, errlen) < 0 ||
	    exec(q, "PRAGMA synchronous = FULL", err, errlen) < 0 ||
	    create_schema(q, err, errlen) < 0 ||
	    prepare_all(q, err, errlen) < 0)
		goto fail;
	return &q->base;
fail:
	sqlite_close(&q->base);
	return NULL;
}

/* Run one statement with the id bound as ?1; returns the step result. */
static int step_id(sqlite3_stmt *st, uint32_t id)
{
	int rc;

	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc;
}

static enum claim claim_one(struct store_sqlite *q, uint32_t id,
			    const char *now, int *rc)
{
	enum claim c = CLAIM_HELD;
	int abandoned = 0;

	sqlite3_bind_text(q->insert, 3, now, -1, SQLITE_STATIC);
	*rc = step_id(q->insert, id);
	if (*rc != SQLITE_DONE)
		return c;
	if (sqlite3_changes(q->db) == 1)
		return CLAIM_OK;
	/* the insert found the id: only now look at what it found */
	sqlite3_bind_int64(q->state, 1, id);
	*rc = sqlite3_step(q->state);
	if (*rc == SQLITE_ROW) {
		c = sqlite3_column_int(q->state, 0) ? CLAIM_HELD : CLAIM_DONE;
		abandoned = c == CLAIM_HELD &&
			    store_claim_abandoned(
				    (const char *)sqlite3_column_text(q->state,
								      1),
				    store_parse_ts(
					    (const char *)sqlite3_column_text(
						    q->state, 2)),
				    q->lease);
		*rc = SQLITE_DONE;
	} else if (*rc == SQLITE_DONE) {
		c = CLAIM_DONE; /* released between insert and look: skip */
	}
	sqlite3_reset(q->state);
	if (abandoned && !q->reclaim)
		return CLAIM_STALE;
	if (abandoned && *rc == SQLITE_DONE) {
		sqlite3_bind_text(q->takeover, 3, now, -1, SQLITE_STATIC);
		*rc = step_id(q->takeover, id);
		if (*rc == SQLITE_DONE && sqlite3_changes(q->db) == 1)
			c = CLAIM_OK;
	}
	return c;
}

/*
 * Claim ids[0..CLAIM_ROWS) by one statement: a third fewer instructions
 * a claim than a statement each (callgrind, 10,000 letters: 44.7 M in
 * sqlite_claim() before, 28.4 M after).  Most often none of the ids is
 * there (a new file): SQLITE_DONE, all ours.  An id that is there makes
 * SQLITE_CONSTRAINT: SQLite backs out the rows of this statement alone
 * and the transaction goes on, so the ids go one by one (claim_one()) to
 * learn what each found.  The rows' times are bound (sqlite_claim()).
 * Returns whether the ids are ours; *rc is SQLITE_DONE unless the
 * statement failed otherwise.
 */
static int claim_rows(struct store_sqlite *q, const uint32_t *ids, int *rc)
{
	size_t i;

	for (i = 0; i < CLAIM_ROWS; i++)
		sqlite3_bind_int64(q->insert_many, (int)(CLAIM_PARAMS * i + 1),
				   ids[i]);
	*rc = sqlite3_step(q->insert_many);
	sqlite3_reset(q->insert_many);
	if ((*rc & 0xff) == SQLITE_CONSTRAINT)
		*rc = SQLITE_DONE;
	else if (*rc == SQLITE_DONE)
		return 1;
	return 0;
}

static int sqlite_claim(struct store *s, const uint32_t *ids, size_t n,
			enum claim *out, char *err, size_t errlen)
{
	struct store_sqlite *q = downcast(s);
	char now[20];
	int rc = SQLITE_DONE, ours;
	size_t i = 0, k;

	store_format_ts(time(NULL), now);
	if (begin(q, err, errlen) < 0)
		return -1;
	/* the time of every row, for all the statements of this batch */
	if (n >= CLAIM_ROWS)
		for (k = 0; k < CLAIM_ROWS; k++)
			sqlite3_bind_text(q->insert_many,
					  (int)(CLAIM_PARAMS * k + 3), now, -1,
					  SQLITE_STATIC);
	for (; i + CLAIM_ROWS <= n && rc == SQLITE_DONE; i += CLAIM_ROWS) {
		ours = claim_rows(q, ids + i, &rc);
		for (k = 0; k < CLAIM_ROWS && rc == SQLITE_DONE; k++)
			out[i + k] = ours ? CLAIM_OK
					  : claim_one(q, ids[i + k], now, &rc);
	}
	for (; i < n && rc == SQLITE_DONE; i++)
		out[i] = claim_one(q, ids[i], now, &rc);
	return end_batch(q, rc, "claim", err, errlen);
}

/* Outcome r as the row of st whose first parameter is at; ts its room. */
static void bind_result(sqlite3_stmt *st, int at, const struct store_result *r,
			char ts[20])
{
	store_format_ts(r->ts, ts);
	sqlite3_bind_int64(st, at, r->id);
	sqlite3_bind_text(st, at + 1, ts, -1, SQLITE_STATIC);
	if (r->status < 0)
		sqlite3_bind_null(st, at + 2);
	else
		sqlite3_bind_int(st, at + 2, r->status);
	sqlite3_bind_int(st, at + 3, (int)r->attempts);
	if (r->error)
		sqlite3_bind_text(st, at + 4, r->error, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, at + 4);
}

/* The outcomes r[0..rows) through st, a statement of that many rows. */
static int write_results(sqlite3_stmt *st, const struct store_result *r,
			 size_t rows)
{
	char ts[FINISH_ROWS][20];
	size_t i;
	int rc;

	for (i = 0; i < rows; i++)
		bind_result(st, (int)(OUTCOME_PARAMS * i + 1), &r[i], ts[i]);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc;
}

static int sqlite_finish(struct store *s, const struct store_result *r,
			 size_t n, char *err, size_t errlen)
{
	struct store_sqlite *q = downcast(s);
	size_t i = 0;
	int rc = SQLITE_DONE;

	if (begin(q, err, errlen) < 0)
		return -1;
	for (; i + FINISH_ROWS <= n && rc == SQLITE_DONE; i += FINISH_ROWS)
		rc = write_results(q->update_many, r + i, FINISH_ROWS);
	for (; i < n && rc == SQLITE_DONE; i++)
		rc = write_results(q->update, r + i, 1);
	return end_batch(q, rc, "record results", err, errlen);
}

static int sqlite_release(struct store *s, const uint32_t *ids, size_t n,
			  char *err, size_t errlen)
{
	struct store_sqlite *q = downcast(s);
	size_t i;
	int rc = SQLITE_DONE;

	if (begin(q, err, errlen) < 0)
		return -1;
	for (i = 0; i < n && rc == SQLITE_DONE; i++)
		rc = step_id(q->delete, ids[i]);
	return end_batch(q, rc, "release claims", err, errlen);
}

static int sqlite_totals(struct store *s, struct store_totals *t, char *err,
			 size_t errlen)
{
	struct store_sqlite *q = downcast(s);
	sqlite3_stmt *st = NULL;
	int rc;

	if (q->absent[0]) {
		memset(t, 0, sizeof(*t));
		t->oldest_claim_age = -1;
		snprintf(t->absent, sizeof(t->absent), "%s", q->absent);
		return 0;
	}
	/* a table made by hand (read-only: not completed) may lack it */
	if (sqlite3_prepare_v2(
		    q->db,
		    has_column(q, "claimed_at", 10)
			    ? "SELECT count(*), count(*) FILTER (WHERE delivery_status = 1),"
			      " count(*) FILTER (WHERE delivery_status = 0),"
			      " count(*) FILTER (WHERE ts IS NOT NULL AND delivery_status IS NULL),"
			      " count(*) FILTER (WHERE ts IS NULL),"
			      " coalesce(strftime('%s', 'now') - strftime('%s', min(claimed_at)"
			      " FILTER (WHERE ts IS NULL)), -1)"
			      " FROM results"
			    : "SELECT count(*), count(*) FILTER (WHERE delivery_status = 1),"
			      " count(*) FILTER (WHERE delivery_status = 0),"
			      " count(*) FILTER (WHERE ts IS NOT NULL AND delivery_status IS NULL),"
			      " count(*) FILTER (WHERE ts IS NULL), -1"
			      " FROM results",
		    -1, &st, NULL) != SQLITE_OK)
		return fail(q, "count records", err, errlen);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		t->records = sqlite3_column_int64(st, 0);
		t->delivered = sqlite3_column_int64(st, 1);
		t->not_delivered = sqlite3_column_int64(st, 2);
		t->failed = sqlite3_column_int64(st, 3);
		t->claimed = sqlite3_column_int64(st, 4);
		t->oldest_claim_age = sqlite3_column_int64(st, 5);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW)
		return fail(q, "count records", err, errlen);
	return 0;
}

/* --status: the file, as an absolute path (the cwd is not in the text). */
static size_t sqlite_where(const struct cfg *cfg, struct store_where *out,
			   size_t max)
{
	const char *path = cfg_str(cfg, "sqlite", "path");
	char cwd[4096];

	if (max == 0)
		return 0;
	out[0].name = "path";
	/* a name too long for the value is shown as given */
	if (path[0] == '/' || getcwd(cwd, sizeof(cwd)) == NULL ||
	    snprintf(out[0].value, sizeof(out[0].value), "%s/%s",
		     strcmp(cwd, "/") ? cwd : "",
		     path) >= (int)sizeof(out[0].value))
		snprintf(out[0].value, sizeof(out[0].value), "%s", path);
	return 1;
}

/*
 * [sqlite] path is a file name.  A URI ("file:x.db?mode=memory",
 * "?nolock=1") would give each run its own database or no locking, and
 * the claims would stop excluding each other.
 */
static int sqlite_check(const struct cfg *cfg, char *err, size_t errlen)
{
	const struct cfg_entry *e = cfg_find(cfg, "sqlite", "path");
	const char *path = e->value;

	if (path[0] == '\0' || strcmp(path, ":memory:") == 0 ||
	    strncmp(path, "file:", 5) == 0 || strchr(path, '?') != NULL) {
		snprintf(err, errlen,
			 "%s: key 'path' of section [sqlite] must be a file "
			 "path, not '%s' (URIs and query parameters such as "
			 "mode= or nolock= would break the claims)",
			 e->origin, path);
		return -1;
	}
	return 0;
}

/* The reason is kept in the claimed record's error column. */
static int sqlite_hold(struct store *s, const struct store_result *r, size_t n,
		       char *err, size_t errlen)
{
	struct store_sqlite *q = downcast(s);
	sqlite3_stmt *st = NULL;
	int rc = SQLITE_DONE;
	size_t i;

	if (sqlite3_prepare_v2(q->db,
			       "UPDATE results SET error = ?2, attempts = ?3"
			       " WHERE id = ?1 AND ts IS NULL",
			       -1, &st, NULL) != SQLITE_OK)
		return fail(q, "note letters in doubt", err, errlen);
	if (begin(q, err, errlen) < 0) {
		sqlite3_finalize(st);
		return -1;
	}
	for (i = 0; i < n && rc == SQLITE_DONE; i++) {
		sqlite3_bind_int64(st, 1, r[i].id);
		sqlite3_bind_text(st, 2, r[i].error ? r[i].error : "in doubt",
				  -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 3, (int)r[i].attempts);
		rc = sqlite3_step(st);
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	return end_batch(q, rc, "note letters in doubt", err, errlen);
}

const struct store_ops store_sqlite_ops = {
	.name = "sqlite",
	.keys = sqlite_keys,
	.check = sqlite_check,
	.hold = sqlite_hold,
	.open = sqlite_open,
	.claim = sqlite_claim,
	.finish = sqlite_finish,
	.release = sqlite_release,
	.totals = sqlite_totals,
	.close = sqlite_close,
	.where = sqlite_where,
};

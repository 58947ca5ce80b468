#include "run.h"

#include "api.h"
#include "buf.h"
#include "clock.h"
#include "idset.h"
#include "journal.h"
#include "log.h"
#include "message.h"
#include "progress.h"
#include "reader.h"
#include "report.h"
#include "store.h"
#include "store_worker.h"

#include <inttypes.h>
#include <signal.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>

/* --wait: letters kept for a second look, and the longest pause. */
#define WAIT_MAX_BYTES	  (64 << 20)
#define WAIT_PAUSE_MAX_MS 2000

/*
 * A letter read and encoded, waiting for its claim or for a slot.  Its
 * body is in the text of the job that read it, at off, until it leaves
 * that job for --wait's list: then it is a copy of its own.
 */
struct pending {
	uint32_t id;
	size_t off, len;
	char *heap; /* owned, or NULL: the body is in the job's text */
};

/* A job's text above this is given back when the job is done with. */
#define JOB_TEXT_KEEP (1 << 20)

/*
 * A claim batch sent in less than this doubles the next ones (up to
 * claim_batch_max); one that takes four times as long halves them again
 * (down to claim_batch).  Against a fast API a batch of four times
 * concurrency lasts a few milliseconds, and its commit (with SQLite an
 * fsync) was a fifth of the CPU per letter; claims taken ahead stay
 * within about this much sending.
 */
#define BATCH_MS 50

/*
 * Claimed letters kept ahead of need: a claim batch goes out when as few
 * are left as the api holds (r->low), and while the letters run out before
 * a claim comes back (a database far away), at up to this many: a
 * database 200 ms away takes a second or so for a claim, at -j 128 and a
 * 20 ms API that is 6,400 letters.
 */
#define AHEAD_MAX 8192

/*
 * Letters read into a claim batch in one turn of the loop while the api
 * has requests out.  Reading and encoding a whole batch of 2,048 took
 * about 10 ms, in which no answer was taken and no request started: the
 * api's slots sat idle that long.  Read in slices, the batch fills over a
 * few turns (r->filling) and the api is served in between.
 */
#define READ_SLICE 128

/*
 * A batch for the store worker and what run keeps with it.  Every job is
 * in one place at a time: the free list, the worker, the ready list (a
 * claim back with letters to send), the batch being filled (outcomes,
 * releases), or the kept list (the store did not take it).
 */
struct job {
	struct store_job sj;	 /* first: the worker gives it back as such */
	size_t cap;		 /* of every array */
	struct pending *letters; /* claim: the letters, owned until sent */
	struct buf text;	 /* claim: their bodies, back to back */
	size_t nok, cursor;	 /* claim, once back: ours are [cursor, nok) */
	int look;		 /* claim of --wait's held letters */
	long sent_ms;		 /* when it went to the worker, for -vv */
	long first_ms;		 /* claim: when its first letter went out */
	struct job *next;	 /* on one of run's lists */
	struct job *all;	 /* every job made, for run_release() */
};

struct run {
	const struct run_opts *o;
	struct api *api;
	struct store *store;
	struct store_worker *worker;
	struct log *log;
	struct run_stats *st;

	size_t next_file;
	struct reader *reader;
	long long bytes_done;  /* input of the files already finished */
	long long bytes_total; /* of all files, or -1 if unknown (stdin) */
	int input_done;
	struct idset seen;
	struct message_coder *coder; /* NULL with --dry-run */

	/* claim jobs hold r->batch letters, the others outcome_batch */
	struct job *all, *free_claims, *free_outcomes;
	size_t batch; /* ids a claim batch takes now (BATCH_MS) */
	/* claims back, oldest first: their letters go to the api in order */
	struct job *ready, **ready_tail;
	size_t ready_letters; /* claimed and not yet handed to the api */
	size_t claiming;      /* letters in claim jobs at the worker */
	unsigned outstanding; /* jobs at the worker */
	struct job *filling;  /* claim batch being read, not yet sent */
	size_t low;  /* claim more when claimed and claiming are this few */
	int starved; /* the api had room while a claim was out */

	/* outcomes, releases and in-doubt holds being gathered, and since */
	struct job *results, *releases, *holds;
	long oldest_ms;
	/* finish and release jobs the store failed: tried again at the end */
	struct job *kept, **kept_tail;
	int failure_said;

	/*
	 * --wait: letters whose ids other live runs held when we met them,
	 * kept whole (stdin cannot be read again) up to WAIT_MAX_BYTES, and
	 * claimed again once our own letters are done, a whole pass at a
	 * time.
	 */
	struct pending *waiting;
	size_t nwaiting, waiting_room, waiting_bytes;
	unsigned looking;   /* claim jobs of this pass at the worker */
	int waiting_full;   /* the cap was met: said once */
	int moved;	    /* a letter left the wait in this pass */
	long next_look_ms;  /* when to look at them again */
	long wait_until_ms; /* 0 until the wait begins */
	long look_pause_ms;

	int stopping;
	unsigned deferred_in_row;
	unsigned long claimed; /* ids claimed by this run, for --limit */
	int report_failed;     /* said once; no more lines are tried */
	/* the first letter deferred after its attempts, for the closing
	 * words: one line instead of one per letter */
	long long deferred_id;
	char deferred_why[API_DETAIL_MAX];
	char api_cause[1400]; /* why the API was given up, said at the end */
	char err[1024];
};

/* One line of --report; its failure is said once and reporting stops. */
static void report_letter(struct run *r, long long id,
			  enum report_outcome outcome, long http_status,
			  unsigned attempts, time_t ts, const char *text,
			  const char *reason)
{
	struct report_line l = {
		id,   outcome, http_status, attempts, ts ? ts : time(NULL),
		text, reason
	};
	char err[512];

	if (r->o->report == NULL || r->report_failed)
		return;
	if (report_write(r->o->report, &l, err, sizeof(err)) < 0) {
		r->report_failed = 1;
		log_event(r->log, LOG_ERROR, EV_NOTE, -1,
			  "%s; the rest of the report is lost (the store "
			  "has the outcomes)",
			  err);
	}
}

/* Open the next input file; 0 when there is none left. */
static int open_next_file(struct run *r)
{
	while (r->next_file < r->o->nfiles) {
		const char *path = r->o->files[r->next_file++];

		r->reader = reader_open(path, r->err, sizeof(r->err));
		if (r->reader)
			return 1;
		log_event(r->log, LOG_ERROR, EV_INPUT, -1, "%s", r->err);
		r->st->input_failed = 1;
	}
	return 0;
}

/*
 * The next letter that is valid and new in this run, its body appended to
 * text (NULL with --dry-run: no body); 0 at the end.
 */
static int next_letter(struct run *r, struct pending *p, struct buf *text)
{
	struct letter l;

	while (!r->input_done) {
		enum reader_status rs;

		if (r->reader == NULL && !open_next_file(r)) {
			r->input_done = 1;
			break;
		}
		rs = reader_next(r->reader, &l, r->err, sizeof(r->err));
		if (rs == READER_END || rs == READER_ERROR) {
			if (rs == READER_ERROR) {
				log_event(r->log, LOG_ERROR, EV_INPUT, -1, "%s",
					  r->err);
				r->st->input_failed = 1;
			}
			r->bytes_done += reader_offset(r->reader);
			reader_free(r->reader);
			r->reader = NULL;
			continue;
		}
		r->st->letters++;
		if (rs == READER_INVALID) {
			log_event(r->log, LOG_WARN, EV_INVALID, -1, "%s",
				  r->err);
			r->st->invalid++;
			report_letter(r, -1, REPORT_INVALID, 0, 0, 0, NULL,
				      r->err);
			continue;
		}
		if (idset_add(&r->seen, l.id) == 0) {
			log_event(r->log, LOG_WARN, EV_DUPLICATE, l.id,
				  "%s:%ld: id %" PRIu32
				  " appears again in this run; skipped",
				  reader_name(r->reader), l.line, l.id);
			r->st->skipped++;
			report_letter(r, l.id, REPORT_SKIPPED, 0, 0, 0, NULL,
				      "appears again in this run");
			continue;
		}
		p->id = l.id;
		p->heap = NULL;
		p->off = p->len = 0;
		if (text == NULL) /* --dry-run */
			return 1;
		p->off = text->len;
		if (message_append(r->coder, l.id, l.to, l.to_len, l.subject,
				   l.subject_len, text, r->err,
				   sizeof(r->err)) < 0) {
			log_event(r->log, LOG_WARN, EV_INVALID, l.id,
				  "%s:%ld: %s; not sent",
				  reader_name(r->reader), l.line, r->err);
			r->st->invalid++;
			report_letter(r, l.id, REPORT_INVALID, 0, 0, 0, NULL,
				      r->err);
			continue;
		}
		p->len = text->len - p->off;
		return 1;
	}
	return 0;
}

static void job_put(struct run *r, struct job *j);

/* Room for cap in every array of j; 0, or -1 (j as it was) on no memory. */
static int job_grow(struct job *j, size_t cap)
{
	struct pending *letters = realloc(j->letters, cap * sizeof(*letters));
	uint32_t *ids;
	enum claim *cl;
	struct store_result *results;

	if (letters == NULL)
		return -1;
	j->letters = letters;
	if ((ids = realloc(j->sj.ids, cap * sizeof(*ids))) == NULL)
		return -1;
	j->sj.ids = ids;
	if ((cl = realloc(j->sj.claims, cap * sizeof(*cl))) == NULL)
		return -1;
	j->sj.claims = cl;
	if ((results = realloc(j->sj.results, cap * sizeof(*results))) == NULL)
		return -1;
	j->sj.results = results;
	/* what job_clear() frees starts empty */
	memset(letters + j->cap, 0, (cap - j->cap) * sizeof(*letters));
	memset(results + j->cap, 0, (cap - j->cap) * sizeof(*results));
	j->cap = cap;
	return 0;
}

/*
 * A job with room for a batch of its kind, from its free list or new; or
 * NULL.
 */
static struct job *job_get(struct run *r, enum store_job_kind kind)
{
	int claims = kind == STORE_JOB_CLAIM;
	struct job **free_list = claims ? &r->free_claims : &r->free_outcomes;
	struct job *j = *free_list;
	size_t cap = claims ? r->batch : r->o->outcome_batch;

	if (j) {
		*free_list = j->next;
		if (j->cap < cap && job_grow(j, cap) < 0) {
			job_put(r, j);
			return NULL;
		}
	} else {
		j = calloc(1, sizeof(*j));
		if (j == NULL)
			return NULL;
		buf_init(&j->text, 0);
		j->all = r->all;
		r->all = j; /* freed by run_release() from now on */
		if (job_grow(j, cap) < 0)
			return NULL;
	}
	j->sj.kind = kind;
	j->sj.n = 0;
	j->nok = 0;
	j->cursor = 0;
	j->look = 0;
	j->next = NULL;
	return j;
}

/*
 * What a job still owns: letters not sent, error texts of outcomes.  Its
 * text is kept for the next batch, unless a batch of long letters made it
 * large.
 */
static void job_clear(struct job *j)
{
	size_t i;

	for (i = 0; i < j->cap && j->letters; i++) {
		free(j->letters[i].heap);
		j->letters[i].heap = NULL;
	}
	if (j->text.alloc > JOB_TEXT_KEEP)
		buf_release(&j->text);
	buf_reset(&j->text);
	for (i = 0; i < j->cap && j->sj.results; i++) {
		free((char *)j->sj.results[i].error);
		j->sj.results[i].error = NULL;
	}
}

static void job_put(struct run *r, struct job *j)
{
	job_clear(j);
	/* a job keeps its kind: claim jobs are sized by r->batch */
	if (j->sj.kind == STORE_JOB_CLAIM) {
		j->next = r->free_claims;
		r->free_claims = j;
	} else {
		j->next = r->free_outcomes;
		r->free_outcomes = j;
	}
}

static void submit(struct run *r, struct job *j)
{
	j->sent_ms = api_now(r->api);
	if (j->sj.kind == STORE_JOB_CLAIM)
		r->claiming += j->sj.n;
	r->outstanding++;
	store_worker_submit(r->worker, &j->sj);
}

/* The outcomes and releases gathered so far go to the store. */
static void flush(struct run *r)
{
	if (r->results && r->results->sj.n)
		submit(r, r->results);
	else if (r->results)
		job_put(r, r->results);
	if (r->releases && r->releases->sj.n)
		submit(r, r->releases);
	else if (r->releases)
		job_put(r, r->releases);
	if (r->holds && r->holds->sj.n)
		submit(r, r->holds);
	else if (r->holds)
		job_put(r, r->holds);
	r->results = NULL;
	r->releases = NULL;
	r->holds = NULL;
}

/* Outcomes, releases and holds gathered and not yet sent to the store. */
static size_t gathered(const struct run *r)
{
	return (r->results ? r->results->sj.n : 0) +
	       (r->releases ? r->releases->sj.n : 0) +
	       (r->holds ? r->holds->sj.n : 0);
}

static int flush_due(const struct run *r)
{
	return gathered(r) > 0 &&
	       api_now(r->api) - r->oldest_ms >= r->o->flush_ms;
}

/*
 * Room for one more outcome or release in *cur (a full batch goes to the
 * store first); 0, or -1 when memory ran out.
 */
static int gather(struct run *r, struct job **cur, enum store_job_kind kind)
{
	if (*cur && (*cur)->sj.n == (*cur)->cap) {
		submit(r, *cur);
		*cur = NULL;
	}
	if (gathered(r) == 0)
		r->oldest_ms = api_now(r->api);
	if (*cur == NULL)
		*cur = job_get(r, kind);
	return *cur ? 0 : -1;
}

static void begin_stop(struct run *r);

/* The claim of id is given back, to be sent by a later run. */
static void add_release(struct run *r, uint32_t id)
{
	if (gather(r, &r->releases, STORE_JOB_RELEASE) < 0) {
		log_error(r->log,
			  "out of memory: the claim of id %" PRIu32
			  " is not released; it stays claimed (see --reclaim)",
			  id);
		r->st->storage_failed = 1;
		begin_stop(r);
		return;
	}
	r->releases->sj.ids[r->releases->sj.n++] = id;
}

/* Letters read and dropped before any attempt: deferred, nothing sent. */
static void drop_pending(struct run *r, struct pending *p, int release)
{
	free(p->heap);
	p->heap = NULL;
	r->st->deferred++;
	report_letter(r, p->id, REPORT_DEFERRED, 0, 0, 0, NULL,
		      release ? "not sent: the run is stopping"
			      : "not sent: the store failed");
	if (release)
		add_release(r, p->id);
}

static void begin_stop(struct run *r)
{
	struct job *j;

	if (r->stopping)
		return;
	r->stopping = 1;
	while ((j = r->ready) != NULL) {
		r->ready = j->next;
		for (; j->cursor < j->nok; j->cursor++)
			drop_pending(r, &j->letters[j->cursor], 1);
		job_put(r, j);
	}
	r->ready_tail = &r->ready;
	r->ready_letters = 0;
	if (r->filling) {
		/* read, never claimed: as if the run had stopped before */
		r->st->letters -= r->filling->sj.n;
		job_put(r, r->filling);
		r->filling = NULL;
	}
	if (r->api)
		api_stop(r->api);
}

/*
 * Keep a held letter of job j for a second look, its body copied out of
 * the job's text; 0, or -1 if there is no room.
 */
static int keep_waiting(struct run *r, const struct job *j, struct pending *p)
{
	struct pending *grown;
	size_t room;

	if (!r->o->wait || r->waiting_bytes + p->len > WAIT_MAX_BYTES)
		goto full;
	if (r->nwaiting == r->waiting_room) {
		room = r->waiting_room ? 2 * r->waiting_room : 64;
		grown = realloc(r->waiting, room * sizeof(*grown));
		if (grown == NULL)
			goto full;
		r->waiting = grown;
		r->waiting_room = room;
	}
	if (p->heap == NULL) {
		p->heap = malloc(p->len ? p->len : 1);
		if (p->heap == NULL)
			goto full;
		memcpy(p->heap, j->text.data + p->off, p->len);
	}
	r->waiting[r->nwaiting++] = *p;
	r->waiting_bytes += p->len;
	p->heap = NULL; /* the waiting list's now */
	return 0;
full:
	if (r->o->wait && !r->waiting_full) {
		r->waiting_full = 1;
		log_warn(r->log,
			 "--wait keeps at most %d MiB of letters held by other "
			 "runs; the rest are skipped as claimed (run again "
			 "later)",
			 WAIT_MAX_BYTES >> 20);
	}
	return -1;
}

/* A letter we do not send: done, held (and not waited for), or gone. */
static void skip_claimed(struct run *r, struct pending *p, enum claim c)
{
	free(p->heap);
	p->heap = NULL;
	r->st->skipped++;
	report_letter(r, p->id, REPORT_SKIPPED, 0, 0, 0, NULL,
		      c == CLAIM_DONE	 ? "done earlier or by another run"
		      : c == CLAIM_STALE ? "claimed by a run that is gone "
					   "(see --reclaim)"
					 : "claimed by another run");
	if (c == CLAIM_DONE)
		return;
	r->st->held++;
	log_event(r->log, LOG_INFO, EV_HELD, p->id,
		  c == CLAIM_STALE ? "id %" PRIu32 " is claimed by a run that "
				     "is gone (see --reclaim); skipped"
				   : "id %" PRIu32
				     " is claimed by another run; skipped",
		  p->id);
}

/* The first reason the run stops early, for --json's "error". */
static void stopped_by(struct run *r, const char *why)
{
	if (r->st->error[0] == '\0')
		snprintf(r->st->error, sizeof(r->st->error), "%s", why);
}

/* The store failed: said once, nothing more is sent. */
static void storage_failure(struct run *r, const struct store_job *sj)
{
	if (sj->tried && !r->failure_said) {
		r->failure_said = 1;
		log_event(r->log, LOG_ERROR, EV_STORAGE, -1,
			  "%s; nothing more is sent", sj->err);
		stopped_by(r, sj->err);
	}
	r->st->storage_failed = 1;
	begin_stop(r);
}

static void give_up_waiting(struct run *r);

/*
 * --wait: the end of a pass over the held letters; the next one after a
 * pause that doubles while nothing moves.
 */
static void end_pass(struct run *r)
{
	if (r->moved || r->look_pause_ms == 0)
		r->look_pause_ms = r->o->wait_poll_ms;
	else if ((r->look_pause_ms *= 2) > WAIT_PAUSE_MAX_MS)
		r->look_pause_ms = WAIT_PAUSE_MAX_MS;
	r->moved = 0;
	r->next_look_ms = clock_ms() + r->look_pause_ms;
}

/*
 * A claim batch is back.  Ours go to the ready list (or are released at
 * once if the run is stopping); held ones wait with --wait, the others
 * are skipped.  For --wait's second look, ids finished elsewhere count as
 * done_elsewhere.  A failed claim sends nothing of its batch: all or
 * nothing, so none of it is released either.
 */
static void claim_back(struct run *r, struct job *j)
{
	size_t i;

	r->claiming -= j->sj.n;
	if (j->look && --r->looking == 0)
		end_pass(r);
	if (j->sj.rc < 0) {
		storage_failure(r, &j->sj);
		for (i = 0; i < j->sj.n; i++) {
			struct pending *p = &j->letters[i];

			/* held ones, looked at again, stay held */
			if (!j->look || keep_waiting(r, j, p) < 0)
				drop_pending(r, p, 0);
		}
		job_put(r, j);
		return;
	}
	for (i = 0; i < j->sj.n; i++) {
		struct pending *p = &j->letters[i];
		enum claim c = j->sj.claims[i];

		if (j->look && c != CLAIM_HELD)
			r->moved = 1;
		if (c == CLAIM_OK)
			r->claimed++;
		if (c == CLAIM_OK && r->stopping) {
			drop_pending(r, p, 1);
		} else if (c == CLAIM_OK) {
			if (j->nok != i) {
				j->letters[j->nok] = *p;
				p->heap = NULL;
			}
			j->nok++;
		} else if (c != CLAIM_HELD || keep_waiting(r, j, p) < 0) {
			if (j->look && c == CLAIM_DONE)
				r->st->done_elsewhere++;
			skip_claimed(r, p, c);
		}
	}
	log_event(r->log, LOG_DEBUG, EV_STORAGE, -1,
		  "store: claimed %zu ids in %ld ms: %zu ours, %zu not",
		  j->sj.n, api_now(r->api) - j->sent_ms, j->nok,
		  j->sj.n - j->nok);
	if (r->starved) {
		/* letters ran out while this claim was out: keep more ahead */
		r->starved = 0;
		r->low *= 4;
		if (r->low > AHEAD_MAX)
			r->low = AHEAD_MAX;
	}
	if (j->nok == 0) {
		job_put(r, j);
		return;
	}
	r->ready_letters += j->nok;
	*r->ready_tail = j;
	r->ready_tail = &j->next;
}

/* Take the jobs the worker has done. */
static void take_back(struct run *r)
{
	struct store_job *sj;

	while ((sj = store_worker_take(r->worker)) != NULL) {
		struct job *j = (struct job *)sj;

		r->outstanding--;
		if (sj->kind == STORE_JOB_CLAIM) {
			claim_back(r, j);
		} else if (sj->rc == 0) {
			log_event(r->log, LOG_DEBUG, EV_STORAGE, -1,
				  sj->kind == STORE_JOB_FINISH
					  ? "store: recorded %zu outcomes in "
					    "%ld ms"
				  : sj->kind == STORE_JOB_HOLD
					  ? "store: noted why %zu claims in "
					    "doubt are kept, in %ld ms"
					  : "store: released %zu claims in "
					    "%ld ms",
				  sj->n, api_now(r->api) - j->sent_ms);
			job_put(r, j);
		} else {
			storage_failure(r, sj);
			*r->kept_tail = j;
			r->kept_tail = &j->next;
		}
	}
}

/*
 * Ids the next claim batch may take: a batch, or what --limit leaves once
 * the claims out come back all ours.
 */
static size_t batch_room(const struct run *r)
{
	unsigned long used = r->claimed + r->claiming;

	if (r->o->limit == 0)
		return r->batch;
	if (used >= r->o->limit)
		return 0;
	return r->o->limit - used < r->batch ? r->o->limit - used : r->batch;
}

/*
 * --limit is reached: the rest of the input is for the next run.  It is
 * read on, without a word about its letters, only to say how many are
 * left.
 */
static void count_left(struct run *r)
{
	struct letter l;
	char msg[256];

	while (r->reader || open_next_file(r)) {
		enum reader_status rs = reader_next(r->reader, &l, msg,
						    sizeof(msg));

		if (rs == READER_END || rs == READER_ERROR) {
			reader_free(r->reader);
			r->reader = NULL;
			continue;
		}
		r->st->left++;
	}
	r->input_done = 1;
}

/*
 * Read and claim ahead: a new claim batch goes to the worker while the
 * letters claimed and not sent, with those being claimed, are r->low or
 * fewer.  r->low starts at the api's slots (the next batch is claimed
 * while the last api-full of letters goes out, so that one batch is read
 * ahead, as before the worker) and grows fourfold, up to AHEAD_MAX, each
 * time the api ran out of letters while a claim was out (claim_back()).
 */
static void claim_ahead(struct run *r)
{
	size_t budget = READ_SLICE;

	while (!r->stopping && !r->input_done &&
	       (r->filling || r->ready_letters + r->claiming <= r->low)) {
		size_t room = batch_room(r);
		struct job *j = r->filling;

		if (room == 0 && j == NULL) {
			/* --limit: once the claims out are back, for sure */
			if (r->claiming == 0)
				count_left(r);
			return;
		}
		if (j == NULL && (j = job_get(r, STORE_JOB_CLAIM)) == NULL) {
			log_event(r->log, LOG_ERROR, EV_STORAGE, -1,
				  "out of memory for a claim batch; nothing "
				  "more is sent");
			r->st->storage_failed = 1;
			begin_stop(r);
			return;
		}
		r->filling = NULL;
		if (room > j->cap)
			room = j->cap; /* the batch grew since it was made */
		/* a slice a turn, unless the api has nothing to do anyway */
		while (j->sj.n < room &&
		       (budget > 0 || api_in_flight(r->api) == 0) &&
		       next_letter(r, &j->letters[j->sj.n], &j->text)) {
			j->sj.ids[j->sj.n] = j->letters[j->sj.n].id;
			j->sj.n++;
			if (budget > 0)
				budget--;
		}
		if (j->sj.n < room && !r->input_done) {
			r->filling = j; /* the next turn reads on */
			return;
		}
		if (j->sj.n == 0) {
			job_put(r, j);
			return;
		}
		submit(r, j);
	}
}

/*
 * --wait: claim every held letter again, in batches; each comes back
 * through claim_back(), the held ones to the waiting list again.
 */
static void look_again(struct run *r)
{
	size_t from = 0, room = batch_room(r);

	if (room == 0) { /* --limit reached: no more claims in this run */
		give_up_waiting(r);
		return;
	}
	flush(r);
	while (from < r->nwaiting && (room = batch_room(r)) > 0) {
		struct job *j = job_get(r, STORE_JOB_CLAIM);

		if (j == NULL)
			break; /* the rest wait for the next pass */
		j->look = 1;
		while (j->sj.n < room && from < r->nwaiting) {
			struct pending *p = &r->waiting[from++];

			r->waiting_bytes -= p->len;
			j->letters[j->sj.n] = *p;
			j->sj.ids[j->sj.n++] = p->id;
		}
		r->looking++;
		submit(r, j);
	}
	memmove(r->waiting, r->waiting + from,
		(r->nwaiting - from) * sizeof(*r->waiting));
	r->nwaiting -= from;
	if (r->looking == 0)
		end_pass(r);
}

/* Letters still held when the run ends: skipped as claimed elsewhere. */
static void give_up_waiting(struct run *r)
{
	size_t i;

	for (i = 0; i < r->nwaiting; i++)
		skip_claimed(r, &r->waiting[i], CLAIM_HELD);
	r->nwaiting = 0;
}

/*
 * The letters of claim job j are all with the api: the next batches grow
 * when it went out within BATCH_MS, and shrink back when it took four
 * times that.  A short batch (the end of the input, --limit, ids held
 * elsewhere) or --wait's second look says nothing about the pace.
 */
static void adapt_batch(struct run *r, const struct job *j)
{
	long took = api_now(r->api) - j->first_ms;

	if (j->look || j->nok < r->batch)
		return;
	if (took < BATCH_MS && r->batch < r->o->claim_batch_max) {
		r->batch *= 2;
		if (r->batch > r->o->claim_batch_max)
			r->batch = r->o->claim_batch_max;
	} else if (took > 4 * BATCH_MS && r->batch > r->o->claim_batch) {
		r->batch /= 2;
		if (r->batch < r->o->claim_batch)
			r->batch = r->o->claim_batch;
	}
}

/* The next claimed letter goes to the api (a copy of its body). */
static void hand_over(struct run *r)
{
	struct job *j = r->ready;
	struct pending *p = &j->letters[j->cursor++];

	if (j->cursor == 1)
		j->first_ms = api_now(r->api);
	if (api_add(r->api, p->id, p->heap ? p->heap : j->text.data + p->off,
		    p->len) < 0) {
		log_event(r->log, LOG_ERROR, EV_STORAGE, p->id,
			  "out of memory for the body of id %" PRIu32
			  "; not sent, its claim released",
			  p->id);
		drop_pending(r, p, 1);
	}
	free(p->heap);
	p->heap = NULL;
	r->ready_letters--;
	if (j->cursor < j->nok)
		return;
	r->ready = j->next;
	if (r->ready == NULL)
		r->ready_tail = &r->ready;
	adapt_batch(r, j);
	job_put(r, j);
}

static void record(struct run *r, const struct api_done *d, int status)
{
	struct store_result *res;
	char ts[20];

	if (gather(r, &r->results, STORE_JOB_FINISH) < 0) {
		store_format_ts(d->ts, ts);
		log_error(r->log,
			  "out of memory: not recorded: id %" PRIu32
			  " answered at %s UTC, delivery_status %d",
			  d->id, ts, status);
		r->st->unrecorded++;
		r->st->storage_failed = 1;
		begin_stop(r);
		return;
	}
	res = &r->results->sj.results[r->results->sj.n++];
	res->id = d->id;
	res->ts = d->ts;
	res->status = status;
	res->attempts = d->attempts;
	/* the text may be dropped (store.h): no memory, no text */
	res->error = status < 0 ? strdup(d->detail) : NULL;
}

static void api_trouble(struct run *r, const char *what,
			const struct api_done *d)
{
	if (r->st->api_failed)
		return;
	r->st->api_failed = 1;
	/* said once at the end, with the count of letters it cost */
	snprintf(r->api_cause, sizeof(r->api_cause), "%s (id %" PRIu32 ": %s)",
		 what, d->id, d->detail[0] ? d->detail : "no detail");
	log_event(r->log, LOG_INFO, EV_API, d->id, "%s; nothing more is sent",
		  r->api_cause);
	stopped_by(r, what);
	begin_stop(r);
}

/*
 * A letter whose request may have reached the API without an answer to
 * trust: named, counted, and its claim released (resend) or kept with the
 * reason (hold), so that only --reclaim sends it again.
 */
static void on_in_doubt(struct run *r, const struct api_done *d)
{
	struct store_result *h;

	r->st->deferred++;
	r->st->in_doubt++;
	log_event(r->log, LOG_WARN, EV_IN_DOUBT, d->id,
		  "id %" PRIu32 ": in doubt, the API may have it (%s); %s",
		  d->id, d->detail,
		  r->o->in_doubt_hold
			  ? "its claim is kept for --reclaim"
			  : "its claim is released for a later run");
	if (!r->o->in_doubt_hold) {
		add_release(r, d->id);
		return;
	}
	if (gather(r, &r->holds, STORE_JOB_HOLD) < 0)
		return; /* no memory for the reason: the claim stays anyway */
	h = &r->holds->sj.results[r->holds->sj.n++];
	h->id = d->id;
	h->ts = d->ts;
	h->status = -1;
	h->attempts = d->attempts;
	h->error = strdup(d->detail); /* may be dropped, as for finish */
}

static void on_deferred(struct run *r, const struct api_done *d)
{
	if (d->in_doubt) {
		on_in_doubt(r, d);
	} else {
		r->st->deferred++;
		add_release(r, d->id);
		if (d->attempts == 0)
			return;
		/* one line per letter only with -v: a dead API would print
		 * one for every letter in flight; the closing words count
		 * them */
		log_event(r->log, LOG_INFO, EV_DEFERRED, d->id,
			  "id %" PRIu32 ": deferred after %u attempts (%s)",
			  d->id, d->attempts, d->detail);
		if (r->deferred_id < 0) {
			r->deferred_id = d->id;
			snprintf(r->deferred_why, sizeof(r->deferred_why), "%s",
				 d->detail);
		}
	}
	if (!r->stopping && ++r->deferred_in_row >= r->o->dead_after) {
		char what[1200];

		snprintf(what, sizeof(what),
			 "the API at '%s' is not answering usefully: %u "
			 "letters in a row got no answer after their attempts",
			 r->o->api_url, r->deferred_in_row);
		api_trouble(r, what, d);
	}
}

/* The report's line for a letter the api is done with. */
static void report_done(struct run *r, const struct api_done *d)
{
	static const enum report_outcome of[] = {
		[OUTCOME_DELIVERED] = REPORT_DELIVERED,
		[OUTCOME_NOT_DELIVERED] = REPORT_NOT_DELIVERED,
		[OUTCOME_REJECTED] = REPORT_REJECTED,
		[OUTCOME_ERROR] = REPORT_ERROR,
		[OUTCOME_DEFERRED] = REPORT_DEFERRED,
		[OUTCOME_MISCONFIGURED] = REPORT_DEFERRED,
		[OUTCOME_IN_DOUBT] = REPORT_IN_DOUBT,
	};
	/* the API's text where it is news; why sender gave up otherwise */
	int api_text = d->outcome == OUTCOME_REJECTED ||
		       d->outcome == OUTCOME_ERROR ||
		       d->outcome == OUTCOME_MISCONFIGURED;
	int ours = d->outcome == OUTCOME_DEFERRED ||
		   d->outcome == OUTCOME_IN_DOUBT;

	report_letter(r, d->id, of[d->outcome], d->http_status, d->attempts,
		      d->ts, api_text ? d->detail : NULL,
		      ours && d->detail[0] ? d->detail : NULL);
}

static void on_done(struct run *r, const struct api_done *d)
{
	char what[1200];

	if (d->outcome != OUTCOME_DEFERRED && d->outcome != OUTCOME_IN_DOUBT)
		r->deferred_in_row = 0;
	report_done(r, d);
	switch (d->outcome) {
	case OUTCOME_DELIVERED:
		r->st->delivered++;
		record(r, d, 1);
		break;
	case OUTCOME_NOT_DELIVERED:
		r->st->not_delivered++;
		record(r, d, 0);
		break;
	case OUTCOME_REJECTED:
		r->st->rejected++;
		record(r, d, -1);
		log_event(r->log, LOG_WARN, EV_REJECTED, d->id,
			  "id %" PRIu32 ": rejected by the API: %s", d->id,
			  d->detail);
		break;
	case OUTCOME_ERROR:
		r->st->errors++;
		record(r, d, -1);
		log_event(r->log, LOG_WARN, EV_ERROR, d->id,
			  "id %" PRIu32 ": unexpected answer (HTTP %ld): %s",
			  d->id, d->http_status, d->detail);
		break;
	case OUTCOME_DEFERRED: on_deferred(r, d); break;
	case OUTCOME_MISCONFIGURED:
		r->st->deferred++;
		add_release(r, d->id);
		snprintf(what, sizeof(what),
			 "the API answered HTTP %ld at '%s': check [api] url",
			 d->http_status, r->o->api_url);
		api_trouble(r, what, d);
		break;
	case OUTCOME_IN_DOUBT: on_deferred(r, d); break;
	}
}

const char *run_signal_name(int sig)
{
	switch (sig) {
	case SIGINT: return "SIGINT";
	case SIGTERM: return "SIGTERM";
	case SIGHUP: return "SIGHUP";
	default: return "a signal";
	}
}

static void watch_signals(struct run *r)
{
	sig_atomic_t n = r->o->signals ? *r->o->signals : 0;

	if (n == 0)
		return;
	if (!r->stopping) {
		r->st->signal = *r->o->first_signal;
		log_event(r->log, LOG_WARN, EV_SIGNAL, -1,
			  "stopping on %s: finishing the requests in "
			  "flight (a second signal abandons them)",
			  run_signal_name(r->st->signal));
		begin_stop(r);
	}
	if (n >= 2 && r->api && api_in_flight(r->api) > 0)
		api_abort(r->api);
}

static void show_progress(struct run *r)
{
	struct progress_state s;
	const struct run_stats *st = r->st;

	if (r->o->progress == NULL || !r->o->progress->enabled)
		return;
	s.read = st->letters;
	s.done = st->delivered + st->not_delivered + st->rejected + st->errors +
		 st->skipped + st->invalid;
	s.in_flight = r->api ? api_in_flight(r->api) : 0;
	s.deferred = st->deferred;
	s.bytes_read = r->bytes_done +
		       (r->reader ? reader_offset(r->reader) : 0);
	s.bytes_total = r->bytes_total;
	s.stopping = r->st->signal != 0;
	progress_update(r->o->progress, &s);
}

/* The size of all input, for the ETA; -1 when a part of it is a stream. */
static long long input_size(const struct run_opts *o)
{
	long long total = 0;
	struct stat sb;
	size_t i;

	for (i = 0; i < o->nfiles; i++) {
		if (strcmp(o->files[i], "-") == 0 ||
		    stat(o->files[i], &sb) != 0 || !S_ISREG(sb.st_mode))
			return -1;
		total += sb.st_size;
	}
	return total;
}

static void dry_run(struct run *r)
{
	struct pending p;

	while (!r->input_done) {
		if (r->o->signals && *r->o->signals) {
			r->st->signal = *r->o->first_signal;
			break;
		}
		next_letter(r, &p, NULL); /* valid letters are counted */
		if ((r->st->letters & 1023) == 0)
			show_progress(r);
	}
}

static void wake_api(void *api)
{
	api_wakeup(api);
}

/*
 * Our own letters are done (and no claim is out): with --wait, look at
 * the held ones again when due.  0 to go on, -1 when the run is over.
 */
static int wait_for_held(struct run *r)
{
	if (r->stopping || (r->nwaiting == 0 && r->looking == 0))
		return -1;
	if (r->looking)
		return 0;
	if (r->wait_until_ms == 0)
		r->wait_until_ms = clock_ms() + r->o->wait_max_ms;
	if (clock_ms() >= r->wait_until_ms) {
		log_warn(r->log,
			 "gave up waiting for %zu letters held by other runs "
			 "after %ld s ([store] claim_lease)",
			 r->nwaiting, r->o->wait_max_ms / 1000);
		return -1;
	}
	if (clock_ms() >= r->next_look_ms)
		look_again(r);
	return 0;
}

/*
 * The loop: answers are taken and requests started while the worker
 * claims ahead and records behind; nothing here waits for the store.
 */
static void send_all(struct run *r)
{
	struct api_done d;

	for (;;) {
		watch_signals(r);
		take_back(r);
		claim_ahead(r);
		while (!r->stopping && r->ready && api_has_room(r->api))
			hand_over(r);
		/*
		 * Not at the start: the first claim is always waited for.  A
		 * batch still being read counts as a claim out: the next one
		 * must start earlier either way.
		 */
		if (!r->stopping && (r->claiming || r->filling) &&
		    api_requests(r->api) && api_has_room(r->api))
			r->starved = 1;
		if (api_held(r->api) == 0 && r->ready_letters == 0 &&
		    r->claiming == 0 && (r->input_done || r->stopping) &&
		    wait_for_held(r) < 0)
			break;
		if (api_run(r->api, 100, r->err, sizeof(r->err)) < 0) {
			log_error(r->log, "%s", r->err);
			begin_stop(r);
			api_abort(r->api);
		}
		while (api_take(r->api, &d))
			on_done(r, &d);
		/* not while the first claim is out: nothing to show yet */
		if (api_requests(r->api) || r->claiming == 0)
			show_progress(r);
		if (flush_due(r))
			flush(r);
	}
	/* An abort (second signal) hands its letters out at once: the loop
	 * may end before it has taken them. */
	while (api_take(r->api, &d))
		on_done(r, &d);
	flush(r);
	/* what is still at the worker: outcomes, releases */
	while (r->outstanding) {
		watch_signals(r);
		if (api_run(r->api, 100, r->err, sizeof(r->err)) < 0)
			clock_nap(0.01);
		take_back(r);
		flush(r); /* a failed claim back releases nothing, but be sure */
	}
	give_up_waiting(r);
}

static void run_init(struct run *r, const struct run_opts *o)
{
	idset_init(&r->seen);
	r->ready_tail = &r->ready;
	r->kept_tail = &r->kept;
	r->low = o->slots;
	r->batch = o->claim_batch;
}

static void run_release(struct run *r)
{
	struct job *j;

	reader_free(r->reader);
	idset_release(&r->seen);
	while ((j = r->all) != NULL) {
		r->all = j->all;
		job_clear(j);
		free(j->letters);
		free(j->sj.ids);
		free(j->sj.claims);
		free(j->sj.results);
		buf_release(&j->text);
		free(j);
	}
	give_up_waiting(r); /* frees what a failed run kept */
	free(r->waiting);
	message_coder_free(r->coder);
}

/*
 * With the worker stopped, the store is ours again: what it failed is
 * tried once more (as one batch each) until a call fails.  What it never
 * took goes to the journal, to be applied later with --replay; if even
 * that fails it is printed, so that nothing is lost.
 */
static void save_unrecorded(struct run *r)
{
	size_t i, unreleased = 0, unrecorded = 0;
	int failed = 0, rc;
	struct job *j;
	char ts[20];

	for (j = r->kept; j; j = j->next) {
		if (!failed) {
			if (j->sj.kind == STORE_JOB_FINISH)
				rc = store_finish(r->store, j->sj.results,
						  j->sj.n, r->err,
						  sizeof(r->err));
			else if (j->sj.kind == STORE_JOB_HOLD)
				rc = store_hold(r->store, j->sj.results,
						j->sj.n, r->err,
						sizeof(r->err));
			else
				rc = store_release(r->store, j->sj.ids, j->sj.n,
						   r->err, sizeof(r->err));
			if (rc == 0) {
				j->sj.n = 0;
				continue;
			}
			failed = 1;
			if (!r->failure_said) {
				r->failure_said = 1;
				log_event(r->log, LOG_ERROR, EV_STORAGE, -1,
					  "%s", r->err);
				stopped_by(r, r->err);
			}
		}
		if (j->sj.kind == STORE_JOB_RELEASE)
			unreleased += j->sj.n;
		else if (j->sj.kind == STORE_JOB_FINISH)
			unrecorded += j->sj.n;
		/* a hold not noted: the claim is kept all the same */
	}
	r->st->unrecorded += unrecorded;
	if (unreleased)
		log_error(r->log,
			  "%zu claims of letters not sent could not be "
			  "released; they stay claimed (see --reclaim)",
			  unreleased);
	if (unrecorded == 0)
		return;
	for (j = r->kept; j; j = j->next) {
		if (j->sj.kind != STORE_JOB_FINISH || j->sj.n == 0 ||
		    journal_append(r->o->journal, j->sj.results, j->sj.n,
				   r->err, sizeof(r->err)) == 0)
			continue;
		log_error(r->log, "%s", r->err);
		for (i = 0; i < j->sj.n; i++) {
			const struct store_result *res = &j->sj.results[i];

			store_format_ts(res->ts, ts);
			log_error(r->log,
				  "not recorded: id %" PRIu32 " answered at %s "
				  "UTC, delivery_status %d",
				  res->id, ts, res->status);
		}
		j->sj.n = 0; /* printed: not in the journal */
	}
	for (i = 0, j = r->kept; j; j = j->next)
		if (j->sj.kind == STORE_JOB_FINISH)
			i += j->sj.n;
	if (i)
		log_error(r->log,
			  "%zu answers of the API could not be recorded; "
			  "they are saved in the journal '%s': once the "
			  "database is back, run: sender --replay %s",
			  i, r->o->journal, r->o->journal);
}

/*
 * What went wrong with the API, once: its cause and what it cost, instead
 * of a line per letter (those come with -v).
 */
static void closing_words(struct run *r)
{
	const struct run_stats *st = r->st;
	/* [retry] in_doubt = hold keeps the claims of letters in doubt */
	const char *released = r->o->in_doubt_hold && st->in_doubt
				       ? "their claims released but those in "
					 "doubt"
				       : "their claims released";

	if (r->api_cause[0])
		log_event(r->log, LOG_ERROR, EV_API, -1,
			  "%s; nothing more was sent: %lu letters deferred, "
			  "%s; run again once the API answers",
			  r->api_cause, st->deferred, released);
	else if (r->deferred_id >= 0)
		log_event(r->log, LOG_WARN, EV_DEFERRED, -1,
			  "%lu letters deferred (the first: id %lld, %s), "
			  "%s; run again later (-v lists them)",
			  st->deferred, r->deferred_id, r->deferred_why,
			  released);
	if (st->left)
		log_event(r->log, LOG_WARN, EV_NOTE, -1,
			  "--limit %lu reached: %lu letters left for the next "
			  "run",
			  r->o->limit, st->left);
}

void run_files(const struct run_opts *o, struct api *api, struct store *store,
	       struct store *outcomes, struct log *log, struct run_stats *st)
{
	struct run r;
	double t0 = clock_s();

	memset(&r, 0, sizeof(r));
	memset(st, 0, sizeof(*st));
	r.o = o;
	r.api = api;
	r.store = store;
	r.log = log;
	r.st = st;
	r.deferred_id = -1;
	r.bytes_total = input_size(o);
	run_init(&r, o);
	if (o->dry_run) {
		dry_run(&r);
	} else {
		r.coder = message_coder_new();
		r.worker = r.coder ? store_worker_start(store, outcomes,
							wake_api, api, r.err,
							sizeof(r.err))
				   : NULL;
		if (r.coder == NULL) {
			log_event(log, LOG_ERROR, EV_STORAGE, -1,
				  "out of memory; nothing was sent");
			st->storage_failed = 1;
		} else if (r.worker == NULL) {
			log_event(log, LOG_ERROR, EV_STORAGE, -1,
				  "%s; nothing was sent", r.err);
			st->storage_failed = 1;
		} else {
			send_all(&r);
			store_worker_stop(r.worker);
			store_worker_free(r.worker);
			r.worker = NULL;
		}
		save_unrecorded(&r);
		st->requests = api_requests(api);
	}
	run_release(&r);
	progress_clear(o->progress);
	closing_words(&r);
	st->seconds = clock_s() - t0;
}

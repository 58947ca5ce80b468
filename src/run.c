#include "run.h"

#include "api.h"
#include "clock.h"
#include "idset.h"
#include "journal.h"
#include "log.h"
#include "message.h"
#include "progress.h"
#include "reader.h"
#include "report.h"
#include "store.h"

#include <inttypes.h>
#include <signal.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>

/* --wait: letters kept for a second look, and the longest pause. */
#define WAIT_MAX_BYTES	  (64 << 20)
#define WAIT_PAUSE_MAX_MS 2000

/* A letter read and encoded, waiting for its claim or for a slot. */
struct pending {
	uint32_t id;
	char *body; /* owned until handed to the api */
	size_t len;
};

struct run {
	const struct run_opts *o;
	struct api *api;
	struct store *store;
	struct log *log;
	struct run_stats *st;

	size_t next_file;
	struct reader *reader;
	long long bytes_done;  /* input of the files already finished */
	long long bytes_total; /* of all files, or -1 if unknown (stdin) */
	int input_done;
	struct idset seen;

	/* claimed letters, oldest first, at most o->claim_batch */
	struct pending *queue;
	size_t qhead, qcount;

	/* the batch being claimed */
	struct pending *batch;
	uint32_t *batch_ids;
	enum claim *batch_claims;

	/* outcomes not yet written to the store, and their error texts */
	struct store_result *results;
	char (*texts)[API_DETAIL_MAX];
	size_t nresults, room;
	uint32_t *releases;
	size_t nreleases;
	/* letters in doubt whose claims are kept, and why ([retry] hold) */
	struct store_result *holds;
	char (*hold_texts)[sizeof(((struct api_done *)0)->detail)];
	size_t nholds;
	long oldest_ms; /* when the oldest unwritten outcome arrived */

	/*
	 * --wait: letters whose ids other live runs held when we met them,
	 * kept whole (stdin cannot be read again) up to WAIT_MAX_BYTES, and
	 * looked at again once our own letters are done.
	 */
	struct pending *waiting;
	size_t nwaiting, waiting_room, waiting_bytes;
	size_t look_from;   /* the next batch to look at */
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

/* The next letter that is valid and new in this run; 0 at the end. */
static int next_letter(struct run *r, struct pending *p)
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
		if (r->o->dry_run) {
			p->body = NULL;
			return 1;
		}
		p->body = message_form(l.id, l.to, l.to_len, l.subject,
				       l.subject_len, &p->len, r->err,
				       sizeof(r->err));
		if (p->body == NULL) {
			log_event(r->log, LOG_WARN, EV_INVALID, l.id,
				  "%s:%ld: %s; not sent",
				  reader_name(r->reader), l.line, r->err);
			r->st->invalid++;
			report_letter(r, l.id, REPORT_INVALID, 0, 0, 0, NULL,
				      r->err);
			continue;
		}
		return 1;
	}
	return 0;
}

/* Letters read and dropped before any attempt: deferred, nothing sent. */
static void drop_pending(struct run *r, struct pending *p, int release)
{
	free(p->body);
	p->body = NULL;
	r->st->deferred++;
	report_letter(r, p->id, REPORT_DEFERRED, 0, 0, 0, NULL,
		      release ? "not sent: the run is stopping"
			      : "not sent: the store failed");
	if (release)
		r->releases[r->nreleases++] = p->id;
}

static void begin_stop(struct run *r)
{
	if (r->stopping)
		return;
	r->stopping = 1;
	while (r->qcount) {
		drop_pending(r, &r->queue[r->qhead], 1);
		r->qhead = (r->qhead + 1) % r->o->claim_batch;
		r->qcount--;
	}
	if (r->api)
		api_stop(r->api);
}

/* Keep a held letter for a second look; 0, or -1 if there is no room. */
static int keep_waiting(struct run *r, struct pending *p)
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
	r->waiting[r->nwaiting++] = *p;
	r->waiting_bytes += p->len;
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
	free(p->body);
	p->body = NULL;
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

/* A letter claimed by this run, to be sent. */
static void enqueue(struct run *r, const struct pending *p)
{
	r->queue[(r->qhead + r->qcount) % r->o->claim_batch] = *p;
	r->qcount++;
	r->claimed++;
}

/* Ids the next batch may claim: the batch, or what --limit leaves. */
static size_t batch_room(const struct run *r)
{
	if (r->o->limit && r->o->limit - r->claimed < r->o->claim_batch)
		return r->o->limit - r->claimed;
	return r->o->claim_batch;
}

static void sort_claims(struct run *r, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		struct pending *p = &r->batch[i];

		if (r->batch_claims[i] == CLAIM_OK)
			enqueue(r, p);
		else if (r->batch_claims[i] != CLAIM_HELD ||
			 keep_waiting(r, p) < 0)
			skip_claimed(r, p, r->batch_claims[i]);
	}
}

static void give_up_waiting(struct run *r);

/*
 * --wait: claim the next batch of letters held by other runs again: the
 * ones now ours go to the queue, the ones finished elsewhere are done, the
 * ones whose run is gone are skipped (--reclaim would have taken them),
 * the others wait.  After a whole pass, a pause that doubles while
 * nothing moves.
 */
static void look_again(struct run *r)
{
	size_t i, kept = 0, from = r->look_from, room = batch_room(r),
		  n = r->nwaiting - from < room ? r->nwaiting - from : room;

	if (n == 0) { /* --limit reached: no more claims in this run */
		give_up_waiting(r);
		return;
	}
	for (i = 0; i < n; i++)
		r->batch_ids[i] = r->waiting[from + i].id;
	if (store_claim(r->store, r->batch_ids, n, r->batch_claims, r->err,
			sizeof(r->err)) < 0) {
		log_event(r->log, LOG_ERROR, EV_STORAGE, -1,
			  "%s; nothing more is sent", r->err);
		r->st->storage_failed = 1;
		begin_stop(r);
		return;
	}
	for (i = 0; i < n; i++) {
		struct pending *p = &r->waiting[from + i];

		if (r->batch_claims[i] == CLAIM_HELD) {
			r->waiting[from + kept++] = *p;
			continue;
		}
		r->moved = 1;
		r->waiting_bytes -= p->len;
		if (r->batch_claims[i] == CLAIM_OK) {
			enqueue(r, p);
			continue;
		}
		if (r->batch_claims[i] == CLAIM_DONE)
			r->st->done_elsewhere++;
		skip_claimed(r, p, r->batch_claims[i]);
	}
	memmove(&r->waiting[from + kept], &r->waiting[from + n],
		(r->nwaiting - from - n) * sizeof(*r->waiting));
	r->nwaiting -= n - kept;
	r->look_from = from + kept;
	if (r->look_from < r->nwaiting)
		return;
	r->look_from = 0;
	if (r->moved || r->look_pause_ms == 0)
		r->look_pause_ms = r->o->wait_poll_ms;
	else if ((r->look_pause_ms *= 2) > WAIT_PAUSE_MAX_MS)
		r->look_pause_ms = WAIT_PAUSE_MAX_MS;
	r->moved = 0;
	r->next_look_ms = clock_ms() + r->look_pause_ms;
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

/* The first reason the run stops early, for --json's "error". */
static void stopped_by(struct run *r, const char *why)
{
	if (r->st->error[0] == '\0')
		snprintf(r->st->error, sizeof(r->st->error), "%s", why);
}

/* Read and claim the next batch into the (empty) queue. */
static void refill(struct run *r)
{
	size_t i, n = 0, room = batch_room(r);
	long t0;

	if (room == 0) {
		count_left(r);
		return;
	}
	while (n < room && next_letter(r, &r->batch[n])) {
		r->batch_ids[n] = r->batch[n].id;
		n++;
	}
	if (n == 0)
		return;
	t0 = clock_ms();
	if (store_claim(r->store, r->batch_ids, n, r->batch_claims, r->err,
			sizeof(r->err)) < 0) {
		log_event(r->log, LOG_ERROR, EV_STORAGE, -1,
			  "%s; nothing more is sent", r->err);
		stopped_by(r, r->err);
		r->st->storage_failed = 1;
		for (i = 0; i < n; i++)
			drop_pending(r, &r->batch[i], 0);
		begin_stop(r);
		return;
	}
	i = r->qcount;
	sort_claims(r, n);
	log_event(r->log, LOG_DEBUG, EV_STORAGE, -1,
		  "store: claimed %zu ids in %ld ms: %zu ours, %zu not", n,
		  clock_ms() - t0, r->qcount - i, n - (r->qcount - i));
}

/* Write the outcomes gathered so far; on failure keep them for later. */
static void flush(struct run *r)
{
	long t0 = clock_ms();

	if (r->nresults == 0 && r->nreleases == 0 && r->nholds == 0)
		return;
	/* analyzer false positive: the arrays are owned by run_release() */
	// NOLINTBEGIN(clang-analyzer-unix.Malloc)
	if (store_finish(r->store, r->results, r->nresults, r->err,
			 sizeof(r->err)) < 0 ||
	    store_release(r->store, r->releases, r->nreleases, r->err,
			  sizeof(r->err)) < 0 ||
	    store_hold(r->store, r->holds, r->nholds, r->err, sizeof(r->err)) <
		    0) {
		if (!r->st->storage_failed)
			log_event(r->log, LOG_ERROR, EV_STORAGE, -1,
				  "%s; nothing more is sent", r->err);
		stopped_by(r, r->err);
		r->st->storage_failed = 1;
		begin_stop(r);
		return;
	}
	// NOLINTEND(clang-analyzer-unix.Malloc)
	log_event(r->log, LOG_DEBUG, EV_STORAGE, -1,
		  "store: recorded %zu outcomes and released %zu claims in "
		  "%ld ms",
		  r->nresults, r->nreleases, clock_ms() - t0);
	r->nresults = 0;
	r->nreleases = 0;
	r->nholds = 0;
}

static int flush_due(const struct run *r)
{
	size_t n = r->nresults + r->nreleases + r->nholds;

	if (n == 0)
		return 0;
	/* room must remain for every letter the api and queue may return */
	if (n >= r->o->claim_batch)
		return 1;
	return clock_ms() - r->oldest_ms >= r->o->flush_ms;
}

static void note_arrival(struct run *r)
{
	if (r->nresults + r->nreleases + r->nholds == 0)
		r->oldest_ms = clock_ms();
}

static void record(struct run *r, const struct api_done *d, int status)
{
	struct store_result *res = &r->results[r->nresults];

	res->id = d->id;
	res->ts = d->ts;
	res->status = status;
	res->attempts = d->attempts;
	res->error = NULL;
	if (status < 0) {
		memcpy(r->texts[r->nresults], d->detail, API_DETAIL_MAX);
		res->error = r->texts[r->nresults];
	}
	r->nresults++;
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
		r->releases[r->nreleases++] = d->id;
		return;
	}
	h = &r->holds[r->nholds];
	memcpy(r->hold_texts[r->nholds], d->detail, sizeof(d->detail));
	h->id = d->id;
	h->ts = d->ts;
	h->status = -1;
	h->attempts = d->attempts;
	h->error = r->hold_texts[r->nholds];
	r->nholds++;
}

static void on_deferred(struct run *r, const struct api_done *d)
{
	if (d->in_doubt) {
		on_in_doubt(r, d);
	} else {
		r->st->deferred++;
		r->releases[r->nreleases++] = d->id;
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

	note_arrival(r);
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
		r->releases[r->nreleases++] = d->id;
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
		next_letter(r, &p); /* valid letters are counted as read */
		if ((r->st->letters & 1023) == 0)
			show_progress(r);
	}
}

static void send_all(struct run *r)
{
	struct api_done d;

	for (;;) {
		watch_signals(r);
		while (!r->stopping && api_has_room(r->api)) {
			if (r->qcount == 0)
				refill(r);
			/* a batch of skipped ids: read on, do not wait */
			if (r->qcount == 0 && (r->input_done || r->stopping))
				break;
			if (r->qcount == 0)
				continue;
			api_add(r->api, r->queue[r->qhead].id,
				r->queue[r->qhead].body,
				r->queue[r->qhead].len);
			r->qhead = (r->qhead + 1) % r->o->claim_batch;
			r->qcount--;
		}
		if (api_held(r->api) == 0 && r->qcount == 0 &&
		    (r->input_done || r->stopping)) {
			if (r->stopping || r->nwaiting == 0)
				break;
			/* our own letters are done: look at the held ones */
			if (r->wait_until_ms == 0)
				r->wait_until_ms = clock_ms() +
						   r->o->wait_max_ms;
			if (clock_ms() >= r->wait_until_ms) {
				log_warn(r->log,
					 "gave up waiting for %zu letters held "
					 "by other runs after %ld s ([store] "
					 "claim_lease)",
					 r->nwaiting, r->o->wait_max_ms / 1000);
				break;
			}
			if (clock_ms() >= r->next_look_ms) {
				flush(r);
				if (!r->stopping)
					look_again(r);
				continue;
			}
		}
		if (api_run(r->api, 100, r->err, sizeof(r->err)) < 0) {
			log_error(r->log, "%s", r->err);
			begin_stop(r);
			api_abort(r->api);
		}
		while (api_take(r->api, &d))
			on_done(r, &d);
		show_progress(r);
		/* after a failure the store is tried again only at the end */
		if (flush_due(r) && !r->st->storage_failed)
			flush(r);
	}
	/* An abort (second signal) hands its letters out at once: the loop
	 * may end before it has taken them. */
	while (api_take(r->api, &d))
		on_done(r, &d);
	flush(r);
	give_up_waiting(r);
}

static int run_init(struct run *r, const struct run_opts *o)
{
	size_t b = o->claim_batch;

	/*
	 * Outcomes wait for a flush while at most a batch is pending, and
	 * in one turn the api can return all its slots and a stop can
	 * release the whole queue; after a store failure, all of it again.
	 */
	r->room = 2 * (b + o->slots);
	idset_init(&r->seen);
	r->queue = calloc(b, sizeof(*r->queue));
	r->batch = calloc(b, sizeof(*r->batch));
	r->batch_ids = calloc(b, sizeof(*r->batch_ids));
	r->batch_claims = calloc(b, sizeof(*r->batch_claims));
	r->results = calloc(r->room, sizeof(*r->results));
	r->texts = calloc(r->room, sizeof(*r->texts));
	r->releases = calloc(r->room, sizeof(*r->releases));
	r->holds = calloc(r->room, sizeof(*r->holds));
	r->hold_texts = calloc(r->room, sizeof(*r->hold_texts));
	return r->queue && r->batch && r->batch_ids && r->batch_claims &&
			       r->results && r->texts && r->releases &&
			       r->holds && r->hold_texts
		       ? 0
		       : -1;
}

static void run_release(struct run *r)
{
	reader_free(r->reader);
	idset_release(&r->seen);
	free(r->queue);
	free(r->batch);
	free(r->batch_ids);
	free(r->batch_claims);
	free(r->results);
	free(r->texts);
	free(r->releases);
	give_up_waiting(r); /* frees what a failed run kept */
	free(r->waiting);
	free(r->holds);
	free(r->hold_texts);
}

/*
 * What the store never took goes to the journal, to be applied later with
 * --replay; if even that fails it is printed, so that nothing is lost.
 */
static void save_unrecorded(struct run *r)
{
	size_t i;
	char ts[20];

	r->st->unrecorded = r->nresults;
	if (r->nreleases)
		log_error(r->log,
			  "%zu claims of letters not sent could not be "
			  "released; they stay claimed (see --reclaim)",
			  r->nreleases);
	if (r->nresults == 0)
		return;
	if (journal_append(r->o->journal, r->results, r->nresults, r->err,
			   sizeof(r->err)) == 0) {
		log_error(r->log,
			  "%zu answers of the API could not be recorded; "
			  "they are saved in the journal '%s': once the "
			  "database is back, run: sender --replay %s",
			  r->nresults, r->o->journal, r->o->journal);
		return;
	}
	log_error(r->log, "%s", r->err);
	for (i = 0; i < r->nresults; i++) {
		const struct store_result *res = &r->results[i];

		store_format_ts(res->ts, ts);
		log_error(r->log,
			  "not recorded: id %" PRIu32 " answered at %s "
			  "UTC, delivery_status %d",
			  res->id, ts, res->status);
	}
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
	       struct log *log, struct run_stats *st)
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
	if (run_init(&r, o) < 0) {
		log_error(log, "out of memory");
		st->storage_failed = 1;
	} else if (o->dry_run) {
		dry_run(&r);
	} else {
		send_all(&r);
		if (r.nresults || r.nreleases)
			save_unrecorded(&r);
		st->requests = api_requests(api);
	}
	run_release(&r);
	progress_clear(o->progress);
	closing_words(&r);
	st->seconds = clock_s() - t0;
}

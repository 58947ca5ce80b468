#include "api.h"

#include "backoff.h"
#include "bucket.h"
#include "buf.h"
#include "clock.h"
#include "text.h"
#include "window.h"

#include <curl/curl.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/*
 * Bytes of an answer body kept: enough for any error text worth logging.
 * A longer body is not judged at all: its first bytes may say "1" and the
 * rest something else, so the answer is an error.
 */
#define BODY_CAP 4096

/*
 * Bytes of answer headers accepted, well below libcurl's own limit (whose
 * error code is not distinct in every version): a flood of headers is an
 * answer that cannot be trusted, not a failure worth another attempt.
 */
#define HEADER_CAP 65536

enum slot_state { SLOT_FREE, SLOT_WAITING, SLOT_FLIGHT };

/* One letter held by the api, and the easy handle that carries it. */
struct transfer {
	enum slot_state state;
	CURL *easy; /* kept across letters: its connection is reused */
	uint32_t id;
	/*
	 * The letter's body, kept for its attempts: one buffer a slot for
	 * the whole run, so that a letter costs no allocation here.
	 */
	struct buf body;
	unsigned attempts;
	long due_ms;	     /* when SLOT_WAITING: earliest start */
	unsigned long order; /* when it was handed in: older goes first */
	unsigned long seq;   /* window sequence number of the request */
	long deadline_ms;    /* when SLOT_FLIGHT: give up, on the api's clock */
	long first_ms;	     /* when its first attempt started */
	int doubt;    /* an attempt may have reached the API unanswered */
	int overflow; /* this answer: body or headers past their cap */
	size_t header_bytes;  /* this answer's headers so far */
	char status_line[96]; /* this answer's last status line */
	struct buf answer;
	char error[CURL_ERROR_SIZE];
};

struct api {
	struct api_opts o;
	CURLM *multi;
	struct curl_slist *headers;
	CURLU *url;
	struct transfer *slots;
	unsigned held, in_flight;
	unsigned long added; /* letters handed in so far */
	int stopped;
	unsigned long requests;
	struct window window;
	unsigned window_shown; /* the limit last told to trace */
	struct bucket bucket;  /* --rate */
	struct backoff backoff;
	struct api_done *done; /* ring of o.concurrency entries */
	/*
	 * The api's clock: read once a turn of api_run(), after its wait,
	 * and used for every start, deadline and backoff of the turn.
	 */
	long now;
	unsigned done_head, done_count;
};

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
	struct transfer *t = arg;

	long status = 0;

	if (buf_append(&t->answer, data, size * n) == 0)
		return size * n;
	/*
	 * Past the cap a success cannot be judged: stop reading it.  Other
	 * statuses are judged by their status; their text is only shown, so
	 * the rest of it is dropped, not the transfer (a proxy's 503 page).
	 */
	curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
	if (status >= 200 && status < 300) {
		t->overflow = 1;
		return 0;
	}
	return size * n;
}

static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
	struct transfer *t = arg;
	size_t len = size * n;

	t->header_bytes += len;
	if (t->header_bytes > HEADER_CAP) {
		t->overflow = 1;
		return 0;
	}
	if (len > 5 && memcmp(data, "HTTP/", 5) == 0) {
		while (len > 0 &&
		       (data[len - 1] == '\n' || data[len - 1] == '\r'))
			len--;
		text_safe(t->status_line, sizeof(t->status_line), data, len);
	}
	return size * n;
}

static void trace(struct api *a, uint32_t id, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void trace(struct api *a, uint32_t id, const char *fmt, ...)
{
	char msg[640];
	va_list ap;

	if (a->o.trace == NULL)
		return;
	va_start(ap, fmt);
	/* analyzer false positive: ap comes from the va_start above */
	// NOLINTBEGIN(clang-analyzer-valist.Uninitialized)
	vsnprintf(msg, sizeof(msg), fmt, ap);
	// NOLINTEND(clang-analyzer-valist.Uninitialized)
	va_end(ap);
	a->o.trace(a->o.trace_arg, id, msg);
}

/* Tell the listener when the window has moved by a whole request. */
static void trace_window(struct api *a, const char *why)
{
	unsigned now = window_limit(&a->window);

	if (now == a->window_shown)
		return;
	trace(a, 0, "window %u -> %u requests in flight (%s)", a->window_shown,
	      now, why);
	a->window_shown = now;
}

static int setup_easy(struct api *a, struct transfer *t)
{
	CURL *e = curl_easy_init();
	long connect_ms = a->o.timeout_ms < 10000 ? a->o.timeout_ms : 10000;

	if (e == NULL)
		return -1;
	t->easy = e;
	curl_easy_setopt(e, CURLOPT_CURLU, a->url);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, a->headers);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, t);
	/* the URL was checked, but a redirect must not leave http either */
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->error);
	curl_easy_setopt(e, CURLOPT_PRIVATE, t);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "sender/" SENDER_VERSION);
	return 0;
}

struct api *api_new(const struct api_opts *o, char *err, size_t errlen)
{
	struct api *a = calloc(1, sizeof(*a));
	CURLUcode uc;
	unsigned i;

	if (a == NULL)
		goto nomem;
	a->o = *o;
	a->slots = calloc(o->concurrency, sizeof(*a->slots));
	a->done = calloc(o->concurrency, sizeof(*a->done));
	a->multi = curl_multi_init();
	/* no "Expect: 100-continue": it costs a round trip on big bodies */
	a->headers = curl_slist_append(NULL, "Expect:");
	a->url = curl_url();
	if (a->slots == NULL || a->done == NULL || a->multi == NULL ||
	    a->headers == NULL || a->url == NULL)
		goto nomem;
	/* as url_check() took it: parsed once here, not again per request */
	uc = curl_url_set(a->url, CURLUPART_URL, o->url,
			  CURLU_NON_SUPPORT_SCHEME);
	if (uc != CURLUE_OK) {
		snprintf(err, errlen, "the API URL does not parse: %s",
			 curl_url_strerror(uc));
		api_free(a);
		return NULL;
	}
	curl_multi_setopt(a->multi, CURLMOPT_MAXCONNECTS, (long)o->concurrency);
	window_init(&a->window, o->concurrency);
	a->window_shown = window_limit(&a->window);
	a->now = clock_ms();
	bucket_init(&a->bucket, o->rate, a->now);
	backoff_init(&a->backoff, o->base_delay_ms, o->max_delay_ms, o->seed);
	for (i = 0; i < o->concurrency; i++) {
		buf_init(&a->slots[i].answer, BODY_CAP);
		buf_init(&a->slots[i].body, 0);
		if (setup_easy(a, &a->slots[i]) < 0)
			goto nomem;
	}
	return a;
nomem:
	snprintf(err, errlen, "out of memory setting up %u transfers",
		 o->concurrency);
	api_free(a);
	return NULL;
}

void api_free(struct api *a)
{
	unsigned i;

	if (a == NULL)
		return;
	for (i = 0; a->slots && i < a->o.concurrency; i++) {
		struct transfer *t = &a->slots[i];

		if (t->easy && t->state == SLOT_FLIGHT)
			curl_multi_remove_handle(a->multi, t->easy);
		if (t->easy)
			curl_easy_cleanup(t->easy);
		buf_release(&t->body);
		buf_release(&t->answer);
	}
	if (a->multi)
		curl_multi_cleanup(a->multi);
	curl_slist_free_all(a->headers);
	curl_url_cleanup(a->url);
	free(a->slots);
	free(a->done);
	free(a);
}

int api_has_room(const struct api *a)
{
	return !a->stopped && a->held < a->o.concurrency;
}

unsigned api_held(const struct api *a)
{
	return a->held;
}

unsigned api_in_flight(const struct api *a)
{
	return a->in_flight;
}

void api_wakeup(struct api *a)
{
	curl_multi_wakeup(a->multi);
}

unsigned long api_requests(const struct api *a)
{
	return a->requests;
}

int api_add(struct api *a, uint32_t id, const char *body, size_t len)
{
	unsigned i;

	for (i = 0; i < a->o.concurrency; i++) {
		struct transfer *t = &a->slots[i];

		if (t->state != SLOT_FREE)
			continue;
		buf_reset(&t->body);
		if (buf_append(&t->body, body, len) < 0)
			return -1;
		t->state = SLOT_WAITING;
		t->id = id;
		t->attempts = 0;
		t->due_ms = 0;
		t->doubt = 0;
		t->order = ++a->added;
		a->held++;
		return 0;
	}
	return -1; /* api_has_room() was not asked: a caller bug */
}

/* Hand the letter of a slot out with its outcome and free the slot. */
static struct api_done *finish(struct api *a, struct transfer *t,
			       enum outcome outcome, long status)
{
	struct api_done *d;

	d = &a->done[(a->done_head + a->done_count) % a->o.concurrency];
	a->done_count++;
	memset(d, 0, sizeof(*d));
	d->id = t->id;
	d->outcome = outcome;
	d->ts = time(NULL);
	d->attempts = t->attempts;
	d->http_status = status;
	d->in_doubt = t->doubt;
	t->state = SLOT_FREE;
	a->held--;
	return d;
}

int api_take(struct api *a, struct api_done *out)
{
	if (a->done_count == 0)
		return 0;
	*out = a->done[a->done_head];
	a->done_head = (a->done_head + 1) % a->o.concurrency;
	a->done_count--;
	return 1;
}

static void start(struct api *a, struct transfer *t)
{
	buf_reset(&t->answer);
	t->error[0] = '\0';
	t->overflow = 0;
	t->header_bytes = 0;
	t->status_line[0] = '\0';
	curl_easy_setopt(t->easy, CURLOPT_POSTFIELDS, t->body.data);
	curl_easy_setopt(t->easy, CURLOPT_POSTFIELDSIZE_LARGE,
			 (curl_off_t)t->body.len);
	if (curl_multi_add_handle(a->multi, t->easy) != CURLM_OK) {
		t->due_ms = a->now + a->o.base_delay_ms;
		return;
	}
	t->state = SLOT_FLIGHT;
	if (t->attempts++ == 0)
		t->first_ms = a->now;
	t->seq = window_sent(&a->window);
	t->deadline_ms = a->now + a->o.timeout_ms;
	a->in_flight++;
	a->requests++;
}

/* The due letter handed in first, or NULL. */
static struct transfer *oldest_due(struct api *a, long now)
{
	struct transfer *best = NULL;
	unsigned i;

	for (i = 0; i < a->o.concurrency; i++) {
		struct transfer *t = &a->slots[i];

		if (t->state == SLOT_WAITING && t->due_ms <= now &&
		    (best == NULL || t->order < best->order))
			best = t;
	}
	return best;
}

/*
 * Start waiting letters that are due, as far as the window allows, oldest
 * first.  In slot order instead, a retried letter in a high slot would be
 * the request past a full API's capacity round after round, and fresh
 * letters in high slots would wait for the end of the input.
 */
static void start_due(struct api *a, long now)
{
	unsigned limit = window_limit(&a->window);
	struct transfer *t;

	while (a->in_flight < limit && (t = oldest_due(a, now)) != NULL &&
	       bucket_take(&a->bucket, now))
		start(a, t);
}

/* Milliseconds until the next waiting letter is due, at most cap. */
static long next_due_in(const struct api *a, long now, long cap)
{
	unsigned i;
	long wait = cap;

	if (a->in_flight >= window_limit(&a->window))
		return cap;
	for (i = 0; i < a->o.concurrency; i++) {
		const struct transfer *t = &a->slots[i];

		if (t->state == SLOT_WAITING && t->due_ms - now < wait)
			wait = t->due_ms - now;
	}
	/* a letter is due but the rate holds it back: wake up for it */
	if (wait < cap && bucket_wait_ms(&a->bucket, now) > wait)
		wait = bucket_wait_ms(&a->bucket, now);
	if (wait > cap)
		wait = cap;
	return wait > 0 ? wait : 0;
}

enum answer {
	ANSWER_DELIVERED,
	ANSWER_NOT_DELIVERED,
	ANSWER_REJECTED,
	ANSWER_ERROR,
	ANSWER_BUSY,	  /* 503, 429, timeout: retry and shrink the window */
	ANSWER_TRANSIENT, /* other 5xx, connection trouble: retry */
	ANSWER_MISCONFIGURED,
};

/* Whether body, but for surrounding white space, is exactly word. */
static int body_is(const struct buf *body, const char *word)
{
	const char *p = buf_str(body);
	size_t len = body->len, n = strlen(word);

	text_trim(&p, &len);
	return len == n && memcmp(p, word, n) == 0;
}

static enum answer classify(long status, const struct buf *body)
{
	/* not an HTTP status at all: nothing in it can be trusted */
	if (status < 100 || status > 599)
		return ANSWER_TRANSIENT;
	if (status == 200) {
		if (body_is(body, "1"))
			return ANSWER_DELIVERED;
		if (body_is(body, "0"))
			return ANSWER_NOT_DELIVERED;
		return ANSWER_ERROR;
	}
	if (status == 400)
		return ANSWER_REJECTED;
	if (status == 503 || status == 429)
		return ANSWER_BUSY;
	if (status >= 500)
		return ANSWER_TRANSIENT;
	if (status > 200 && status < 300)
		return ANSWER_ERROR;
	return ANSWER_MISCONFIGURED;
}

/*
 * Copy text into a one-line detail, for logs and the store: valid UTF-8
 * without control characters, whatever the API sent.
 */
static void set_detail(struct api_done *d, const char *text, size_t len)
{
	text_safe(d->detail, sizeof(d->detail), text, len);
}

static void retry_or_defer(struct api *a, struct transfer *t, long status,
			   const char *why)
{
	curl_off_t retry_after = 0;
	struct api_done *d;
	char text[sizeof(d->detail)];
	long now = a->now, delay;

	if (t->attempts < a->o.max_attempts && !a->stopped) {
		/* a number of seconds, or an HTTP-date that libcurl turned
		 * into seconds from now (curl_getdate: UTC) */
		curl_easy_getinfo(t->easy, CURLINFO_RETRY_AFTER, &retry_after);
		if (retry_after > a->o.max_retry_after_s)
			retry_after = a->o.max_retry_after_s;
		delay = backoff_delay_ms(&a->backoff, t->attempts - 1,
					 retry_after > 0 ? (long)retry_after
							 : -1);
		if (now + delay - t->first_ms <= a->o.max_letter_ms) {
			t->due_ms = now + delay;
			t->state = SLOT_WAITING;
			trace(a, t->id,
			      "id %" PRIu32 ": attempt %u: %s; again in %ld ms",
			      t->id, t->attempts, why, delay);
			return;
		}
		snprintf(text, sizeof(text),
			 "%s; the next attempt in %ld s would pass "
			 "max_letter_seconds",
			 why, (delay + 999) / 1000);
		why = text;
	}
	d = finish(a, t, OUTCOME_DEFERRED, status);
	set_detail(d, why, strlen(why));
}

static void on_answer(struct api *a, struct transfer *t, long status)
{
	enum answer ans = classify(status, &t->answer);
	static const enum outcome outcome_of[] = {
		[ANSWER_DELIVERED] = OUTCOME_DELIVERED,
		[ANSWER_NOT_DELIVERED] = OUTCOME_NOT_DELIVERED,
		[ANSWER_REJECTED] = OUTCOME_REJECTED,
		[ANSWER_ERROR] = OUTCOME_ERROR,
		[ANSWER_MISCONFIGURED] = OUTCOME_MISCONFIGURED,
	};
	char why[160];
	struct api_done *d;

	if (ans == ANSWER_BUSY || ans == ANSWER_TRANSIENT) {
		if (ans == ANSWER_BUSY) {
			window_busy(&a->window, t->seq);
			trace_window(a, "the API is busy");
		}
		if (status < 100 || status > 599)
			snprintf(why, sizeof(why), "status line '%s'",
				 t->status_line);
		else
			snprintf(why, sizeof(why), "HTTP %ld", status);
		retry_or_defer(a, t, status, why);
		return;
	}
	window_success(&a->window);
	trace_window(a, "the API answers");
	d = finish(a, t, outcome_of[ans], status);
	set_detail(d, buf_str(&t->answer), t->answer.len);
}

/*
 * Whether the whole request went out: then the API may have acted on it,
 * whatever happened to the answer.  libcurl counts the body as uploaded
 * once it is handed to the connection.
 */
static int request_sent(const struct transfer *t)
{
	curl_off_t up = 0;

	curl_easy_getinfo(t->easy, CURLINFO_SIZE_UPLOAD_T, &up);
	return up >= (curl_off_t)t->body.len;
}

static void on_transfer_error(struct api *a, struct transfer *t, CURLcode rc)
{
	const char *why = t->error[0] ? t->error : curl_easy_strerror(rc);
	char text[sizeof(t->error) + 64];

	if (rc == CURLE_OPERATION_TIMEDOUT) {
		window_busy(&a->window, t->seq);
		trace_window(a, "a request timed out");
	}
	if (request_sent(t)) {
		t->doubt = 1;
		if (a->o.in_doubt_hold) {
			snprintf(text, sizeof(text),
				 "in doubt: %s after the request was sent",
				 why);
			set_detail(finish(a, t, OUTCOME_IN_DOUBT, 0), text,
				   strlen(text));
			return;
		}
	}
	retry_or_defer(a, t, 0, why);
}

/* An answer too big to judge: an error answer, not worth another try. */
static void on_oversized(struct api *a, struct transfer *t, long status)
{
	char text[128];

	if (t->header_bytes > HEADER_CAP)
		snprintf(text, sizeof(text),
			 "answer headers longer than %d bytes", HEADER_CAP);
	else
		snprintf(text, sizeof(text), "answer body longer than %d bytes",
			 BODY_CAP);
	window_success(&a->window);
	set_detail(finish(a, t, OUTCOME_ERROR, status), text, strlen(text));
}

static void collect(struct api *a)
{
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(a->multi, &left)) != NULL) {
		struct transfer *t = NULL;
		long status = 0;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE,
				  (char **)&t);
		curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
		curl_multi_remove_handle(a->multi, t->easy);
		a->in_flight--;
		if (t->overflow)
			on_oversized(a, t, status);
		else if (msg->data.result == CURLE_OK)
			on_answer(a, t, status);
		else
			on_transfer_error(a, t, msg->data.result);
	}
}

static void expire(struct api *a, long now)
{
	unsigned i;

	for (i = 0; i < a->o.concurrency; i++) {
		struct transfer *t = &a->slots[i];

		if (t->state != SLOT_FLIGHT || now < t->deadline_ms)
			continue;
		curl_multi_remove_handle(a->multi, t->easy);
		a->in_flight--;
		snprintf(t->error, sizeof(t->error), "no answer within %ld ms",
			 a->o.timeout_ms);
		on_transfer_error(a, t, CURLE_OPERATION_TIMEDOUT);
	}
}

/*
 * Deadlines are not moved for the time the caller kept us away: the store
 * has a thread of its own now, and an answer that came meanwhile is taken
 * by the curl_multi_perform() below before expire() looks at the clock.
 */
int api_run(struct api *a, long timeout_ms, char *err, size_t errlen)
{
	CURLMcode rc;
	int running, waited = 0;

	if (!a->stopped)
		start_due(a, a->now);
	rc = curl_multi_perform(a->multi, &running);
	if (rc == CURLM_OK) {
		collect(a);
		if (a->done_count == 0) {
			rc = curl_multi_poll(
				a->multi, NULL, 0,
				(int)next_due_in(a, a->now, timeout_ms), NULL);
			waited = 1;
		}
	}
	a->now = clock_ms(); /* once a turn, after the wait */
	if (rc == CURLM_OK && waited) {
		rc = curl_multi_perform(a->multi, &running);
		collect(a);
	}
	if (rc != CURLM_OK) {
		snprintf(err, errlen, "libcurl: %s", curl_multi_strerror(rc));
		return -1;
	}
	expire(a, a->now);
	if (!a->stopped)
		start_due(a, a->now);
	return 0;
}

long api_now(const struct api *a)
{
	return a->now;
}

#define STOPPING  "not sent: the run is stopping"
#define ABANDONED "abandoned in flight: the API may have it"

void api_stop(struct api *a)
{
	unsigned i;

	a->stopped = 1;
	for (i = 0; i < a->o.concurrency; i++)
		if (a->slots[i].state == SLOT_WAITING)
			set_detail(finish(a, &a->slots[i], OUTCOME_DEFERRED, 0),
				   STOPPING, sizeof(STOPPING) - 1);
}

void api_abort(struct api *a)
{
	unsigned i;

	api_stop(a);
	for (i = 0; i < a->o.concurrency; i++) {
		struct transfer *t = &a->slots[i];

		if (t->state != SLOT_FLIGHT)
			continue;
		curl_multi_remove_handle(a->multi, t->easy);
		a->in_flight--;
		t->doubt = 1;
		set_detail(finish(a, t, OUTCOME_IN_DOUBT, 0), ABANDONED,
			   sizeof(ABANDONED) - 1);
	}
}

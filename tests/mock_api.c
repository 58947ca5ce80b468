/*
 * mock_api: a stand-in for the mail API of SPEC.md section 3, for tests and
 * benchmarks. It answers POSTs like the real API (200, body "1"), checks that
 * each one is a well-formed letter, logs every one, and injects faults.
 *
 *   cc -O2 -Wall -Wextra -Werror -std=c11 -D_GNU_SOURCE -o tests/mock_api \
 *     tests/mock_api.c $(pkg-config --cflags --libs libmicrohttpd) -lpthread
 *
 * tests/mock_api [OPTIONS]
 *   --port N                  listen on 127.0.0.1:N; 0 (default): a free port
 *   --bind ADDR               listen on IPv4 address ADDR instead of 127.0.0.1
 *                             (a test bed's host, tests/hosts/netns.py)
 *   --port-file F             once listening, write "N\n" to F (via rename)
 *   --log F                   append SEQ\tID\tSTATUS\tBODY per POST (0: drop)
 *   --latency-ms N            answer each POST after N ms (thread/connection)
 *   --capacity N              at most N POSTs in progress; more: 503 at once
 *   --burst-503 N             the first N POSTs overall get 503
 *   --retry-after S           every 503 carries "Retry-After: S"
 *   --fail-rate P, --seed N   each POST gets 503 with probability P (seed 1)
 *   --fail-first ID=N         the first N POSTs with that id get 503
 *   --drop-first ID=N         the first N POSTs with that id: closed, no answer
 *   --answer ID=CODE[:BODY]   fixed answer for that id
 *   --zero-every K            ids divisible by K get 200 "0"
 *   --status-all CODE[:BODY]  every POST gets this answer
 *   --max-body N              bodies over N bytes get 413 (default 1 MiB)
 *   --header-flood N          every answer carries about N bytes of extra
 *                             headers (X-Flood-K: ...), a hostile server
 *
 * CODE is 200..999: 600..999 are not HTTP statuses, as a broken or hostile
 * server may send them (the reason phrase is then "Unknown").
 *
 * First matching rule wins: status-all, capacity, burst-503, 413, 400 (not a
 * letter: method, content type, fields id+message, id 0..4294967295),
 * drop-first, fail-first, fail-rate, answer, zero-every, 200 "1". Per-id
 * counters count each valid letter with that id, whatever rule answered it.
 * Every POST answer but a capacity 503 waits for the latency. The log is
 * buffered: GET /flush writes it out; GET /stats gives counters as JSON.
 * SIGTERM/SIGINT: stop, flush, exit 0. Usage errors exit 2, others exit 1.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <microhttpd.h>

#define PROG	       "mock_api"
#define MAX_STATUS     1000	  /* by_status index; 0 counts drops */
#define INLINE_BODY    512	  /* a typical letter needs no malloc */
#define LOG_BUF_SIZE   (1u << 20) /* written out when full or flushed */
#define STATS_SIZE     32768	  /* fits every status with a huge count */
#define NAME_MAX_SHOWN 32	  /* of an unknown field, in a 400 */
#define MSG_MAX	       160
#define ID_MAX	       4294967295ULL /* INT(11) UNSIGNED, SPEC.md section 2 */
#define FORM_TYPE      "application/x-www-form-urlencoded"

struct answer {
	unsigned int status;
	const char *body; /* points into argv */
	size_t len;
};

/* Everything the command line says about one id. */
struct id_rule {
	unsigned long id;
	unsigned long drop_n, fail_n;
	int has_answer;
	struct answer answer;
};

struct cfg {
	unsigned int port;
	struct in_addr bind; /* 127.0.0.1 unless --bind */
	const char *port_file, *log_path, *retry_after;
	unsigned long latency_ms, capacity, burst, zero_every;
	unsigned long long max_body, seed, header_flood;
	double fail_rate;
	int has_status_all;
	struct answer status_all;
	struct id_rule *rules; /* sorted by id, one per id */
	size_t nrules;
};

struct mlog {
	int fd; /* -1: no log */
	const char *path;
	char *buf;
	size_t len;
	int failed; /* a write error is reported once */
};

/* The server's shared state; lock guards the counters and the log. */
struct mock {
	const struct cfg *cfg;
	pthread_mutex_t lock;
	unsigned long requests, in_flight, max_in_flight;
	unsigned long by_status[MAX_STATUS];
	unsigned long *seen; /* per rule: POSTs that carried its id */
	uint64_t prng;
	struct mlog log;
	pthread_mutex_t stop_lock;
	pthread_cond_t stop_cond; /* cuts latency waits short at shutdown */
	int stopping;
};

/* One POST being received; freed when MHD reports it completed. */
struct req {
	int is_post;  /* a letter; anything else is a control request */
	int has_slot; /* counted in in_flight */
	int over_capacity;
	size_t total; /* bytes received; only max_body of them are kept */
	size_t len, cap;
	char *body; /* small, or the heap */
	char small[INLINE_BODY];
};

/* What one POST gets. */
struct verdict {
	unsigned int status; /* 0: close the connection, no answer */
	const char *body;
	size_t len;
	int at_once; /* no latency */
	int has_id;
	unsigned long id;
	int n_id, n_message;
	char msg[MSG_MAX]; /* why it is a 400; empty if it is a letter */
};

/* ---- form checking ---- */

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Decode one form component (percent escapes, '+' as space) into out,
 * keeping at most outsz bytes (out may be NULL to only check it); *outlen
 * gets the whole decoded length. Returns -1 on a malformed escape.
 */
static int form_decode(const char *s, size_t n, char *out, size_t outsz,
		       size_t *outlen)
{
	size_t i, k;

	for (i = 0, k = 0; i < n; i++, k++) {
		int c = (unsigned char)s[i];

		if (c == '+') {
			c = ' ';
		} else if (c == '%') {
			if (n - i < 3 || hexval(s[i + 1]) < 0 ||
			    hexval(s[i + 2]) < 0)
				return -1;
			c = hexval(s[i + 1]) * 16 + hexval(s[i + 2]);
			i += 2;
		}
		if (out != NULL && k < outsz)
			out[k] = (char)c;
	}
	*outlen = k;
	return 0;
}

/* A plain decimal of n bytes, at most max (leading zeros are fine). */
static int parse_num(const char *s, size_t n, unsigned long long max,
		     unsigned long long *out)
{
	unsigned long long v = 0;
	size_t i;

	if (n == 0)
		return -1;
	for (i = 0; i < n; i++) {
		unsigned int d = (unsigned char)s[i] - '0';

		if (d > 9 || v > (max - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

/* Keep the first reason a request is not a letter. */
static void reject(struct verdict *v, const char *fmt, ...)
{
	va_list ap;

	if (v->msg[0] != '\0')
		return;
	va_start(ap, fmt);
	vsnprintf(v->msg, sizeof v->msg, fmt, ap);
	va_end(ap);
}

static void check_id(const char *s, size_t n, struct verdict *v)
{
	char text[24];
	size_t len;
	unsigned long long id;

	if (++v->n_id > 1) {
		reject(v, "duplicate field id");
		return;
	}
	if (form_decode(s, n, text, sizeof text, &len) < 0) {
		reject(v, "bad percent-encoding in field id");
		return;
	}
	if (len > sizeof text || parse_num(text, len, ID_MAX, &id) < 0) {
		reject(v, "bad id '%.*s': want a decimal in 0..%llu",
		       (int)(len < sizeof text ? len : sizeof text), text,
		       ID_MAX);
		return;
	}
	v->has_id = 1;
	v->id = (unsigned long)id;
}

static void check_message(const char *s, size_t n, struct verdict *v)
{
	size_t len;

	if (++v->n_message > 1)
		reject(v, "duplicate field message");
	else if (form_decode(s, n, NULL, 0, &len) < 0)
		reject(v, "bad percent-encoding in field message");
}

/* One "name=value" of the body, from p up to e. */
static void check_pair(const char *p, const char *e, struct verdict *v)
{
	const char *eq = memchr(p, '=', (size_t)(e - p));
	char name[NAME_MAX_SHOWN];
	size_t len;

	if (p == e) {
		reject(v, "empty field in body (stray '&')");
		return;
	}
	if (eq == NULL) {
		reject(v, "field without '=' in body");
		return;
	}
	if (form_decode(p, (size_t)(eq - p), name, sizeof name, &len) < 0) {
		reject(v, "bad percent-encoding in a field name");
		return;
	}
	if (len == strlen("id") && memcmp(name, "id", len) == 0)
		check_id(eq + 1, (size_t)(e - eq - 1), v);
	else if (len == strlen("message") && memcmp(name, "message", len) == 0)
		check_message(eq + 1, (size_t)(e - eq - 1), v);
	else
		reject(v, "unknown field '%.*s'",
		       (int)(len < sizeof name ? len : sizeof name), name);
}

/* Sets v->msg unless body is exactly the fields id and message. */
static void check_form(const char *body, size_t len, struct verdict *v)
{
	const char *p = body, *end = body + len;

	if (len == 0) {
		reject(v, "empty body: want fields id and message");
		return;
	}
	for (;;) {
		const char *amp = memchr(p, '&', (size_t)(end - p));

		check_pair(p, amp != NULL ? amp : end, v);
		if (amp == NULL)
			break;
		p = amp + 1;
	}
	if (v->n_id == 0)
		reject(v, "missing field id");
	if (v->n_message == 0)
		reject(v, "missing field message");
}

/* The media type must match; parameters such as charset may follow. */
static void check_type(const char *ct, struct verdict *v)
{
	size_t n = sizeof FORM_TYPE - 1;

	if (ct == NULL) {
		reject(v, "missing content type: want " FORM_TYPE);
		return;
	}
	if (strncasecmp(ct, FORM_TYPE, n) == 0) {
		ct += n;
		ct += strspn(ct, " \t");
		if (*ct == '\0' || *ct == ';')
			return;
	}
	reject(v, "bad content type: want " FORM_TYPE);
}

/* ---- the log ---- */

static void log_flush(struct mlog *l)
{
	size_t done = 0;

	while (done < l->len && l->fd >= 0) {
		ssize_t n = write(l->fd, l->buf + done, l->len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			if (!l->failed)
				fprintf(stderr,
					PROG ": cannot write '%s': %s\n",
					l->path, strerror(errno));
			l->failed = 1;
			break;
		}
		done += (size_t)n;
	}
	l->len = 0;
}

static void log_put(struct mlog *l, const char *s, size_t n)
{
	while (n > 0) {
		size_t room = LOG_BUF_SIZE - l->len;
		size_t k = n < room ? n : room;

		memcpy(l->buf + l->len, s, k);
		l->len += k;
		s += k;
		n -= k;
		if (l->len == LOG_BUF_SIZE)
			log_flush(l);
	}
}

static const char *escape_of(char c)
{
	switch (c) {
	case '\t': return "\\t";
	case '\n': return "\\n";
	case '\r': return "\\r";
	case '\\': return "\\\\";
	case '\0': return "\\0";
	default: return NULL;
	}
}

/* Bytes that would break the line format are written as two-byte escapes. */
static void log_put_escaped(struct mlog *l, const char *s, size_t n)
{
	size_t i, start = 0;

	for (i = 0; i < n; i++) {
		const char *esc = escape_of(s[i]);

		if (esc == NULL)
			continue;
		log_put(l, s + start, i - start);
		log_put(l, esc, 2);
		start = i + 1;
	}
	log_put(l, s + start, n - start);
}

/* Called with the lock held, so lines keep the order of the decisions. */
static void log_line(struct mlog *l, unsigned long seq, const struct verdict *v,
		     const char *body, size_t len)
{
	char head[80];
	int n;

	if (l->fd < 0)
		return;
	if (v->has_id)
		n = snprintf(head, sizeof head, "%lu\t%lu\t%u\t", seq, v->id,
			     v->status);
	else
		n = snprintf(head, sizeof head, "%lu\t-\t%u\t", seq, v->status);
	/* Flush first if needed, so a reader never sees half a line. */
	if (LOG_BUF_SIZE - l->len < (size_t)n + 2 * len + 1)
		log_flush(l);
	log_put(l, head, (size_t)n);
	log_put_escaped(l, body, len);
	log_put(l, "\n", sizeof("\n") - 1);
}

/* ---- deciding ---- */

static int rule_cmp(const void *a, const void *b)
{
	const struct id_rule *x = a, *y = b;

	return (x->id > y->id) - (x->id < y->id);
}

static const struct id_rule *rule_find(const struct cfg *cfg, unsigned long id)
{
	struct id_rule key = { .id = id };

	if (cfg->nrules == 0)
		return NULL;
	return bsearch(&key, cfg->rules, cfg->nrules, sizeof key, rule_cmp);
}

/* splitmix64: tiny, and one seed gives one sequence of decisions. */
static double prng_next(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	z ^= z >> 31;
	return (double)(z >> 11) * 0x1.0p-53;
}

static void set_answer(struct verdict *v, unsigned int status, const char *body)
{
	v->status = status;
	v->body = body;
	v->len = strlen(body);
}

/*
 * The rules in their documented order; called with m->lock held. A per-id
 * counter counts every letter with that id, whichever rule answers it, so
 * "the k-th POST of id X" means the same thing to every rule.
 */
static void choose(struct mock *m, const struct req *r, unsigned long seq,
		   struct verdict *v)
{
	const struct cfg *cfg = m->cfg;
	int letter = v->msg[0] == '\0' && r->total <= cfg->max_body;
	const struct id_rule *rule = letter ? rule_find(cfg, v->id) : NULL;
	unsigned long seen = rule != NULL ? ++m->seen[rule - cfg->rules] : 0;

	if (cfg->has_status_all) {
		v->status = cfg->status_all.status;
		v->body = cfg->status_all.body;
		v->len = cfg->status_all.len;
	} else if (r->over_capacity) {
		set_answer(v, 503, "over capacity");
		v->at_once = 1;
	} else if (seq <= cfg->burst) {
		set_answer(v, 503, "busy (burst)");
	} else if (r->total > cfg->max_body) {
		set_answer(v, 413, "body too large");
	} else if (v->msg[0] != '\0') {
		set_answer(v, 400, v->msg);
	} else if (rule != NULL && seen <= rule->drop_n) {
		set_answer(v, 0, "");
	} else if (rule != NULL && seen <= rule->fail_n) {
		set_answer(v, 503, "busy (fail-first)");
	} else if (cfg->fail_rate > 0 && prng_next(&m->prng) < cfg->fail_rate) {
		set_answer(v, 503, "busy (fail-rate)");
	} else if (rule != NULL && rule->has_answer) {
		v->status = rule->answer.status;
		v->body = rule->answer.body;
		v->len = rule->answer.len;
	} else if (cfg->zero_every != 0 && v->id % cfg->zero_every == 0) {
		set_answer(v, 200, "0");
	} else {
		set_answer(v, 200, "1");
	}
}

/* Check the request outside the lock, then decide and log under it. */
static void decide(struct mock *m, struct MHD_Connection *c,
		   const struct req *r, struct verdict *v)
{
	unsigned long seq;

	memset(v, 0, sizeof *v);
	check_type(MHD_lookup_connection_value(c, MHD_HEADER_KIND,
					       MHD_HTTP_HEADER_CONTENT_TYPE),
		   v);
	check_form(r->body, r->len, v);
	pthread_mutex_lock(&m->lock);
	seq = ++m->requests;
	choose(m, r, seq, v);
	m->by_status[v->status]++;
	log_line(&m->log, seq, v, r->body, r->len);
	pthread_mutex_unlock(&m->lock);
}

/* ---- the request's life ---- */

/* A request holds a slot from its headers until its answer is handed over. */
static void take_slot(struct mock *m, struct req *r)
{
	pthread_mutex_lock(&m->lock);
	if (m->cfg->capacity != 0 && m->in_flight >= m->cfg->capacity) {
		r->over_capacity = 1;
	} else {
		r->has_slot = 1;
		if (++m->in_flight > m->max_in_flight)
			m->max_in_flight = m->in_flight;
	}
	pthread_mutex_unlock(&m->lock);
}

/*
 * Released before the answer is queued: the client cannot start its next
 * request before that, so in_flight never exceeds the client's concurrency.
 */
static void release_slot(struct mock *m, struct req *r)
{
	if (!r->has_slot)
		return;
	pthread_mutex_lock(&m->lock);
	m->in_flight--;
	pthread_mutex_unlock(&m->lock);
	r->has_slot = 0;
}

/* Keeps at most max_body bytes; the rest is only counted. */
static int req_append(struct req *r, const char *data, size_t n,
		      unsigned long long max_body)
{
	size_t keep = r->len < max_body ? (size_t)(max_body - r->len) : 0;

	r->total += n;
	keep = n < keep ? n : keep;
	if (r->len + keep > r->cap) {
		size_t cap = r->cap * 2 > r->len + keep ? r->cap * 2
							: r->len + keep;
		char *p = r->body == r->small ? malloc(cap)
					      : realloc(r->body, cap);

		if (p == NULL)
			return -1;
		if (r->body == r->small)
			memcpy(p, r->small, r->len);
		r->body = p;
		r->cap = cap;
	}
	memcpy(r->body + r->len, data, keep);
	r->len += keep;
	return 0;
}

static void wait_latency(struct mock *m)
{
	struct timespec until;
	unsigned long ms = m->cfg->latency_ms;

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += (time_t)(ms / 1000);
	until.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&m->stop_lock);
	while (!m->stopping &&
	       pthread_cond_timedwait(&m->stop_cond, &m->stop_lock, &until) !=
		       ETIMEDOUT)
		;
	pthread_mutex_unlock(&m->stop_lock);
}

/* About n bytes of headers, in lines of 1000: a hostile server. */
static void add_flood(struct MHD_Response *resp, unsigned long long n)
{
	char name[32], value[1000];
	unsigned long long k;

	memset(value, 'f', sizeof value - 1);
	value[sizeof value - 1] = '\0';
	for (k = 0; k * 1024 < n; k++) {
		snprintf(name, sizeof name, "X-Flood-%llu", k);
		MHD_add_response_header(resp, name, value);
	}
}

static enum MHD_Result send_answer(struct mock *m, struct MHD_Connection *c,
				   int letter, unsigned int status,
				   const char *type, const char *body,
				   size_t len)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	resp = MHD_create_response_from_buffer(len, (void *)body,
					       MHD_RESPMEM_MUST_COPY);
	if (resp == NULL)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	/* answers to letters only: the control endpoints stay readable */
	if (letter)
		add_flood(resp, m->cfg->header_flood);
	if (status == 503 && m->cfg->retry_after != NULL)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER,
					m->cfg->retry_after);
	ret = MHD_queue_response(c, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result req_finish(struct mock *m, struct MHD_Connection *c,
				  struct req *r)
{
	struct verdict v;

	decide(m, c, r, &v);
	if (!v.at_once && m->cfg->latency_ms != 0)
		wait_latency(m);
	release_slot(m, r);
	if (v.status == 0)
		return MHD_NO; /* MHD closes the connection unanswered */
	return send_answer(m, c, 1, v.status, "text/plain", v.body, v.len);
}

/* ---- control endpoints ---- */

static size_t stats_json(struct mock *m, char *out, size_t size)
{
	size_t n;
	const char *sep = "";
	unsigned int s;

	pthread_mutex_lock(&m->lock);
	n = (size_t)snprintf(out, size,
			     "{\"requests\": %lu, \"in_flight\": %lu, "
			     "\"max_in_flight\": %lu, \"by_status\": {",
			     m->requests, m->in_flight, m->max_in_flight);
	for (s = 0; s < MAX_STATUS && n < size; s++) {
		if (m->by_status[s] == 0)
			continue;
		n += (size_t)snprintf(out + n, size - n, "%s\"%u\": %lu", sep,
				      s, m->by_status[s]);
		sep = ", ";
	}
	pthread_mutex_unlock(&m->lock);
	if (n < size)
		n += (size_t)snprintf(out + n, size - n, "}}\n");
	return n < size ? n : size - 1;
}

static enum MHD_Result on_control(struct mock *m, struct MHD_Connection *c,
				  const char *method, const char *url)
{
	char msg[MSG_MAX];

	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0) {
		snprintf(msg, sizeof msg, "bad method '%.40s': want POST\n",
			 method);
		return send_answer(m, c, 0, 400, "text/plain", msg,
				   strlen(msg));
	}
	if (strcmp(url, "/stats") == 0) {
		char *json = malloc(STATS_SIZE);
		enum MHD_Result ret;

		if (json == NULL)
			return MHD_NO;
		ret = send_answer(m, c, 0, 200, "application/json", json,
				  stats_json(m, json, STATS_SIZE));
		free(json);
		return ret;
	}
	if (strcmp(url, "/flush") == 0) {
		pthread_mutex_lock(&m->lock);
		log_flush(&m->log);
		pthread_mutex_unlock(&m->lock);
		return send_answer(m, c, 0, 200, "text/plain", "ok",
				   sizeof("ok") - 1);
	}
	snprintf(msg, sizeof msg,
		 "unknown control '%.40s': want POST, GET /stats or /flush\n",
		 url);
	return send_answer(m, c, 0, 400, "text/plain", msg, strlen(msg));
}

/* ---- MHD callbacks ---- */

/* MHD calls this once with the headers, per body chunk, then once more. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *c,
				  const char *url, const char *method,
				  const char *version, const char *upload,
				  size_t *upload_size, void **con_cls)
{
	struct mock *m = cls;
	struct req *r = *con_cls;

	(void)version;
	/* Even a GET waits for the second call: an answer queued with the
	 * headers makes MHD close the connection after it. */
	if (r == NULL) {
		r = calloc(1, sizeof *r);
		if (r == NULL)
			return MHD_NO;
		r->is_post = strcmp(method, MHD_HTTP_METHOD_POST) == 0;
		r->body = r->small;
		r->cap = sizeof r->small;
		if (r->is_post)
			take_slot(m, r);
		*con_cls = r;
		return MHD_YES;
	}
	if (*upload_size > 0) {
		if (req_append(r, upload, *upload_size, m->cfg->max_body) < 0)
			return MHD_NO;
		*upload_size = 0;
		return MHD_YES;
	}
	if (!r->is_post)
		return on_control(m, c, method, url);
	return req_finish(m, c, r);
}

/* Also called when the client went away mid-request: free and release. */
static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct req *r = *con_cls;

	(void)c;
	(void)toe;
	if (r == NULL)
		return;
	release_slot(cls, r);
	if (r->body != r->small)
		free(r->body);
	free(r);
	*con_cls = NULL;
}

/* ---- command line ---- */

static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs(PROG ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\n" PROG ": try '" PROG " --help'\n", stderr);
	return -1;
}

static int opt_num(const char *name, const char *arg, unsigned long long max,
		   unsigned long long *out)
{
	if (parse_num(arg, strlen(arg), max, out) < 0)
		return usage_error("bad %s '%s': want a decimal in 0..%llu",
				   name, arg, max);
	return 0;
}

static int opt_ulong(const char *name, const char *arg, unsigned long *out)
{
	unsigned long long v;

	if (opt_num(name, arg, ULONG_MAX, &v) < 0)
		return -1;
	*out = (unsigned long)v;
	return 0;
}

/* "CODE[:BODY]"; the body stays in argv. */
static int parse_answer(const char *name, const char *s, struct answer *a)
{
	const char *colon = strchr(s, ':');
	size_t n = colon != NULL ? (size_t)(colon - s) : strlen(s);
	unsigned long long code;

	if (parse_num(s, n, MAX_STATUS - 1, &code) < 0 || code < 200)
		return usage_error("bad %s '%s': want CODE[:BODY], CODE in "
				   "200..999",
				   name, s);
	a->status = (unsigned int)code;
	a->body = colon != NULL ? colon + 1 : "";
	a->len = strlen(a->body);
	return 0;
}

/* The rule for id, added if the command line has not named it yet. */
static struct id_rule *rule_get(struct cfg *cfg, unsigned long id)
{
	struct id_rule *p;
	size_t i;

	for (i = 0; i < cfg->nrules; i++)
		if (cfg->rules[i].id == id)
			return &cfg->rules[i];
	p = realloc(cfg->rules, (cfg->nrules + 1) * sizeof *p);
	if (p == NULL)
		return NULL;
	cfg->rules = p;
	p += cfg->nrules++;
	memset(p, 0, sizeof *p);
	p->id = id;
	return p;
}

/* "ID=N" or "ID=CODE[:BODY]", into the rule for ID. */
static int parse_id_opt(struct cfg *cfg, const char *name, const char *s)
{
	const char *eq = strchr(s, '=');
	unsigned long long id, n;
	struct id_rule *rule;

	if (eq == NULL || parse_num(s, (size_t)(eq - s), ID_MAX, &id) < 0)
		return usage_error("bad %s '%s': want ID=..., ID in 0..%llu",
				   name, s, ID_MAX);
	rule = rule_get(cfg, (unsigned long)id);
	if (rule == NULL)
		return usage_error("out of memory");
	if (strcmp(name, "--answer") == 0) {
		rule->has_answer = 1;
		return parse_answer(name, eq + 1, &rule->answer);
	}
	if (opt_num(name, eq + 1, ULONG_MAX, &n) < 0)
		return -1;
	if (strcmp(name, "--fail-first") == 0)
		rule->fail_n = (unsigned long)n;
	else
		rule->drop_n = (unsigned long)n;
	return 0;
}

static int parse_rate(const char *arg, double *out)
{
	char *end;

	errno = 0;
	*out = strtod(arg, &end);
	if (errno != 0 || end == arg || *end != '\0' || !(*out >= 0) ||
	    *out > 1)
		return usage_error("bad --fail-rate '%s': want 0..1", arg);
	return 0;
}

enum {
	OPT_PORT = 256,
	OPT_BIND,
	OPT_PORT_FILE,
	OPT_LOG,
	OPT_LATENCY,
	OPT_CAPACITY,
	OPT_BURST,
	OPT_RETRY_AFTER,
	OPT_FAIL_RATE,
	OPT_SEED,
	OPT_FAIL_FIRST,
	OPT_DROP_FIRST,
	OPT_ANSWER,
	OPT_ZERO_EVERY,
	OPT_STATUS_ALL,
	OPT_MAX_BODY,
	OPT_HEADER_FLOOD,
	OPT_HELP
};

static const struct option long_opts[] = {
	{ "port", required_argument, NULL, OPT_PORT },
	{ "bind", required_argument, NULL, OPT_BIND },
	{ "port-file", required_argument, NULL, OPT_PORT_FILE },
	{ "log", required_argument, NULL, OPT_LOG },
	{ "latency-ms", required_argument, NULL, OPT_LATENCY },
	{ "capacity", required_argument, NULL, OPT_CAPACITY },
	{ "burst-503", required_argument, NULL, OPT_BURST },
	{ "retry-after", required_argument, NULL, OPT_RETRY_AFTER },
	{ "fail-rate", required_argument, NULL, OPT_FAIL_RATE },
	{ "seed", required_argument, NULL, OPT_SEED },
	{ "fail-first", required_argument, NULL, OPT_FAIL_FIRST },
	{ "drop-first", required_argument, NULL, OPT_DROP_FIRST },
	{ "answer", required_argument, NULL, OPT_ANSWER },
	{ "zero-every", required_argument, NULL, OPT_ZERO_EVERY },
	{ "status-all", required_argument, NULL, OPT_STATUS_ALL },
	{ "max-body", required_argument, NULL, OPT_MAX_BODY },
	{ "header-flood", required_argument, NULL, OPT_HEADER_FLOOD },
	{ "help", no_argument, NULL, OPT_HELP },
	{ NULL, 0, NULL, 0 }
};

static int parse_value(struct cfg *cfg, int opt, const char *arg)
{
	unsigned long long v;

	switch (opt) {
	case OPT_PORT:
		if (opt_num("--port", arg, 65535, &v) < 0)
			return -1;
		cfg->port = (unsigned int)v;
		return 0;
	case OPT_BIND:
		if (inet_pton(AF_INET, arg, &cfg->bind) != 1)
			return usage_error("bad --bind '%s': want an IPv4 "
					   "address",
					   arg);
		return 0;
	case OPT_PORT_FILE: cfg->port_file = arg; return 0;
	case OPT_LOG: cfg->log_path = arg; return 0;
	case OPT_LATENCY:
		return opt_ulong("--latency-ms", arg, &cfg->latency_ms);
	case OPT_CAPACITY: return opt_ulong("--capacity", arg, &cfg->capacity);
	case OPT_BURST: return opt_ulong("--burst-503", arg, &cfg->burst);
	default: break;
	}
	return 1; /* not one of these */
}

static int parse_rule(struct cfg *cfg, int opt, const char *arg)
{
	switch (opt) {
	case OPT_RETRY_AFTER:
		if (arg[0] == '\0' || strpbrk(arg, "\r\n") != NULL)
			return usage_error("bad --retry-after '%s'", arg);
		cfg->retry_after = arg;
		return 0;
	case OPT_FAIL_RATE: return parse_rate(arg, &cfg->fail_rate);
	case OPT_SEED: return opt_num("--seed", arg, UINT64_MAX, &cfg->seed);
	case OPT_FAIL_FIRST: return parse_id_opt(cfg, "--fail-first", arg);
	case OPT_DROP_FIRST: return parse_id_opt(cfg, "--drop-first", arg);
	case OPT_ANSWER: return parse_id_opt(cfg, "--answer", arg);
	case OPT_ZERO_EVERY:
		return opt_ulong("--zero-every", arg, &cfg->zero_every);
	case OPT_STATUS_ALL:
		cfg->has_status_all = 1;
		return parse_answer("--status-all", arg, &cfg->status_all);
	case OPT_MAX_BODY:
		return opt_num("--max-body", arg, SIZE_MAX / 4, &cfg->max_body);
	case OPT_HEADER_FLOOD:
		return opt_num("--header-flood", arg, 16u << 20,
			       &cfg->header_flood);
	default: return usage_error("unknown option");
	}
}

static void print_help(void)
{
	fputs("usage: " PROG
	      " [--port N] [--bind ADDR] [--port-file F] [--log F] "
	      "[--latency-ms N]\n"
	      "  [--capacity N] [--burst-503 N] [--retry-after S] "
	      "[--fail-rate P] [--seed N]\n"
	      "  [--fail-first ID=N]... [--drop-first ID=N]... "
	      "[--answer ID=CODE[:BODY]]...\n"
	      "  [--zero-every K] [--status-all CODE[:BODY]] [--max-body N]\n"
	      "  [--header-flood N]\n"
	      "see the comment at the top of tests/mock_api.c\n",
	      stdout);
}

/* Returns 0, 1 after --help, or -1 after a usage error (printed). */
static int parse_args(int argc, char **argv, struct cfg *cfg)
{
	int opt, rc;

	memset(cfg, 0, sizeof *cfg);
	cfg->seed = 1;
	cfg->bind.s_addr = htonl(INADDR_LOOPBACK);
	cfg->max_body = 1024 * 1024;
	while ((opt = getopt_long(argc, argv, "", long_opts, NULL)) != -1) {
		if (opt == OPT_HELP) {
			print_help();
			return 1;
		}
		if (opt == '?')
			return usage_error("bad command line");
		rc = parse_value(cfg, opt, optarg);
		if (rc == 1)
			rc = parse_rule(cfg, opt, optarg);
		if (rc < 0)
			return -1;
	}
	if (optind < argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	if (cfg->nrules > 0)
		qsort(cfg->rules, cfg->nrules, sizeof *cfg->rules, rule_cmp);
	return 0;
}

/* ---- start, run, stop ---- */

static int mock_init(struct mock *m, const struct cfg *cfg)
{
	pthread_condattr_t ca;

	memset(m, 0, sizeof *m);
	m->cfg = cfg;
	m->prng = cfg->seed;
	m->log.fd = -1;
	m->log.path = cfg->log_path;
	pthread_mutex_init(&m->lock, NULL);
	pthread_mutex_init(&m->stop_lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&m->stop_cond, &ca);
	pthread_condattr_destroy(&ca);
	m->seen = calloc(cfg->nrules + 1, sizeof *m->seen);
	if (m->seen == NULL)
		return -1;
	if (cfg->log_path == NULL)
		return 0;
	m->log.buf = malloc(LOG_BUF_SIZE);
	m->log.fd = open(cfg->log_path,
			 O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (m->log.buf == NULL || m->log.fd < 0) {
		fprintf(stderr, PROG ": cannot open '%s': %s\n", cfg->log_path,
			strerror(errno));
		return -1;
	}
	return 0;
}

static void mock_release(struct mock *m)
{
	log_flush(&m->log);
	if (m->log.fd >= 0)
		close(m->log.fd);
	free(m->log.buf);
	free(m->seen);
	pthread_cond_destroy(&m->stop_cond);
	pthread_mutex_destroy(&m->stop_lock);
	pthread_mutex_destroy(&m->lock);
}

/* MHD's own errors go to stderr, except the one every --drop-first makes. */
static void mhd_logger(void *cls, const char *fmt, va_list ap)
{
	static const char drop[] = "Application reported internal error";
	char line[512];

	(void)cls;
	vsnprintf(line, sizeof line, fmt, ap);
	if (strncmp(line, drop, sizeof drop - 1) != 0)
		fprintf(stderr, PROG ": %s", line);
}

/*
 * Without latency, a pool of epoll threads (one per CPU) answers at once.
 * With latency, a thread per connection sleeps without holding others up.
 */
static struct MHD_Daemon *start_daemon(struct mock *m)
{
	struct sockaddr_in sa;
	unsigned int flags = MHD_USE_ERROR_LOG;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	struct MHD_OptionItem pool[] = { { MHD_OPTION_THREAD_POOL_SIZE,
					   ncpu < 1 ? 1 : ncpu, NULL },
					 { MHD_OPTION_END, 0, NULL } };

	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)m->cfg->port);
	sa.sin_addr = m->cfg->bind;
	if (m->cfg->latency_ms != 0) {
		flags |= MHD_USE_THREAD_PER_CONNECTION |
			 MHD_USE_POLL_INTERNAL_THREAD;
		pool[0].option = MHD_OPTION_END;
	} else {
		flags |= MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_TURBO;
	}
	return MHD_start_daemon(flags, (uint16_t)m->cfg->port, NULL, NULL,
				on_request, m, MHD_OPTION_EXTERNAL_LOGGER,
				mhd_logger, NULL, MHD_OPTION_SOCK_ADDR,
				(struct sockaddr *)&sa,
				MHD_OPTION_NOTIFY_COMPLETED, on_completed, m,
				MHD_OPTION_CONNECTION_LIMIT, 4096u,
				/* room for a header flood in each answer */
				MHD_OPTION_CONNECTION_MEMORY_LIMIT,
				(size_t)(m->cfg->header_flood * 2 + 65536),
				MHD_OPTION_ARRAY, pool, MHD_OPTION_END);
}

/* Written aside and renamed, so a reader never sees a partial file. */
static int write_port_file(const char *path, unsigned int port)
{
	char tmp[4096];
	FILE *f;
	int n = snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());

	if (n < 0 || (size_t)n >= sizeof tmp)
		return -1;
	f = fopen(tmp, "w");
	if (f == NULL)
		return -1;
	fprintf(f, "%u\n", port);
	if (fclose(f) != 0 || rename(tmp, path) != 0) {
		unlink(tmp);
		return -1;
	}
	return 0;
}

static unsigned int daemon_port(struct MHD_Daemon *d)
{
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(
		d, MHD_DAEMON_INFO_BIND_PORT);

	return info != NULL ? info->port : 0;
}

/* Wakes latency waits, so that stopping the daemon is quick. */
static void mock_stop(struct mock *m, struct MHD_Daemon *d)
{
	pthread_mutex_lock(&m->stop_lock);
	m->stopping = 1;
	pthread_cond_broadcast(&m->stop_cond);
	pthread_mutex_unlock(&m->stop_lock);
	MHD_stop_daemon(d);
}

int main(int argc, char **argv)
{
	struct cfg cfg;
	struct mock m;
	struct MHD_Daemon *d = NULL;
	sigset_t stop;
	int sig, rc = 1;

	rc = parse_args(argc, argv, &cfg);
	if (rc != 0) {
		free(cfg.rules);
		return rc < 0 ? 2 : 0;
	}
	rc = 1;
	/* Blocked before any thread starts, so only sigwait() sees them. */
	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &stop, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (mock_init(&m, &cfg) < 0)
		goto out;
	d = start_daemon(&m);
	if (d == NULL) {
		fprintf(stderr, PROG ": cannot listen on 127.0.0.1:%u\n",
			cfg.port);
		goto out;
	}
	if (cfg.port_file != NULL &&
	    write_port_file(cfg.port_file, daemon_port(d)) < 0) {
		fprintf(stderr, PROG ": cannot write '%s': %s\n", cfg.port_file,
			strerror(errno));
		goto out;
	}
	while (sigwait(&stop, &sig) != 0)
		;
	rc = 0;
out:
	if (d != NULL)
		mock_stop(&m, d);
	mock_release(&m);
	free(cfg.rules);
	return rc;
}

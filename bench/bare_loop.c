/*
 * bare_loop: the ceiling sender is measured against.  It POSTs pre-built
 * form bodies through libcurl multi with INFLIGHT requests in flight over
 * keep-alive connections: no XML, no JSON, no database, no retries, no
 * window.  Each transfer is set up like sender's (same headers, same
 * options), so that what is left between the two is sender's own work.
 *
 *   bare_loop URL BODY_FILE REQUESTS INFLIGHT
 *
 * BODY_FILE holds one body as sender sends it ("id=1&message=...");
 * request i gets that body with its id replaced by i.  All bodies are
 * built before the first request.  On stdout, one line:
 *
 *   requests=N seconds=S rate=R ok=A busy=B other=C
 *
 * where rate counts every answer, ok the 200s, busy the 503s and 429s,
 * other the rest (failed transfers included).  Exit 0, or 1 on an error.
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BODY_MAX 65536

struct bodies {
	char *arena; /* every body, back to back */
	size_t *off; /* start of body i in arena; off[n] is the end */
	unsigned long n;
};

struct counts {
	unsigned long done, ok, busy, other;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Answers are read and dropped: the status is all the loop looks at. */
static size_t discard(char *data, size_t size, size_t n, void *arg)
{
	(void)data;
	(void)arg;
	return size * n;
}

static int read_template(const char *path, char *out, size_t size, size_t *len)
{
	FILE *f = fopen(path, "rb");
	size_t n;

	if (f == NULL) {
		perror(path);
		return -1;
	}
	n = fread(out, 1, size - 1, f);
	fclose(f);
	while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r'))
		n--;
	out[n] = '\0';
	if (strncmp(out, "id=", 3) != 0 || strchr(out, '&') == NULL) {
		fprintf(stderr,
			"bare_loop: '%s' is not a body like "
			"'id=1&message=...'\n",
			path);
		return -1;
	}
	*len = n;
	return 0;
}

/* Request i (from 1) gets the template with "id=i" in front. */
static int build_bodies(struct bodies *b, const char *tmpl, unsigned long n)
{
	const char *rest = strchr(tmpl, '&');
	size_t rest_len = strlen(rest), per = rest_len + 16, pos = 0;
	unsigned long i;

	b->n = n;
	b->arena = malloc(n * per);
	b->off = malloc((n + 1) * sizeof(*b->off));
	if (b->arena == NULL || b->off == NULL)
		return -1;
	for (i = 0; i < n; i++) {
		b->off[i] = pos;
		pos += (size_t)snprintf(b->arena + pos, per, "id=%lu%s", i + 1,
					rest);
	}
	b->off[n] = pos;
	return 0;
}

static CURL *new_easy(CURLU *url, struct curl_slist *headers)
{
	CURL *e = curl_easy_init();

	if (e == NULL)
		return NULL;
	curl_easy_setopt(e, CURLOPT_CURLU, url);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 30000L);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "bare_loop");
	return e;
}

static void start(CURLM *m, CURL *e, const struct bodies *b, unsigned long i)
{
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, b->arena + b->off[i]);
	curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
			 (curl_off_t)(b->off[i + 1] - b->off[i]));
	curl_multi_add_handle(m, e);
}

static void count(struct counts *c, CURLMsg *msg)
{
	long status = 0;

	c->done++;
	if (msg->data.result == CURLE_OK)
		curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE,
				  &status);
	if (status == 200)
		c->ok++;
	else if (status == 503 || status == 429)
		c->busy++;
	else
		c->other++;
}

/* Runs every request to completion; the rest of main is set-up. */
static void run(CURLM *m, CURL **easy, unsigned long inflight,
		const struct bodies *b, struct counts *c)
{
	unsigned long next = 0, i;
	int running = 1, left;
	CURLMsg *msg;

	for (i = 0; i < inflight && next < b->n; i++)
		start(m, easy[i], b, next++);
	while (c->done < b->n) {
		curl_multi_perform(m, &running);
		while ((msg = curl_multi_info_read(m, &left)) != NULL) {
			if (msg->msg != CURLMSG_DONE)
				continue;
			count(c, msg);
			curl_multi_remove_handle(m, msg->easy_handle);
			if (next < b->n)
				start(m, msg->easy_handle, b, next++);
		}
		if (c->done < b->n)
			curl_multi_poll(m, NULL, 0, 1000, NULL);
	}
}

int main(int argc, char **argv)
{
	static char tmpl[BODY_MAX];
	struct bodies b = { 0 };
	struct counts c = { 0 };
	struct curl_slist *headers = NULL;
	CURLU *url = NULL;
	CURLM *m = NULL;
	CURL **easy = NULL;
	unsigned long n, inflight, i;
	size_t len;
	double t0, t;
	int rc = 1;

	if (argc != 5 || (n = strtoul(argv[3], NULL, 10)) == 0 ||
	    (inflight = strtoul(argv[4], NULL, 10)) == 0) {
		fprintf(stderr, "usage: bare_loop URL BODY_FILE REQUESTS "
				"INFLIGHT\n");
		return 2;
	}
	if (read_template(argv[2], tmpl, sizeof tmpl, &len) < 0)
		return 1;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	headers = curl_slist_append(NULL, "Expect:");
	/* parsed once, as sender does, not again for every request */
	url = curl_url();
	if (url == NULL ||
	    curl_url_set(url, CURLUPART_URL, argv[1], 0) != CURLUE_OK) {
		fprintf(stderr, "bare_loop: '%s' does not parse\n", argv[1]);
		curl_url_cleanup(url);
		curl_slist_free_all(headers);
		curl_global_cleanup();
		return 2;
	}
	m = curl_multi_init();
	easy = calloc(inflight, sizeof(*easy));
	if (headers == NULL || m == NULL || easy == NULL ||
	    build_bodies(&b, tmpl, n) < 0)
		goto out;
	curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, (long)inflight);
	for (i = 0; i < inflight; i++)
		if ((easy[i] = new_easy(url, headers)) == NULL)
			goto out;
	t0 = now_s();
	run(m, easy, inflight, &b, &c);
	t = now_s() - t0;
	printf("requests=%lu seconds=%.3f rate=%.0f ok=%lu busy=%lu "
	       "other=%lu\n",
	       c.done, t, (double)c.done / t, c.ok, c.busy, c.other);
	rc = 0;
out:
	if (rc != 0)
		fprintf(stderr, "bare_loop: out of memory\n");
	for (i = 0; easy != NULL && i < inflight; i++)
		if (easy[i] != NULL)
			curl_easy_cleanup(easy[i]);
	free(easy);
	if (m != NULL)
		curl_multi_cleanup(m);
	curl_slist_free_all(headers);
	curl_url_cleanup(url);
	free(b.arena);
	free(b.off);
	curl_global_cleanup();
	return rc;
}

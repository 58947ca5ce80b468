#include "progress.h"

#include "buf.h"
#include "clock.h"

#include <string.h>
#include <sys/ioctl.h>

void progress_init(struct progress *p, FILE *out, int enabled)
{
	memset(p, 0, sizeof(*p));
	p->out = out;
	p->enabled = enabled;
	p->start_ms = clock_ms();
}

void progress_format(const struct progress_state *s, double rate,
		     struct buf *out)
{
	double share, left;
	long secs;

	if (s->stopping) {
		/* an ETA would only grow: say what the wait is for */
		buf_addf(out, "stopping: %lu in flight, %lu done", s->in_flight,
			 s->done);
		return;
	}
	buf_addf(out, "%lu read, %lu done, %lu in flight, %lu deferred",
		 s->read, s->done, s->in_flight, s->deferred);
	if (rate >= 0)
		buf_addf(out, ", %.0f/s", rate);
	if (s->bytes_total <= 0)
		return;
	share = (double)s->bytes_read / (double)s->bytes_total;
	buf_addf(out, ", %.0f%%", share * 100);
	/* the rest of the input at the speed so far */
	if (rate > 0 && share > 0.01 && share < 1 && s->done > 0) {
		left = (double)s->done * (1 - share) / share / rate;
		secs = (long)left;
		buf_addf(out, ", ETA %ld:%02ld:%02ld", secs / 3600,
			 secs / 60 % 60, secs % 60);
	}
}

/* Letters per second over the samples kept (the last few seconds). */
static double rate(struct progress *p, long now, unsigned long done)
{
	unsigned i;

	if (p->nsamples == 0 || now - p->sample_ms[p->nsamples - 1] >= 1000) {
		if (p->nsamples == PROGRESS_SAMPLES) {
			for (i = 1; i < PROGRESS_SAMPLES; i++) {
				p->sample_ms[i - 1] = p->sample_ms[i];
				p->sample_done[i - 1] = p->sample_done[i];
			}
			p->nsamples--;
		}
		p->sample_ms[p->nsamples] = now;
		p->sample_done[p->nsamples] = done;
		p->nsamples++;
	}
	if (p->nsamples < 2 || now == p->sample_ms[0])
		return -1;
	return (double)(done - p->sample_done[0]) * 1000.0 /
	       (double)(now - p->sample_ms[0]);
}

#define PREFIX "sender: "

/*
 * Bytes of the line after "sender: ": one column less than the terminal
 * (the cursor then never sits past the last column, where some terminals
 * wrap), at most PROGRESS_LINE_MAX; that when it is not a terminal.
 */
static size_t room(const struct progress *p)
{
	struct winsize ws;
	size_t cols;

	if (ioctl(fileno(p->out), TIOCGWINSZ, &ws) < 0 || ws.ws_col == 0)
		return PROGRESS_LINE_MAX;
	cols = (size_t)ws.ws_col - 1;
	if (cols <= strlen(PREFIX))
		return 0;
	cols -= strlen(PREFIX);
	return cols < PROGRESS_LINE_MAX ? cols : PROGRESS_LINE_MAX;
}

void progress_update(struct progress *p, const struct progress_state *s)
{
	struct buf line;
	long now, t;
	size_t cap;
	int resized;

	if (!p->enabled)
		return;
	now = clock_ms();
	resized = p->resized && *p->resized != p->resized_seen;
	if (p->shown && now - p->last_ms < 250 && !resized)
		return;
	if (resized)
		p->resized_seen = *p->resized;
	p->last_ms = now;
	t = (now - p->start_ms) / 1000;
	cap = room(p);
	/* buf's cap 0 means none: a terminal too narrow gets the bare prefix */
	buf_init(&line, cap ? cap : 1);
	if (cap) {
		buf_addf(&line, "%ld:%02ld:%02ld ", t / 3600, t / 60 % 60,
			 t % 60);
		progress_format(s, rate(p, now, s->done), &line);
	}
	fprintf(p->out, "\r\033[K%.*s%s", (int)(cap ? strlen(PREFIX) : 0),
		PREFIX, buf_str(&line));
	buf_release(&line);
	fflush(p->out);
	p->shown = 1;
}

void progress_clear(struct progress *p)
{
	if (p == NULL || !p->shown)
		return;
	fputs("\r\033[K", p->out);
	fflush(p->out);
	p->shown = 0;
}

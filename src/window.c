#include "window.h"

void window_init(struct window *w, unsigned ceiling)
{
	w->ceiling = ceiling ? ceiling : 1;
	w->size = w->ceiling;
	/*
	 * 0.7 rather than TCP Reno's 0.5, as CUBIC does: a capacity-limited
	 * API is then used at about 85% or more between decreases.
	 */
	w->decrease = 0.7;
	w->sent = 0;
	w->recover = 0;
}

unsigned window_limit(const struct window *w)
{
	unsigned n = (unsigned)w->size;

	return n ? n : 1;
}

unsigned long window_sent(struct window *w)
{
	return ++w->sent;
}

void window_success(struct window *w)
{
	w->size += 1.0 / w->size;
	if (w->size > w->ceiling)
		w->size = w->ceiling;
}

void window_busy(struct window *w, unsigned long seq)
{
	/* answers to requests sent before the last decrease are old news */
	if (seq <= w->recover)
		return;
	w->size *= w->decrease;
	if (w->size < 1.0)
		w->size = 1.0;
	w->recover = w->sent;
}

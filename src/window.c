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
	w->overload = 0;
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
	double step = 1.0; /* more requests a round trip */

	if (w->overload > 0 && w->size >= w->overload - 1.0)
		step /= WINDOW_PROBE;
	else if (w->overload > 0 && (w->overload - w->size) / 2 > step)
		step = (w->overload - w->size) / 2;
	w->size += step / w->size; /* a round trip is about size answers */
	if (w->overload > 0 && w->size > w->overload + 1.0)
		w->overload =
			0; /* past it without trouble: the API takes more */
	if (w->size > w->ceiling)
		w->size = w->ceiling;
}

void window_busy(struct window *w, unsigned long seq)
{
	/* answers to requests sent before the last decrease are old news */
	if (seq <= w->recover)
		return;
	w->overload = w->size;
	w->size *= w->decrease;
	if (w->size < 1.0)
		w->size = 1.0;
	w->recover = w->sent;
}

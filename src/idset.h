/*
 * idset: the set of letter ids seen in this run, to skip an id that comes
 * again.  Ids are 32-bit; the set is split by the high 16 bits into
 * blocks, each a sorted array of low halves while small and a 8 KiB bitmap
 * once dense (the idea of roaring bitmaps).  A million sequential ids take
 * about 128 KiB, a million random ones about 2 MiB.
 */
#ifndef SENDER_IDSET_H
#define SENDER_IDSET_H

#include <stdint.h>

struct idset_block;

struct idset {
	struct idset_block **blocks; /* 65536 pointers, allocated lazily */
};

void idset_init(struct idset *s);

/* Add id; returns 1 if it was new, 0 if already there, -1 on no memory. */
int idset_add(struct idset *s, uint32_t id);

void idset_release(struct idset *s);

#endif

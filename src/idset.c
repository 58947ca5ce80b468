#include "idset.h"

#include <stdlib.h>
#include <string.h>

#define BLOCKS	  65536
#define ARRAY_MAX 4096 /* past this many ids a bitmap is smaller */

struct idset_block {
	uint32_t count;
	uint32_t alloc;	 /* array entries allocated; 0 once a bitmap */
	uint16_t *array; /* sorted, while alloc > 0 */
	uint64_t *bits;	 /* 65536 bits, once dense */
};

void idset_init(struct idset *s)
{
	s->blocks = NULL;
}

static int to_bitmap(struct idset_block *b)
{
	uint32_t i;

	b->bits = calloc(BLOCKS / 64, sizeof(uint64_t));
	if (b->bits == NULL)
		return -1;
	for (i = 0; i < b->count; i++)
		b->bits[b->array[i] / 64] |= 1ull << (b->array[i] % 64);
	free(b->array);
	b->array = NULL;
	b->alloc = 0;
	return 0;
}

static int array_add(struct idset_block *b, uint16_t low)
{
	uint32_t lo = 0, hi = b->count;

	while (lo < hi) {
		uint32_t mid = (lo + hi) / 2;

		if (b->array[mid] == low)
			return 0;
		if (b->array[mid] < low)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (b->count == b->alloc) {
		uint32_t alloc = b->alloc ? b->alloc * 2 : 4;
		uint16_t *array = realloc(b->array, alloc * sizeof(*array));

		if (array == NULL)
			return -1;
		b->array = array;
		b->alloc = alloc;
	}
	memmove(b->array + lo + 1, b->array + lo,
		(b->count - lo) * sizeof(*b->array));
	b->array[lo] = low;
	b->count++;
	return 1;
}

int idset_add(struct idset *s, uint32_t id)
{
	uint16_t high = (uint16_t)(id >> 16), low = (uint16_t)id;
	struct idset_block *b;
	uint64_t mask = 1ull << (low % 64);

	if (s->blocks == NULL) {
		s->blocks = calloc(BLOCKS, sizeof(*s->blocks));
		if (s->blocks == NULL)
			return -1;
	}
	b = s->blocks[high];
	if (b == NULL) {
		b = calloc(1, sizeof(*b));
		if (b == NULL)
			return -1;
		s->blocks[high] = b;
	}
	if (b->bits) {
		if (b->bits[low / 64] & mask)
			return 0;
		b->bits[low / 64] |= mask;
		b->count++;
		return 1;
	}
	if (b->count >= ARRAY_MAX && to_bitmap(b) < 0)
		return -1;
	if (b->bits)
		return idset_add(s, id);
	return array_add(b, low);
}

void idset_release(struct idset *s)
{
	size_t i;

	if (s->blocks == NULL)
		return;
	for (i = 0; i < BLOCKS; i++) {
		if (s->blocks[i] == NULL)
			continue;
		free(s->blocks[i]->array);
		free(s->blocks[i]->bits);
		free(s->blocks[i]);
	}
	free(s->blocks);
	s->blocks = NULL;
}

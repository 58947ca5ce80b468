/*
 * idset: which ids were seen in this run, in sparse and dense blocks.
 */
#include "harness.h"
#include "idset.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void test_edges(void)
{
	struct idset s;

	idset_init(&s);
	CHECK_INT_EQ(idset_add(&s, 0), 1);
	CHECK_INT_EQ(idset_add(&s, 0), 0);
	CHECK_INT_EQ(idset_add(&s, 4294967295u), 1);
	CHECK_INT_EQ(idset_add(&s, 4294967295u), 0);
	/* same low half, other blocks; same block, other low halves */
	CHECK_INT_EQ(idset_add(&s, 65536), 1);
	CHECK_INT_EQ(idset_add(&s, 4294901760u), 1);
	CHECK_INT_EQ(idset_add(&s, 65535), 1);
	CHECK_INT_EQ(idset_add(&s, 4294967294u), 1);
	CHECK_INT_EQ(idset_add(&s, 65536), 0);
	CHECK_INT_EQ(idset_add(&s, 65535), 0);
	CHECK_INT_EQ(idset_add(&s, 0), 0);
	idset_release(&s);
	idset_release(&s); /* twice is harmless */
	idset_init(&s);
	CHECK_INT_EQ(idset_add(&s, 0), 1); /* empty again after release */
	idset_release(&s);
}

/* One block filled past 4096 ids (the array turns into a bitmap). */
static void test_dense_block(void)
{
	struct idset s;
	uint32_t base = 7u << 16, i;
	unsigned bad = 0;

	idset_init(&s);
	/* descending, so every insert goes to the front of the array */
	for (i = 10000; i-- > 0;)
		bad += idset_add(&s, base + i * 3) != 1;
	CHECK_INT_EQ(bad, 0);
	for (i = 0; i < 10000; i++) {
		bad += idset_add(&s, base + i * 3) != 0;
		bad += idset_add(&s, base + i * 3 + 1) != 1;
	}
	CHECK_INT_EQ(bad, 0);
	/* the neighbours were not touched */
	CHECK_INT_EQ(idset_add(&s, base - 1), 1);
	CHECK_INT_EQ(idset_add(&s, base + 65536), 1);
	idset_release(&s);
}

/* Exactly at the switch: ids 4095, 4096, 4097 of a block. */
static void test_array_to_bitmap_boundary(void)
{
	struct idset s;
	uint32_t i;
	unsigned bad = 0;

	idset_init(&s);
	for (i = 0; i < 4096; i++)
		bad += idset_add(&s, 2 * i) != 1;
	CHECK_INT_EQ(bad, 0);
	/* a duplicate at the switch, then the 4097th */
	CHECK_INT_EQ(idset_add(&s, 0), 0);
	CHECK_INT_EQ(idset_add(&s, 2 * 4095), 0);
	CHECK_INT_EQ(idset_add(&s, 1), 1);
	CHECK_INT_EQ(idset_add(&s, 1), 0);
	for (i = 0; i < 4096; i++)
		bad += idset_add(&s, 2 * i) != 0;
	CHECK_INT_EQ(bad, 0);
	idset_release(&s);
}

/* Random ids in a few blocks, against a plain byte per id. */
static void test_random_against_reference(void)
{
	enum { BLOCKS = 4, RANGE = BLOCKS * 65536 };
	static const uint32_t high[BLOCKS] = { 0, 1, 40000, 65535 };
	unsigned char *seen = calloc(RANGE, 1);
	unsigned long long x = 88172645463325252ull;
	unsigned bad = 0, added = 0, i;
	struct idset s;

	if (!CHECK(seen != NULL))
		return;
	idset_init(&s);
	for (i = 0; i < 300000; i++) {
		uint32_t r, block, low, id;
		int got;

		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		r = (uint32_t)(x >> 16);
		block = r % BLOCKS;
		/* block 0 sparse, the others denser and denser */
		low = (uint32_t)(x >> 40) % (block == 0 ? 65536 : 8192 * block);
		id = high[block] << 16 | low;
		got = idset_add(&s, id);
		bad += got != (seen[block * 65536 + low] ? 0 : 1);
		added += got == 1;
		seen[block * 65536 + low] = 1;
	}
	CHECK_INT_EQ(bad, 0);
	for (i = 0; i < RANGE; i++)
		bad += seen[i] &&
		       idset_add(&s, high[i / 65536] << 16 | (i % 65536)) != 0;
	CHECK_INT_EQ(bad, 0);
	CHECK(added > 20000);
	idset_release(&s);
	free(seen);
}

/* A million sequential ids, each new once, then each a duplicate. */
static void test_sequential_million(void)
{
	struct idset s;
	uint32_t i;
	unsigned bad = 0;

	idset_init(&s);
	for (i = 1; i <= 1000000; i++)
		bad += idset_add(&s, i) != 1;
	for (i = 1; i <= 1000000; i++)
		bad += idset_add(&s, i) != 0;
	CHECK_INT_EQ(bad, 0);
	idset_release(&s);
}

static const struct h_test tests[] = {
	TEST(test_edges),
	TEST(test_dense_block),
	TEST(test_array_to_bitmap_boundary),
	TEST(test_random_against_reference),
	TEST(test_sequential_million),
	{ NULL, NULL },
};

int main(int argc, char **argv)
{
	return h_main(argc, argv, tests);
}

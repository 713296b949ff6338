/*
 * The cache facility: hits and misses, the eviction bound and LRU order,
 * validity windows, one drop per stored value, nested bypasses, and many
 * threads at once on one table.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cloister/core.h"
#include "cloister/memo.h"
#include "test.h"

/* Reference-counted test values; freed counts every value released for good. */
struct val {
	int id;
	_Atomic int refs;
};

static _Atomic long made, freed;

static struct val *val_new(int id)
{
	struct val *v = calloc(1, sizeof(*v));

	if (!v)
		abort();
	v->id = id;
	v->refs = 1;
	atomic_fetch_add(&made, 1);
	return v;
}

static void val_put(struct val *v)
{
	if (v && atomic_fetch_sub(&v->refs, 1) == 1) {
		atomic_fetch_add(&freed, 1);
		free(v);
	}
}

static int val_ref(void *value, void *out)
{
	struct val *v = value;

	atomic_fetch_add(&v->refs, 1);
	*(struct val **)out = v;
	return 1;
}

static void val_drop(void *value)
{
	val_put(value);
}

static struct cl_memo_key key_of(int i)
{
	struct cl_memo_key k;

	if (cl_memo_key(&k, "test", &i, sizeof(i)) != CL_OK)
		abort();
	return k;
}

/* The id found under key i at time at, or -1. */
static int lookup(struct cl_memo *m, int i, int64_t at)
{
	struct cl_memo_key k = key_of(i);
	struct val *v = NULL;
	int id = -1;

	if (cl_memo_get(m, &k, at, &v)) {
		id = v->id;
		val_put(v);
	}
	return id;
}

static void store(struct cl_memo *m, int i, int id, int64_t nb, int64_t na)
{
	struct cl_memo_key k = key_of(i);

	cl_memo_put(m, &k, val_new(id), nb, na);
}

static void store_always(struct cl_memo *m, int i, int id)
{
	store(m, i, id, CL_MEMO_ALWAYS_FROM, CL_MEMO_ALWAYS_UNTIL);
}

static void test_keys(void)
{
	struct cl_memo_key a, b, c;
	const struct cl_memo_part ab[] = {{"a", 1}, {"b", 1}};

	CHECK_EQ_INT(cl_memo_key(&a, "kind", "ab", 2), CL_OK);
	CHECK_EQ_INT(cl_memo_key_parts(&b, "kind", ab, 2), CL_OK);
	CHECK(memcmp(a.b, b.b, 32) == 0);
	/* the kind tag separates keys over the same bytes */
	CHECK_EQ_INT(cl_memo_key(&c, "other", "ab", 2), CL_OK);
	CHECK(memcmp(a.b, c.b, 32) != 0);
}

static void test_hit_miss(void)
{
	static struct cl_memo m = CL_MEMO_INIT("t", 8, CL_MEMO_DECODED, val_ref, val_drop);
	long f0 = freed;

	CHECK_EQ_INT(lookup(&m, 1, 0), -1);
	store_always(&m, 1, 100);
	CHECK_EQ_INT(lookup(&m, 1, 0), 100);
	CHECK_EQ_INT(lookup(&m, 2, 0), -1);
	CHECK_EQ_INT(cl_memo_count(&m), 1);
	/* a hit is the caller's own reference: clearing does not free it */
	{
		struct cl_memo_key k = key_of(1);
		struct val *v = NULL;

		CHECK(cl_memo_get(&m, &k, 0, &v));
		cl_memo_clear(&m);
		CHECK_EQ_INT(freed - f0, 0);
		CHECK_EQ_INT(v->id, 100);
		val_put(v);
		CHECK_EQ_INT(freed - f0, 1);
	}
	CHECK_EQ_INT(lookup(&m, 1, 0), -1);
	CHECK_EQ_INT(cl_memo_count(&m), 0);
}

static void test_eviction(void)
{
	static struct cl_memo m = CL_MEMO_INIT("t", 4, CL_MEMO_DECODED, val_ref, val_drop);
	long f0 = freed;

	for (int i = 0; i < 4; i++)
		store_always(&m, i, i);
	CHECK_EQ_INT(cl_memo_count(&m), 4);
	CHECK_EQ_INT(freed - f0, 0);
	/* 0 used recently: 1 is the least recently used and goes first */
	CHECK_EQ_INT(lookup(&m, 0, 0), 0);
	store_always(&m, 4, 4);
	CHECK_EQ_INT(cl_memo_count(&m), 4);
	CHECK_EQ_INT(freed - f0, 1);
	CHECK_EQ_INT(lookup(&m, 1, 0), -1);
	CHECK_EQ_INT(lookup(&m, 0, 0), 0);
	for (int i = 5; i < 40; i++)
		store_always(&m, i, i);
	CHECK_EQ_INT(cl_memo_count(&m), 4);
	CHECK_EQ_INT(freed - f0, 36);
	for (int i = 36; i < 40; i++)
		CHECK_EQ_INT(lookup(&m, i, 0), i);
	cl_memo_clear(&m);
	CHECK_EQ_INT(freed - f0, 40);
}

static void test_window(void)
{
	static struct cl_memo m = CL_MEMO_INIT("t", 4, CL_MEMO_VERIFIED, val_ref, val_drop);
	long f0 = freed;

	store(&m, 1, 7, 100, 200);
	CHECK_EQ_INT(lookup(&m, 1, 99), -1);
	CHECK_EQ_INT(lookup(&m, 1, 100), 7);
	CHECK_EQ_INT(lookup(&m, 1, 150), 7);
	CHECK_EQ_INT(lookup(&m, 1, 200), 7);
	CHECK_EQ_INT(lookup(&m, 1, 201), -1);
	CHECK_EQ_INT(lookup(&m, 1, INT64_MAX), -1);
	CHECK_EQ_INT(lookup(&m, 1, INT64_MIN), -1);
	/* an empty window is never stored, and its value is dropped at once */
	store(&m, 2, 8, 200, 100);
	CHECK_EQ_INT(freed - f0, 1);
	CHECK_EQ_INT(lookup(&m, 2, 150), -1);
	cl_memo_clear(&m);
	CHECK_EQ_INT(freed - f0, 2);
}

static int drops;

static void count_drop(void *value)
{
	(void)value;
	drops++;
}

static void test_drop_once(void)
{
	static struct cl_memo m = CL_MEMO_INIT("t", 2, CL_MEMO_DECODED, NULL, count_drop);
	struct cl_memo_key k1 = key_of(1), k2 = key_of(2), k3 = key_of(3);
	static int a, b, c, d;

	drops = 0;
	cl_memo_put(&m, &k1, &a, CL_MEMO_ALWAYS_FROM, CL_MEMO_ALWAYS_UNTIL);
	cl_memo_put(&m, &k1, &b, CL_MEMO_ALWAYS_FROM, CL_MEMO_ALWAYS_UNTIL); /* replace */
	CHECK_EQ_INT(drops, 1);
	CHECK_EQ_INT(cl_memo_count(&m), 1);
	CHECK(cl_memo_get(&m, &k1, 0, NULL)); /* no ref: a verdict */
	cl_memo_put(&m, &k2, &c, CL_MEMO_ALWAYS_FROM, CL_MEMO_ALWAYS_UNTIL);
	cl_memo_put(&m, &k3, &d, CL_MEMO_ALWAYS_FROM, CL_MEMO_ALWAYS_UNTIL); /* evicts one */
	CHECK_EQ_INT(drops, 2);
	cl_memo_clear(&m);
	CHECK_EQ_INT(drops, 4);
	cl_memo_clear(&m);
	CHECK_EQ_INT(drops, 4);
}

static void test_bypass_nesting(void)
{
	static struct cl_memo v = CL_MEMO_INIT("t", 64, CL_MEMO_VERIFIED, val_ref, val_drop);
	static struct cl_memo d = CL_MEMO_INIT("t", 8, CL_MEMO_DECODED, val_ref, val_drop);
	long f0 = freed;

	CHECK(!cl_cache_bypassed());
	cl_cache_bypass(0); /* unbalanced: no effect */
	CHECK(!cl_cache_bypassed());
	store_always(&v, 1, 1);
	store_always(&d, 1, 1);

	cl_cache_bypass(1);
	CHECK(cl_cache_bypassed());
	CHECK_EQ_INT(lookup(&v, 1, 0), -1); /* checked before the bypass */
	CHECK_EQ_INT(lookup(&d, 1, 0), 1);  /* decoding is shared */
	store_always(&v, 2, 2);
	CHECK_EQ_INT(lookup(&v, 2, 0), 2); /* checked within this bypass */

	cl_cache_bypass(1);
	CHECK_EQ_INT(lookup(&v, 1, 0), -1);
	CHECK_EQ_INT(lookup(&v, 2, 0), -1); /* the inner bypass checks afresh */
	store_always(&v, 3, 3);
	CHECK_EQ_INT(lookup(&v, 3, 0), 3);
	cl_cache_bypass(0);

	CHECK(cl_cache_bypassed());
	CHECK_EQ_INT(lookup(&v, 2, 0), 2); /* the outer bypass is back */
	CHECK_EQ_INT(lookup(&v, 3, 0), -1);
	CHECK_EQ_INT(freed - f0, 1); /* the inner bypass's entry is gone */
	cl_cache_bypass(0);

	CHECK(!cl_cache_bypassed());
	CHECK_EQ_INT(lookup(&v, 1, 0), 1);
	CHECK_EQ_INT(lookup(&v, 2, 0), -1);
	CHECK_EQ_INT(freed - f0, 2);
	CHECK_EQ_INT(cl_memo_count(&v), 1);

	/* deeper than the saved levels: still balanced, never a stale hit */
	for (int i = 0; i < 40; i++) {
		cl_cache_bypass(1);
		CHECK_EQ_INT(lookup(&v, 1, 0), -1);
		store_always(&v, 100 + i, i);
	}
	for (int i = 0; i < 40; i++) {
		int got = lookup(&v, 100 + 39 - i, 0);

		CHECK(cl_cache_bypassed());
		CHECK(got == -1 || got == 39 - i);
		CHECK_EQ_INT(lookup(&v, 1, 0), -1);
		cl_cache_bypass(0);
	}
	CHECK(!cl_cache_bypassed());
	CHECK_EQ_INT(lookup(&v, 1, 0), 1);
	CHECK_EQ_INT(cl_memo_count(&v), 1);
	cl_memo_clear(&v);
	cl_memo_clear(&d);
	CHECK_EQ_INT(made - freed, 0);
}

/* ------------------------------------------------------------- threads */

#define THREADS 32
#define ROUNDS	4000

static struct cl_memo shared = CL_MEMO_INIT("t", 16, CL_MEMO_VERIFIED, val_ref, val_drop);
static _Atomic int wrong;

static void *hammer(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg;

	for (int r = 0; r < ROUNDS; r++) {
		int i = (int)(rand_r(&seed) % 48), bypass = rand_r(&seed) % 8 == 0;
		int got = 0;

		if (bypass)
			cl_cache_bypass(1);
		got = lookup(&shared, i, 150);
		if (got != -1 && got != i)
			atomic_fetch_add(&wrong, 1);
		if (got == -1)
			store(&shared, i, i, 100, 200);
		if (rand_r(&seed) % 512 == 0)
			cl_memo_clear(&shared);
		if (bypass)
			cl_cache_bypass(0);
	}
	return NULL;
}

static void test_threads(void)
{
	pthread_t t[THREADS];

	for (uintptr_t i = 0; i < THREADS; i++)
		CHECK_EQ_INT(pthread_create(&t[i], NULL, hammer, (void *)(i + 1)), 0);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	CHECK_EQ_INT(wrong, 0);
	CHECK(cl_memo_count(&shared) <= 16);
	cl_memo_clear(&shared);
	CHECK_EQ_INT(cl_memo_count(&shared), 0);
	CHECK_EQ_INT(made - freed, 0); /* every value dropped exactly once, every ref released */
}

int main(void)
{
	RUN(test_keys);
	RUN(test_hit_miss);
	RUN(test_eviction);
	RUN(test_window);
	RUN(test_drop_once);
	RUN(test_bypass_nesting);
	RUN(test_threads);
	return test_done("cache_test");
}

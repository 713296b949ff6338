/*
 * The one in-memory cache facility. Everything cloister memoises in the
 * process (decoded certificates and keys, parsed collateral, signature
 * verdicts, verified chains) is a struct cl_memo: a bounded table of values
 * keyed by a content hash, each value with a validity window, evicted least
 * recently used, guarded by its own lock.
 *
 * Keys are SHA-256 over a kind tag and the bytes the value was derived from
 * (cl_memo_key), so a hit is a value made from exactly those bytes.
 *
 * A value is owned by the cache once put: `drop` releases it exactly once,
 * when it is evicted, replaced, cleared or purged, never under the lock. A
 * hit hands the caller its own reference or copy through `ref`, made under the
 * lock, so a value can be evicted while callers still hold what they got.
 *
 * Windows: an entry answers only lookups whose time lies in [not_before,
 * not_after]; a verdict that depended on time is stored with the window in
 * which it holds, never beyond it. CL_MEMO_ALWAYS_FROM/UNTIL for values that
 * follow from the bytes alone.
 *
 * Kinds and cl_cache_bypass(): a CL_MEMO_DECODED cache holds values that
 * prove nothing (a decoded certificate, a parsed key) and serves them under a
 * bypass too. A CL_MEMO_VERIFIED cache holds outcomes of checks: each entry
 * belongs to the bypass epoch it was stored in (0 outside any bypass), answers
 * only lookups from that epoch, and entries of a bypass are purged when it
 * ends. A bypassed verification thus checks everything once, yet shares a
 * check between the chains of that one verification.
 */
#ifndef CLOISTER_MEMO_H
#define CLOISTER_MEMO_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "cloister/core.h"

#define CL_MEMO_MAX_CAP	     256
#define CL_MEMO_ALWAYS_FROM  INT64_MIN
#define CL_MEMO_ALWAYS_UNTIL INT64_MAX

enum cl_memo_kind {
	CL_MEMO_DECODED = 1, /* decoding only: shared across bypass epochs */
	CL_MEMO_VERIFIED,    /* check outcomes: bound to the bypass epoch */
};

struct cl_memo_key {
	uint8_t b[32];
};

struct cl_memo_entry; /* private to src/core/memo.c */

struct cl_memo {
	const char *name;
	unsigned cap; /* entries at most, 1..CL_MEMO_MAX_CAP */
	enum cl_memo_kind kind;
	/* Give the caller its own reference or copy of value in *out; 0 on failure
	 * (the lookup then misses). NULL: a hit returns nothing (verdicts). */
	int (*ref)(void *value, void *out);
	/* Release the cache's value; NULL when values own nothing. */
	void (*drop)(void *value);
	/* private */
	pthread_mutex_t lock;
	struct cl_memo_entry *slots;
	uint64_t clock;
	struct cl_memo *next;
	_Atomic int listed;
};

#define CL_MEMO_INIT(name_, cap_, kind_, ref_, drop_)                                              \
	{                                                                                          \
		.name = (name_), .cap = (cap_), .kind = (kind_), .ref = (ref_), .drop = (drop_),   \
		.lock = PTHREAD_MUTEX_INITIALIZER                                                  \
	}

/* One part of what a key is derived from. */
struct cl_memo_part {
	const void *p;
	size_t n;
};

/* SHA-256 over kind (with its NUL) and the parts in order. */
CL_MUST_USE int cl_memo_key_parts(struct cl_memo_key *k, const char *kind,
				  const struct cl_memo_part *parts, size_t nparts);
CL_MUST_USE int cl_memo_key(struct cl_memo_key *k, const char *kind, const void *p, size_t n);

/*
 * Look k up for time `at` (seconds since the epoch, compared as given; pass 0
 * to caches whose entries are always valid). Returns 1 on a hit, with the
 * caller's reference in *out, else 0.
 */
int cl_memo_get(struct cl_memo *m, const struct cl_memo_key *k, int64_t at, void *out);

/*
 * Store value under k for [not_before, not_after]; the cache takes it over
 * (on any failure it is dropped at once). An entry with the same key in the
 * same epoch is replaced; a full cache evicts its least recently used entry.
 */
void cl_memo_put(struct cl_memo *m, const struct cl_memo_key *k, void *value, int64_t not_before,
		 int64_t not_after);

/* Drop every entry. */
void cl_memo_clear(struct cl_memo *m);

/* Entries held now (every epoch). */
size_t cl_memo_count(struct cl_memo *m);

#endif

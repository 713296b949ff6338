/*
 * The cache facility (include/cloister/memo.h) and the cache bypass.
 *
 * Tables are small (at most CL_MEMO_MAX_CAP entries, most 16-64), so a
 * lookup is a linear scan under the table's lock; the lock is never held
 * while a value is made or dropped.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "cloister/memo.h"

struct cl_memo_entry {
	uint8_t key[32];
	void *value;
	int64_t not_before, not_after;
	uint64_t epoch; /* bypass epoch it was stored in; 0 outside any */
	uint64_t stamp; /* last use, for LRU; 0: slot free */
};

/* ------------------------------------------------------------ bypass */

/*
 * Each cl_cache_bypass(1) opens a fresh epoch for the calling thread and
 * cl_cache_bypass(0) purges what was stored in it and returns to the epoch it
 * interrupted, so bypasses nest. Bypasses nested deeper than BYPASS_DEPTH
 * share the deepest saved epoch: they may reuse what was checked within that
 * enclosing bypass, never anything from outside it.
 */
#define BYPASS_DEPTH 16

static _Atomic uint64_t epochs;
static _Thread_local uint64_t epoch;
static _Thread_local unsigned depth;
static _Thread_local uint64_t saved[BYPASS_DEPTH];
static _Thread_local int stored; /* a VERIFIED entry may have been stored in this epoch */

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cl_memo *registry;

static void purge_epoch(uint64_t ep);

void cl_cache_bypass(int on)
{
	if (on) {
		if (depth < BYPASS_DEPTH) {
			epoch = atomic_fetch_add(&epochs, 1) + 1;
			saved[depth] = epoch;
			stored = 0;
		}
		depth++;
		return;
	}
	if (depth == 0)
		return;
	if (stored)
		purge_epoch(epoch);
	depth--;
	epoch = depth == 0 ? 0 : saved[(depth < BYPASS_DEPTH ? depth : BYPASS_DEPTH) - 1];
	/* the level returned to may have stored entries before the inner one began */
	stored = depth > 0;
}

int cl_cache_bypassed(void)
{
	return depth != 0;
}

/* ------------------------------------------------------------- keys */

int cl_memo_key_parts(struct cl_memo_key *k, const char *kind, const struct cl_memo_part *parts,
		      size_t nparts)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
		 EVP_DigestUpdate(ctx, kind, strlen(kind) + 1) == 1;

	for (size_t i = 0; ok && i < nparts; i++)
		ok = EVP_DigestUpdate(ctx, parts[i].p, parts[i].n) == 1;
	ok = ok && EVP_DigestFinal_ex(ctx, k->b, NULL) == 1;
	EVP_MD_CTX_free(ctx);
	return ok ? CL_OK : cl_fail(CL_ERR_CRYPTO, "SHA-256 failed");
}

int cl_memo_key(struct cl_memo_key *k, const char *kind, const void *p, size_t n)
{
	struct cl_memo_part part = {p, n};

	return cl_memo_key_parts(k, kind, &part, 1);
}

/* ------------------------------------------------------------ tables */

static unsigned cap_of(const struct cl_memo *m)
{
	if (m->cap == 0)
		return 1;
	return m->cap > CL_MEMO_MAX_CAP ? CL_MEMO_MAX_CAP : m->cap;
}

static uint64_t epoch_for(const struct cl_memo *m)
{
	return m->kind == CL_MEMO_VERIFIED ? epoch : 0;
}

static void enlist(struct cl_memo *m)
{
	pthread_mutex_lock(&registry_lock);
	if (!m->listed) {
		m->next = registry;
		registry = m;
		m->listed = 1;
	}
	pthread_mutex_unlock(&registry_lock);
}

int cl_memo_get(struct cl_memo *m, const struct cl_memo_key *k, int64_t at, void *out)
{
	uint64_t ep = epoch_for(m);
	int hit = 0;

	pthread_mutex_lock(&m->lock);
	for (unsigned i = 0; m->slots && i < cap_of(m); i++) {
		struct cl_memo_entry *e = &m->slots[i];

		if (!e->stamp || e->epoch != ep || memcmp(e->key, k->b, 32) != 0)
			continue;
		if (at >= e->not_before && at <= e->not_after &&
		    (!m->ref || m->ref(e->value, out))) {
			e->stamp = ++m->clock;
			hit = 1;
		}
		break;
	}
	pthread_mutex_unlock(&m->lock);
	return hit;
}

void cl_memo_put(struct cl_memo *m, const struct cl_memo_key *k, void *value, int64_t not_before,
		 int64_t not_after)
{
	uint64_t ep = epoch_for(m);
	struct cl_memo_entry *victim = NULL;
	void *old = NULL;
	int had = 0;

	if (not_before > not_after) {
		if (m->drop)
			m->drop(value);
		return;
	}
	if (!m->listed)
		enlist(m);
	pthread_mutex_lock(&m->lock);
	if (!m->slots)
		m->slots = calloc(cap_of(m), sizeof(*m->slots));
	for (unsigned i = 0; m->slots && i < cap_of(m); i++) {
		struct cl_memo_entry *e = &m->slots[i];

		if (e->stamp && e->epoch == ep && memcmp(e->key, k->b, 32) == 0) {
			victim = e;
			break;
		}
		if (!victim || (victim->stamp && e->stamp < victim->stamp))
			victim = e;
	}
	if (victim) {
		had = victim->stamp != 0;
		old = victim->value;
		memcpy(victim->key, k->b, 32);
		victim->value = value;
		victim->not_before = not_before;
		victim->not_after = not_after;
		victim->epoch = ep;
		victim->stamp = ++m->clock;
		if (ep)
			stored = 1;
	} else {
		old = value; /* no table: drop the value now */
		had = 1;
	}
	pthread_mutex_unlock(&m->lock);
	if (had && m->drop)
		m->drop(old);
}

/* Take out (under the lock) the values of entries that match, then drop them. */
static void take_out(struct cl_memo *m, int all, uint64_t ep)
{
	void *dead[CL_MEMO_MAX_CAP];
	unsigned n = 0;

	pthread_mutex_lock(&m->lock);
	for (unsigned i = 0; m->slots && i < cap_of(m); i++) {
		struct cl_memo_entry *e = &m->slots[i];

		if (!e->stamp || (!all && e->epoch != ep))
			continue;
		dead[n++] = e->value;
		memset(e, 0, sizeof(*e));
	}
	pthread_mutex_unlock(&m->lock);
	for (unsigned i = 0; m->drop && i < n; i++)
		m->drop(dead[i]);
}

static void purge_epoch(uint64_t ep)
{
	/* drops run under the registry lock: they must not use a cache */
	pthread_mutex_lock(&registry_lock);
	for (struct cl_memo *m = registry; m; m = m->next)
		if (m->kind == CL_MEMO_VERIFIED)
			take_out(m, 0, ep);
	pthread_mutex_unlock(&registry_lock);
}

void cl_memo_clear(struct cl_memo *m)
{
	take_out(m, 1, 0);
}

size_t cl_memo_count(struct cl_memo *m)
{
	size_t n = 0;

	pthread_mutex_lock(&m->lock);
	for (unsigned i = 0; m->slots && i < cap_of(m); i++)
		n += m->slots[i].stamp != 0;
	pthread_mutex_unlock(&m->lock);
	return n;
}

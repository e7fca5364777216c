/*
 * The failed-login rate limiter: per (account, client address) key, after `failures` failed logins in a row the
 * key must wait `backoff` before the next attempt, doubling with each further failure up to 15 minutes; a success
 * forgets the key, and so does an hour without failure. Keys are 32 opaque bytes (an HMAC of account and address, made by the caller: the limiter never
 * sees a name or an address). A fixed table of slots: a key that fails takes its slot over from another key, so
 * memory stays bounded however many addresses try. The clock is the caller's (monotonic milliseconds), so that
 * tests need not sleep. Thread-safe: one limiter serves every event loop.
 * Also here: which address a request comes from, behind trusted proxies (what the key is made of).
 */
#ifndef BERTH_AUTH_LIMITER_H
#define BERTH_AUTH_LIMITER_H

#include <stddef.h>
#include <stdint.h>

#define LIMITER_KEY_LEN 32
#define LIMITER_SLOTS 1024
#define LIMITER_MAX_BACKOFF_MS (15 * 60 * 1000)
#define LIMITER_FORGET_MS (60 * 60 * 1000) /* a key whose last failure is this old starts again from zero */

/** The limiter's table and lock (opaque). */
typedef struct limiter limiter_t;

/**
 * A limiter that makes a key wait after `failures` failed logins in a row, `backoff_ms` at first. The
 * caller frees it with limiter_free().
 */
limiter_t *limiter_new(unsigned failures, uint64_t backoff_ms);

/** Free `l` (NULL is harmless); no thread may be using it. */
void limiter_free(limiter_t *l);

/** Milliseconds `key` must still wait at monotonic time `now_ms` before its next login, or 0. */
int64_t limiter_wait(limiter_t *l, const unsigned char *key, int64_t now_ms);

/** Count a failed login of `key` at `now_ms` (`success` 0), or forget the key's failures (`success` 1). */
void limiter_record(limiter_t *l, const unsigned char *key, int success, int64_t now_ms);

/** 1 if `addr` is one of the comma-separated `list` (blanks allowed; NULL or "" for none). Pure. */
int limiter_trusted(const char *list, const char *addr);

/**
 * The client's address, into `buf` (`len` bytes, NUL-terminated): the peer's address `peer` ("" if unknown), or,
 * when the peer is one of `trusted` (a comma-separated list of addresses, blanks allowed; NULL or "" for none), the
 * last address of its X-Forwarded-For value `xff` (`xff_len` bytes, not NUL-terminated; NULL when absent) — the one
 * that proxy appended. A last entry that is empty or does not fit leaves the peer's address. Pure: no I/O.
 */
void limiter_client_addr(char *buf, size_t len, const char *peer, const char *xff, size_t xff_len, const char *trusted);

#endif

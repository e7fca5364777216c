#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "auth/limiter.h"

struct limiter {
    pthread_mutex_t mu;
    unsigned failures;
    int64_t backoff_ms;
    struct {
        unsigned char key[LIMITER_KEY_LEN];
        unsigned failures;
        int64_t until_ms, last_ms;
    } slots[LIMITER_SLOTS];
};

limiter_t *limiter_new(unsigned failures, uint64_t backoff_ms)
{
    limiter_t *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return NULL;
    pthread_mutex_init(&l->mu, NULL);
    l->failures = failures;
    l->backoff_ms = (int64_t)backoff_ms;
    return l;
}

void limiter_free(limiter_t *l)
{
    if (l == NULL)
        return;
    pthread_mutex_destroy(&l->mu);
    free(l);
}

static unsigned slot_of(const unsigned char *key)
{
    return ((unsigned)key[0] << 8 | key[1]) % LIMITER_SLOTS;
}

int64_t limiter_wait(limiter_t *l, const unsigned char *key, int64_t now_ms)
{
    int64_t wait = 0;
    pthread_mutex_lock(&l->mu);
    unsigned s = slot_of(key);
    if (memcmp(l->slots[s].key, key, LIMITER_KEY_LEN) == 0 && l->slots[s].until_ms > now_ms)
        wait = l->slots[s].until_ms - now_ms;
    pthread_mutex_unlock(&l->mu);
    return wait;
}

void limiter_record(limiter_t *l, const unsigned char *key, int success, int64_t now_ms)
{
    pthread_mutex_lock(&l->mu);
    unsigned s = slot_of(key);
    if (memcmp(l->slots[s].key, key, LIMITER_KEY_LEN) != 0) {
        if (success)
            goto Exit; /* another key's record stays: this one had nothing to forget */
        memcpy(l->slots[s].key, key, LIMITER_KEY_LEN);
        l->slots[s].failures = 0;
        l->slots[s].until_ms = 0;
        l->slots[s].last_ms = now_ms;
    }
    if (success) {
        memset(&l->slots[s], 0, sizeof(l->slots[s]));
        goto Exit;
    }
    if (now_ms - l->slots[s].last_ms >= LIMITER_FORGET_MS)
        l->slots[s].failures = 0;
    l->slots[s].last_ms = now_ms;
    unsigned f = ++l->slots[s].failures;
    if (f >= l->failures) {
        int64_t backoff = l->backoff_ms;
        for (unsigned i = l->failures; i < f && backoff < LIMITER_MAX_BACKOFF_MS; ++i)
            backoff *= 2;
        if (backoff > LIMITER_MAX_BACKOFF_MS)
            backoff = LIMITER_MAX_BACKOFF_MS;
        l->slots[s].until_ms = now_ms + backoff;
    }
Exit:
    pthread_mutex_unlock(&l->mu);
}

int limiter_trusted(const char *list, const char *addr)
{
    if (list == NULL)
        return 0;
    size_t alen = strlen(addr);
    int found = 0;
    for (const char *p = list; *p;) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        while (n > 0 && *p == ' ')
            ++p, --n;
        while (n > 0 && p[n - 1] == ' ')
            --n;
        if (n == alen && memcmp(p, addr, n) == 0)
            found = 1;
        p = e ? e + 1 : p + n;
    }
    return found;
}

void limiter_client_addr(char *buf, size_t len, const char *peer, const char *xff, size_t xff_len, const char *trusted)
{
    snprintf(buf, len, "%s", peer);
    /* the whole peer address is looked up, not what fits in buf: a cut one could be another, listed address */
    if (trusted == NULL || *trusted == '\0' || buf[0] == '\0' || xff == NULL || !limiter_trusted(trusted, peer))
        return;
    const char *last = xff + xff_len;
    while (last > xff && last[-1] != ',')
        --last;
    while (last < xff + xff_len && *last == ' ')
        ++last;
    size_t n = (size_t)(xff + xff_len - last);
    while (n > 0 && last[n - 1] == ' ')
        --n;
    if (n > 0 && n < len) {
        memcpy(buf, last, n);
        buf[n] = '\0';
    }
}

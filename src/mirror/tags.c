#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "mirror/tags.h"
#include "oci/name.h"
#include "util/log.h"
#include "util/status.h"
#include "util/time.h"

#define ENTRIES_MAX 4096 /* kept lists, whatever their size */

typedef struct entry {
    struct entry *next;
    const mirror_t *m;
    char *up;
    mirror_tags_t *list;
    uint64_t used_ms;
} entry_t;

static struct {
    pthread_mutex_t mu;
    entry_t *head;
    size_t bytes, budget, count;
    mirror_upstream_fn upstream;
} kept = {PTHREAD_MUTEX_INITIALIZER, NULL, 0, 0, 0, NULL};
static int stopping; /* set by the main thread, read by the fetches (a flag; nothing rides on it) */

static void list_unref(mirror_tags_t *t)
{
    if (t != NULL && __atomic_sub_fetch(&t->_refs, 1, __ATOMIC_ACQ_REL) == 0)
        free(t);
}

void mirror_tags_release(mirror_tags_t *t)
{
    list_unref(t);
}

/* Under kept.mu. */
static void entry_free(entry_t *e)
{
    kept.bytes -= e->list->_bytes;
    --kept.count;
    list_unref(e->list);
    free(e->up);
    free(e);
}

static void forget_all(void)
{
    pthread_mutex_lock(&kept.mu);
    while (kept.head != NULL) {
        entry_t *e = kept.head;
        kept.head = e->next;
        entry_free(e);
    }
    pthread_mutex_unlock(&kept.mu);
}

void mirror_tags_init(mirror_upstream_fn upstream, size_t budget)
{
    forget_all();
    kept.upstream = upstream != NULL ? upstream : upstream_fetch;
    kept.budget = budget;
    __atomic_store_n(&stopping, 0, __ATOMIC_RELAXED);
}

void mirror_tags_stop(void)
{
    __atomic_store_n(&stopping, 1, __ATOMIC_RELAXED);
    forget_all();
}

/* ---- parsing ---- */

int mirror_tags_parse_page(const char *body, size_t len, char ***tags, size_t *n, size_t *cap, char *why, size_t whylen)
{
    json_error_t err;
    json_t *j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &err), *arr;
    int rc = -1;
    if (!json_is_object(j)) {
        snprintf(why, whylen, "the tag list is not a JSON object");
        goto Exit;
    }
    arr = json_object_get(j, "tags");
    if (arr == NULL || json_is_null(arr)) { /* a repository without tags */
        rc = 0;
        goto Exit;
    }
    if (!json_is_array(arr)) {
        snprintf(why, whylen, "the tag list's \"tags\" is not an array");
        goto Exit;
    }
    for (size_t i = 0; i < json_array_size(arr); ++i) {
        json_t *t = json_array_get(arr, i);
        const char *s = json_string_value(t);
        size_t slen = json_string_length(t);
        if (s == NULL || !tag_valid(s, slen) || strlen(s) != slen) {
            snprintf(why, whylen, "the tag list holds something that is not a tag");
            goto Exit;
        }
        if (*n >= MIRROR_TAGS_MAX) {
            snprintf(why, whylen, "the tag list has more than %d tags", MIRROR_TAGS_MAX);
            goto Exit;
        }
        if (*n == *cap) {
            *cap = *cap ? *cap * 2 : 64;
            *tags = realloc(*tags, *cap * sizeof(**tags));
        }
        (*tags)[(*n)++] = strdup(s);
    }
    rc = 0;
Exit:
    json_decref(j);
    return rc;
}

/* The value of query parameter `key` in `q` (up to '>', NUL or '#'), into buf: 1 if present (and fits), else 0. */
static int query_param(const char *q, const char *end, const char *key, char *buf, size_t len)
{
    size_t klen = strlen(key);
    for (const char *p = q; p < end;) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *e = amp ? amp : end;
        if ((size_t)(e - p) > klen && memcmp(p, key, klen) == 0 && p[klen] == '=') {
            size_t vlen = (size_t)(e - p) - klen - 1;
            if (vlen >= len)
                return 0;
            memcpy(buf, p + klen + 1, vlen);
            buf[vlen] = '\0';
            return 1;
        }
        p = e + 1;
    }
    return 0;
}

int mirror_tags_next(const char *link, char *next, size_t len, char *last, size_t lastlen)
{
    /* one or more "<target>; params" separated by commas; the one whose params say rel="next" */
    for (const char *p = link; p != NULL && *p != '\0';) {
        while (*p == ' ' || *p == ',')
            ++p;
        if (*p != '<')
            return *p == '\0' ? 0 : -1;
        const char *gt = strchr(p, '>');
        if (gt == NULL)
            return -1;
        const char *params = gt + 1, *comma = strchr(params, ',');
        size_t plen = comma ? (size_t)(comma - params) : strlen(params);
        int is_next = 0;
        for (const char *r = params; r + 8 <= params + plen; ++r)
            if (strncmp(r, "rel=\"next\"", 10) == 0 || strncmp(r, "rel=next", 8) == 0)
                is_next = 1;
        if (is_next) {
            const char *q = memchr(p, '?', (size_t)(gt - p));
            char n[16] = "";
            if (q == NULL || !query_param(q + 1, gt, "last", last, lastlen) || !tag_valid(last, strlen(last)))
                return -1;
            if (query_param(q + 1, gt, "n", n, sizeof(n)) &&
                (n[0] == '\0' || strspn(n, "0123456789") != strlen(n) || strlen(n) > 7))
                return -1;
            int w =
                n[0] ? snprintf(next, len, "list?n=%s&last=%s", n, last) : snprintf(next, len, "list?last=%s", last);
            return w > 0 && (size_t)w < len ? 1 : -1;
        }
        p = comma;
    }
    return 0;
}

/* ---- fetching ---- */

typedef struct {
    char *buf;
    size_t len;
} page_t;

static int page_data(void *ctx, const void *p, size_t n)
{
    page_t *pg = ctx;
    if (__atomic_load_n(&stopping, __ATOMIC_RELAXED) || pg->len + n > MIRROR_TAGS_PAGE_BYTES)
        return -1;
    memcpy(pg->buf + pg->len, p, n);
    pg->len += n;
    return 0;
}

static int by_bytes(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted, unique, in one allocation. Frees `tags` and its strings. */
static mirror_tags_t *list_make(char **tags, size_t n)
{
    qsort(tags, n, sizeof(*tags), by_bytes);
    size_t u = 0, chars = 0;
    for (size_t i = 0; i < n; ++i) {
        if (u > 0 && strcmp(tags[u - 1], tags[i]) == 0) {
            free(tags[i]);
            continue;
        }
        tags[u++] = tags[i];
        chars += strlen(tags[i]) + 1;
    }
    size_t bytes = sizeof(mirror_tags_t) + u * sizeof(char *) + chars;
    mirror_tags_t *t = malloc(bytes);
    t->n = u;
    t->tags = (char **)(t + 1);
    t->at_ms = time_mono_ms();
    t->_refs = 1;
    t->_bytes = bytes;
    char *s = (char *)(t->tags + u);
    for (size_t i = 0; i < u; ++i) {
        size_t l = strlen(tags[i]) + 1;
        memcpy(s, tags[i], l);
        t->tags[i] = s;
        s += l;
        free(tags[i]);
    }
    free(tags);
    return t;
}

/* Every page of the upstream's list: BERTH_OK with *out, BERTH_ENOTFOUND, or BERTH_ERROR (logged). */
static int fetch_all(const mirror_t *m, const char *up, mirror_tags_t **out)
{
    char ref[TAG_MAX_LEN + 64] = "list", last[TAG_MAX_LEN + 1] = "", why[256] = "";
    char **tags = NULL;
    size_t n = 0, cap = 0;
    page_t pg = {malloc(MIRROR_TAGS_PAGE_BYTES), 0};
    int rc = BERTH_ERROR, pages = 0;
    for (;;) {
        upstream_sink_t sink = {NULL, page_data, &pg};
        upstream_resp_t resp;
        pg.len = 0;
        if (kept.upstream(m->up, "GET", up, "tags", ref, "application/json", 1, &sink, &resp) != 0) {
            snprintf(why, sizeof(why), "%s", resp.status == 0 ? resp.error : "the answer was too large");
            break;
        }
        if (resp.status == 404 || resp.status == 401 || resp.status == 403) {
            rc = pages == 0 ? BERTH_ENOTFOUND : BERTH_ERROR;
            snprintf(why, sizeof(why), "status %ld on page %d", resp.status, pages + 1);
            break;
        }
        if (resp.status != 200) {
            snprintf(why, sizeof(why), "status %ld", resp.status);
            break;
        }
        if (mirror_tags_parse_page(pg.buf, pg.len, &tags, &n, &cap, why, sizeof(why)) != 0)
            break;
        ++pages;
        char prev[sizeof(last)];
        memcpy(prev, last, sizeof(prev));
        int more = mirror_tags_next(resp.link, ref, sizeof(ref), last, sizeof(last));
        if (more < 0) {
            snprintf(why, sizeof(why), "the Link of page %d is malformed", pages);
            break;
        }
        if (more == 0) {
            rc = BERTH_OK;
            break;
        }
        if (strcmp(last, prev) <= 0 && pages > 1) { /* a next page must start further on, or this never ends */
            snprintf(why, sizeof(why), "the Link of page %d goes back", pages);
            break;
        }
        if (pages >= MIRROR_TAGS_PAGES) {
            snprintf(why, sizeof(why), "more than %d pages", MIRROR_TAGS_PAGES);
            break;
        }
    }
    free(pg.buf);
    if (rc == BERTH_OK) {
        *out = list_make(tags, n);
        return rc;
    }
    for (size_t i = 0; i < n; ++i)
        free(tags[i]);
    free(tags);
    if (rc == BERTH_ERROR)
        log_warn("mirror %s: cannot list the tags of %s: %s", m->cfg->upstream, up, why);
    return rc;
}

/* ---- the kept copies (under kept.mu) ---- */

static entry_t **find(const mirror_t *m, const char *up)
{
    entry_t **p = &kept.head;
    for (; *p != NULL; p = &(*p)->next)
        if ((*p)->m == m && strcmp((*p)->up, up) == 0)
            break;
    return p;
}

static void keep(const mirror_t *m, const char *up, mirror_tags_t *t)
{
    entry_t **p = find(m, up);
    if (*p != NULL) {
        entry_t *e = *p;
        *p = e->next;
        entry_free(e);
    }
    if (t->_bytes > kept.budget)
        return;
    /* room: the least recently used go first */
    while (kept.head != NULL && (kept.bytes + t->_bytes > kept.budget || kept.count >= ENTRIES_MAX)) {
        entry_t **lru = &kept.head;
        for (entry_t **q = &kept.head; *q != NULL; q = &(*q)->next)
            if ((*q)->used_ms < (*lru)->used_ms)
                lru = q;
        entry_t *e = *lru;
        *lru = e->next;
        entry_free(e);
    }
    entry_t *e = malloc(sizeof(*e));
    *e = (entry_t){kept.head, m, strdup(up), t, time_mono_ms()};
    __atomic_add_fetch(&t->_refs, 1, __ATOMIC_RELAXED);
    kept.head = e;
    kept.bytes += t->_bytes;
    ++kept.count;
}

/* A held reference to the kept list of (m, up) if there is one (fresh only if `fresh_only`), else NULL. */
static mirror_tags_t *kept_list(const mirror_t *m, const char *up, int fresh_only)
{
    mirror_tags_t *t = NULL;
    uint64_t now = time_mono_ms();
    pthread_mutex_lock(&kept.mu);
    entry_t *e = *find(m, up);
    if (e != NULL && (!fresh_only || now - e->list->at_ms < m->cfg->tag_ttl_ms)) {
        t = e->list;
        __atomic_add_fetch(&t->_refs, 1, __ATOMIC_RELAXED);
        e->used_ms = now;
    }
    pthread_mutex_unlock(&kept.mu);
    return t;
}

int mirror_tags_get(const mirror_t *m, const char *up, mirror_tags_t **out)
{
    if ((*out = kept_list(m, up, 1)) != NULL)
        return MIRROR_TAGS_FRESH;
    mirror_tags_t *t = NULL;
    int rc = fetch_all(m, up, &t);
    if (rc == BERTH_OK) {
        pthread_mutex_lock(&kept.mu);
        if (!__atomic_load_n(&stopping, __ATOMIC_RELAXED)) /* mirror_tags_stop frees the copies after setting it */
            keep(m, up, t);
        pthread_mutex_unlock(&kept.mu);
        *out = t;
        return MIRROR_TAGS_FRESH;
    }
    if (rc == BERTH_ENOTFOUND) {
        pthread_mutex_lock(&kept.mu);
        entry_t **p = find(m, up);
        if (*p != NULL) {
            entry_t *e = *p;
            *p = e->next;
            entry_free(e);
        }
        pthread_mutex_unlock(&kept.mu);
        return BERTH_ENOTFOUND;
    }
    if ((*out = kept_list(m, up, 0)) != NULL) {
        __atomic_add_fetch((uint64_t *)&m->stale, 1, __ATOMIC_RELAXED);
        log_warn("mirror %s: serving the cached tag list of %s, the upstream failed", m->cfg->upstream, up);
        return MIRROR_TAGS_STALE;
    }
    return BERTH_ERROR;
}

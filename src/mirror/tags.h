/*
 * The tag lists of mirrored repositories, as distribution's proxy mode gives them: the upstream's
 * GET /v2/<name>/tags/list, every page of it (following the upstream's Link header), kept per repository for the
 * mirror's tag_ttl, and served from that copy while the upstream fails. Process memory only: a restart forgets
 * the copies (the tags the mirror stored stay, in the database).
 *
 * Blocking (upstream requests): call mirror_tags_get on a fetch thread. The copies are shared between threads
 * under the module's lock; a list handed out is immutable and reference-counted.
 */
#ifndef BERTH_MIRROR_TAGS_H
#define BERTH_MIRROR_TAGS_H

#include <stddef.h>
#include <stdint.h>
#include "mirror/fetch.h"
#include "mirror/mirror.h"

/** An upstream's tag list: `n` tags, sorted (byte order, as berth lists its own) and unique. */
typedef struct mirror_tags {
    size_t n;
    char **tags;    /* point into the same allocation */
    uint64_t at_ms; /* when the upstream answered it (time_mono_ms) */
    unsigned _refs; /* the cache's and each holder's */
    size_t _bytes;  /* for the cache's budget */
} mirror_tags_t;

/** Most tags, pages and bytes of page one list may take; the upstream's answers beyond them are refused. */
#define MIRROR_TAGS_MAX 100000
#define MIRROR_TAGS_PAGES 1000
#define MIRROR_TAGS_PAGE_BYTES (4u << 20)

/**
 * Set up (or reset) the module: `upstream` is how lists are fetched (NULL: upstream_fetch), `budget` the bytes
 * the kept copies may take in all (the least recently used go first). Forgets every copy.
 */
void mirror_tags_init(mirror_upstream_fn upstream, size_t budget);
/** Make fetches in progress give up (at shutdown), and free the copies once none is held any more. */
void mirror_tags_stop(void);

/** Results of mirror_tags_get. */
enum {
    MIRROR_TAGS_FRESH = 0, /* the upstream's list, just fetched or younger than tag_ttl */
    MIRROR_TAGS_STALE = 1, /* the upstream failed; its last list, older than tag_ttl (logged) */
};

/**
 * The tag list of repository `up` (the upstream's name) of mirror `m`: MIRROR_TAGS_FRESH or MIRROR_TAGS_STALE with
 * the list in *out (release it with mirror_tags_release); BERTH_ENOTFOUND if the upstream has no such repository
 * (404, 401 or 403); BERTH_ERROR if the upstream failed (no answer, 429, 5xx, an answer that breaks the grammar
 * or the limits: logged) and no copy is kept. Blocking.
 */
int mirror_tags_get(const mirror_t *m, const char *up, mirror_tags_t **out);

/** Let go of a list mirror_tags_get gave. */
void mirror_tags_release(mirror_tags_t *t);

/**
 * Parse one page of an upstream's tags/list answer ({"name": ..., "tags": [...] or null}): append its tags, each
 * checked against the tag grammar, to `*tags` (`*n` of them, `*cap` allocated; the caller frees the array and
 * its strings). 0, or -1 with the reason in `why` if the page is not such an object or a tag is not a tag.
 */
int mirror_tags_parse_page(const char *body, size_t len, char ***tags, size_t *n, size_t *cap, char *why,
                           size_t whylen);

/**
 * From an upstream's Link header (`link`, e.g. `</v2/library/alpine/tags/list?n=100&last=3.19>; rel="next"`), the
 * ref of the next page's request ("list?n=100&last=3.19", `last` checked against the tag grammar and `n` as a
 * number; other parameters dropped) into `next` (`len` bytes), and the `last` value into `last` (`lastlen` bytes).
 * 1 if there is a next page, 0 if not (no Link with rel="next"), -1 if its target is malformed.
 */
int mirror_tags_next(const char *link, char *next, size_t len, char *last, size_t lastlen);

#endif

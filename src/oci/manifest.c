/*
 * Manifest validation with jansson: enough of the OCI image spec (and Docker's schema 2) to refuse what a client
 * could not pull back, and to extract the references, subject and artifact type the metadata store records.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "oci/manifest.h"

#define ERR_VALUE_MAX 160 /* longest piece of client input quoted in an error message */

typedef struct {
    char *buf;
    size_t len;
} errbuf_t;

static void set_err(errbuf_t *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void set_err(errbuf_t *e, const char *fmt, ...)
{
    va_list ap;

    if (e->buf == NULL || e->len == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(e->buf, e->len, fmt, ap);
    va_end(ap);
}

static int quoted_len(size_t len)
{
    return (int)(len > ERR_VALUE_MAX ? ERR_VALUE_MAX : len);
}

/* The media type in `mt` without parameters and surrounding whitespace, as a pointer and length into `mt`. */
static const char *media_type_base(const char *mt, size_t len, size_t *outlen)
{
    const char *semi = memchr(mt, ';', len);

    if (semi != NULL)
        len = semi - mt;
    while (len != 0 && (mt[0] == ' ' || mt[0] == '\t')) {
        ++mt;
        --len;
    }
    while (len != 0 && (mt[len - 1] == ' ' || mt[len - 1] == '\t'))
        --len;
    *outlen = len;
    return mt;
}

/* RFC 6838 4.2 restricted-name: [A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}; returns its length at s (0 if none). */
static size_t restricted_name(const char *s, size_t len)
{
    size_t i = 0;
    while (i < len && i < 127 &&
           ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
            (i != 0 && s[i] != '\0' && strchr("!#$&^_.+-", s[i]) != NULL)))
        ++i;
    return i;
}

/* A media type as RFC 6838 names one, which the image spec requires of mediaType: type "/" subtype, no parameters. */
static int media_type_valid(const char *s, size_t len)
{
    size_t t = restricted_name(s, len);
    return t != 0 && t < len && s[t] == '/' && restricted_name(s + t + 1, len - t - 1) == len - t - 1 && len - t > 1;
}

static int span_is(const char *s, size_t len, const char *lit)
{
    return s != NULL && len == strlen(lit) && memcmp(s, lit, len) == 0;
}

static int is_schema1(const char *s, size_t len)
{
    return span_is(s, len, MT_DOCKER_SCHEMA1) || span_is(s, len, MT_DOCKER_SCHEMA1_SIGNED);
}

/* An optional member: NULL when absent or JSON null (Go's encoders, which produce most manifests, treat both alike). */
static json_t *opt_member(const json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_null(v) ? NULL : v;
}

/*
 * Validate descriptor `d`, named `where` in messages. The digest is parsed straight into its final home because a
 * digest_t points into itself and must not be copied.
 */
static int parse_descriptor(const json_t *d, const char *where, digest_t *digest, const char **media_type,
                            int64_t *size, int *has_urls, errbuf_t *e)
{
    json_t *mt, *dg, *sz, *urls;
    digest_err_t derr;

    if (!json_is_object(d)) {
        set_err(e, "%s: a descriptor must be an object", where);
        return -1;
    }
    if (!json_is_string(mt = json_object_get(d, "mediaType"))) {
        set_err(e, "%s: mediaType must be a string", where);
        return -1;
    }
    if (!json_is_string(dg = json_object_get(d, "digest"))) {
        set_err(e, "%s: digest must be a string", where);
        return -1;
    }
    if ((derr = digest_parse(digest, json_string_value(dg), json_string_length(dg))) != DIGEST_OK) {
        set_err(e, "%s: %s \"%.*s\"", where,
                derr == DIGEST_EUNSUPPORTED ? "unsupported digest algorithm in" : "invalid digest",
                quoted_len(json_string_length(dg)), json_string_value(dg));
        return -1;
    }
    if (!json_is_integer(sz = json_object_get(d, "size")) || json_integer_value(sz) < 0) {
        set_err(e, "%s: size must be a non-negative integer", where);
        return -1;
    }
    if ((urls = opt_member(d, "urls")) != NULL) {
        size_t i;
        json_t *u;
        if (!json_is_array(urls)) {
            set_err(e, "%s: urls must be an array of strings", where);
            return -1;
        }
        json_array_foreach(urls, i, u) {
            if (!json_is_string(u)) {
                set_err(e, "%s: urls must be an array of strings", where);
                return -1;
            }
        }
    }
    *media_type = json_string_value(mt);
    *size = json_integer_value(sz);
    *has_urls = urls != NULL && json_array_size(urls) != 0;
    return 0;
}

/* Fill `ref` from descriptor `d`. */
static int parse_ref(const json_t *d, const char *where, manifest_ref_kind_t kind, manifest_ref_t *ref, errbuf_t *e)
{
    const char *mt;
    int has_urls;

    if (parse_descriptor(d, where, &ref->digest, &mt, &ref->size, &has_urls, e) != 0)
        return -1;
    if ((ref->media_type = strdup(mt)) == NULL) {
        set_err(e, "out of memory");
        return -1;
    }
    ref->kind = kind;
    /* A non-distributable layer lives elsewhere (Windows base layers): the registry need not hold its blob. */
    ref->foreign =
        kind == REF_LAYER && (strstr(mt, "nondistributable") != NULL || strstr(mt, "foreign") != NULL || has_urls);
    return 0;
}

/* Fill m->refs from the descriptors in `arr` (a JSON array), starting at m->refs[first]. */
static int parse_ref_array(manifest_t *m, size_t first, const json_t *arr, const char *name, manifest_ref_kind_t kind,
                           errbuf_t *e)
{
    char where[64];
    size_t i;
    json_t *d;

    json_array_foreach(arr, i, d) {
        snprintf(where, sizeof(where), "%s[%zu]", name, i);
        if (parse_ref(d, where, kind, &m->refs[first + i], e) != 0)
            return -1;
    }
    return 0;
}

static int parse_annotations(manifest_t *m, const json_t *ann, errbuf_t *e)
{
    const char *key;
    json_t *v;

    if (!json_is_object(ann)) {
        set_err(e, "annotations must be an object");
        return -1;
    }
    json_object_foreach((json_t *)ann, key, v) {
        if (!json_is_string(v)) {
            set_err(e, "annotations: the value of \"%.*s\" must be a string", quoted_len(strlen(key)), key);
            return -1;
        }
    }
    if ((m->annotations_json = json_dumps(ann, JSON_COMPACT | JSON_SORT_KEYS)) == NULL) {
        set_err(e, "out of memory");
        return -1;
    }
    return 0;
}

/* Everything after the JSON is known to be an object that is neither schema 1 nor at odds with the Content-Type. */
static manifest_err_t parse_body(manifest_t *m, const json_t *root, const char *mt, size_t mtlen, errbuf_t *e)
{
    json_t *config = opt_member(root, "config"), *layers = opt_member(root, "layers");
    json_t *manifests = opt_member(root, "manifests"), *v;

    if (span_is(mt, mtlen, MT_OCI_MANIFEST) || span_is(mt, mtlen, MT_DOCKER_MANIFEST)) {
        m->kind = MANIFEST_IMAGE;
    } else if (span_is(mt, mtlen, MT_OCI_INDEX) || span_is(mt, mtlen, MT_DOCKER_LIST)) {
        m->kind = MANIFEST_INDEX;
    } else if (config != NULL) {
        m->kind = MANIFEST_IMAGE;
    } else if (manifests != NULL) {
        m->kind = MANIFEST_INDEX;
    } else {
        set_err(e, "neither an image manifest (no config) nor an index (no manifests)");
        return MANIFEST_EINVALID;
    }
    if (mt == NULL) {
        mt = m->kind == MANIFEST_IMAGE ? MT_OCI_MANIFEST : MT_OCI_INDEX;
        mtlen = strlen(mt);
    }
    if ((m->media_type = strndup(mt, mtlen)) == NULL)
        goto Oom;

    /* A document that is both a manifest and an index could be read differently by different clients
     * (CVE-2021-41190), so the fields of the other kind are refused. */
    if (m->kind == MANIFEST_IMAGE) {
        if (manifests != NULL) {
            set_err(e, "an image manifest must not have manifests");
            return MANIFEST_EINVALID;
        }
        if (config == NULL) {
            set_err(e, "an image manifest needs a config");
            return MANIFEST_EINVALID;
        }
        if (!json_is_array(layers)) {
            set_err(e, "an image manifest needs a layers array");
            return MANIFEST_EINVALID;
        }
        m->nrefs = 1 + json_array_size(layers);
    } else {
        if (config != NULL || layers != NULL) {
            set_err(e, "an index must not have %s", config != NULL ? "a config" : "layers");
            return MANIFEST_EINVALID;
        }
        if (!json_is_array(manifests)) {
            set_err(e, "an index needs a manifests array");
            return MANIFEST_EINVALID;
        }
        m->nrefs = json_array_size(manifests);
    }
    /* Sized once: the digests must not move after parsing (see parse_descriptor). */
    if (m->nrefs != 0 && (m->refs = calloc(m->nrefs, sizeof(*m->refs))) == NULL) {
        m->nrefs = 0;
        goto Oom;
    }
    if (m->kind == MANIFEST_IMAGE) {
        if (parse_ref(config, "config", REF_CONFIG, &m->refs[0], e) != 0 ||
            parse_ref_array(m, 1, layers, "layers", REF_LAYER, e) != 0)
            return MANIFEST_EINVALID;
    } else {
        if (parse_ref_array(m, 0, manifests, "manifests", REF_MANIFEST, e) != 0)
            return MANIFEST_EINVALID;
    }

    if ((v = opt_member(root, "subject")) != NULL) {
        const char *smt;
        int64_t ssize;
        int surls;
        if (parse_descriptor(v, "subject", &m->subject, &smt, &ssize, &surls, e) != 0)
            return MANIFEST_EINVALID;
        m->has_subject = 1;
    }

    /* The referrers API reports an image manifest without artifactType under its config's media type. */
    if ((v = opt_member(root, "artifactType")) != NULL && !json_is_string(v)) {
        set_err(e, "artifactType must be a string");
        return MANIFEST_EINVALID;
    }
    if (v != NULL && json_string_length(v) != 0) {
        if ((m->artifact_type = strdup(json_string_value(v))) == NULL)
            goto Oom;
    } else if (m->kind == MANIFEST_IMAGE) {
        if ((m->artifact_type = strdup(m->refs[0].media_type)) == NULL)
            goto Oom;
    }

    if ((v = opt_member(root, "annotations")) != NULL && parse_annotations(m, v, e) != 0)
        return MANIFEST_EINVALID;
    return MANIFEST_OK;

Oom:
    set_err(e, "out of memory");
    return MANIFEST_EINVALID;
}

manifest_err_t manifest_parse(manifest_t **out, const char *content_type, size_t ctlen, const void *body, size_t len,
                              char *err, size_t errlen)
{
    errbuf_t e = {err, errlen};
    const char *ct = NULL, *bmt = NULL;
    size_t ctl = 0, bmtlen = 0;
    json_t *root, *v;
    json_error_t jerr;
    manifest_t *m = NULL;
    manifest_err_t ret;

    *out = NULL;
    if (err != NULL && errlen != 0)
        err[0] = '\0';
    if (content_type != NULL && (ct = media_type_base(content_type, ctlen, &ctl), ctl == 0))
        ct = NULL;
    if (is_schema1(ct, ctl)) {
        set_err(&e, "Docker schema 1 manifests are not supported");
        return MANIFEST_EUNSUPPORTED;
    }

    if ((root = json_loadb(body != NULL ? body : "", len, 0, &jerr)) == NULL) {
        set_err(&e, "invalid JSON: %s (line %d, column %d)", jerr.text, jerr.line, jerr.column);
        return MANIFEST_EINVALID;
    }
    ret = MANIFEST_EINVALID;
    if (!json_is_object(root)) {
        set_err(&e, "a manifest must be a JSON object");
        goto Exit;
    }
    if ((v = opt_member(root, "mediaType")) != NULL) {
        if (!json_is_string(v)) {
            set_err(&e, "mediaType must be a string");
            goto Exit;
        }
        /* An empty mediaType says nothing (Go's omitempty would have dropped it). */
        if ((bmtlen = json_string_length(v)) != 0)
            bmt = json_string_value(v);
        /* It becomes the Content-Type of every pull: one with parameters would be read as another type. */
        if (bmt != NULL && !media_type_valid(bmt, bmtlen)) {
            set_err(&e, "mediaType \"%.*s\" is not a media type (type/subtype, RFC 6838)", quoted_len(bmtlen), bmt);
            goto Exit;
        }
    }
    if (is_schema1(bmt, bmtlen)) {
        set_err(&e, "Docker schema 1 manifests are not supported");
        ret = MANIFEST_EUNSUPPORTED;
        goto Exit;
    }
    if (!json_is_integer(v = json_object_get(root, "schemaVersion"))) {
        set_err(&e, v == NULL ? "schemaVersion is missing" : "schemaVersion must be an integer");
        goto Exit;
    }
    if (json_integer_value(v) != 2) {
        if (json_integer_value(v) == 1)
            set_err(&e, "Docker schema 1 manifests are not supported");
        else
            set_err(&e, "unsupported schemaVersion %" JSON_INTEGER_FORMAT, json_integer_value(v));
        ret = MANIFEST_EUNSUPPORTED;
        goto Exit;
    }
    if (bmt != NULL && ct != NULL && !(bmtlen == ctl && memcmp(bmt, ct, ctl) == 0)) {
        set_err(&e, "the manifest's mediaType \"%.*s\" does not match the Content-Type \"%.*s\"", quoted_len(bmtlen),
                bmt, quoted_len(ctl), ct);
        goto Exit;
    }

    if ((m = calloc(1, sizeof(*m))) == NULL) {
        set_err(&e, "out of memory");
        goto Exit;
    }
    if (bmt != NULL)
        ret = parse_body(m, root, bmt, bmtlen, &e);
    else
        ret = parse_body(m, root, ct, ctl, &e);
    if (ret == MANIFEST_OK) {
        *out = m;
        m = NULL;
    }

Exit:
    manifest_free(m);
    json_decref(root);
    return ret;
}

void manifest_free(manifest_t *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->nrefs; ++i)
        free(m->refs[i].media_type);
    free(m->refs);
    free(m->media_type);
    free(m->artifact_type);
    free(m->annotations_json);
    free(m);
}

int manifest_media_type_known(const char *mt, size_t len)
{
    if (mt == NULL)
        return 0;
    mt = media_type_base(mt, len, &len);
    return span_is(mt, len, MT_OCI_MANIFEST) || span_is(mt, len, MT_OCI_INDEX) ||
           span_is(mt, len, MT_DOCKER_MANIFEST) || span_is(mt, len, MT_DOCKER_LIST);
}

/*
 * libFuzzer target for src/oci/manifest.c (image manifests and indexes, OCI and Docker). The first byte picks a
 * Content-Type, the rest is the body. What is accepted must be accepted again, read the same, under the media type
 * berth will serve it with, and every media type berth records must be the document's own, byte for byte.
 */
#include <jansson.h>
#include "fuzz.h"
#include "oci/manifest.h"

/* The string `key` of object `o` is exactly the C string `s` (no NUL inside it cut short). */
static int json_member_is(const json_t *o, const char *key, const char *s)
{
    json_t *v = json_object_get(o, key);
    return json_is_string(v) && json_string_length(v) == strlen(s) && strcmp(json_string_value(v), s) == 0;
}

/* Each descriptor of `m` carries the mediaType of the document's descriptor, unaltered. */
static void check_media_types(const manifest_t *m, const uint8_t *body, size_t len)
{
    json_t *root = json_loadb((const char *)body, len, 0, NULL), *mt, *at;
    CHECK(json_is_object(root));
    if (m->kind == MANIFEST_IMAGE) {
        json_t *layers = json_object_get(root, "layers");
        CHECK(json_member_is(json_object_get(root, "config"), "mediaType", m->refs[0].media_type));
        for (size_t i = 1; i < m->nrefs; ++i)
            CHECK(json_member_is(json_array_get(layers, i - 1), "mediaType", m->refs[i].media_type));
    } else {
        json_t *manifests = json_object_get(root, "manifests");
        for (size_t i = 0; i < m->nrefs; ++i)
            CHECK(json_member_is(json_array_get(manifests, i), "mediaType", m->refs[i].media_type));
    }
    if (json_is_string(mt = json_object_get(root, "mediaType")) && json_string_length(mt) != 0)
        CHECK(json_member_is(root, "mediaType", m->media_type));
    if (json_is_string(at = json_object_get(root, "artifactType")) && json_string_length(at) != 0)
        CHECK(json_member_is(root, "artifactType", m->artifact_type));
    json_decref(root);
}

/* `a` and `b` say the same about the document. */
static int same(const manifest_t *a, const manifest_t *b)
{
    if (a->kind != b->kind || strcmp(a->media_type, b->media_type) != 0 || a->nrefs != b->nrefs ||
        a->has_subject != b->has_subject || (a->has_subject && !digest_equal(&a->subject, &b->subject)) ||
        (a->artifact_type == NULL) != (b->artifact_type == NULL) ||
        (a->artifact_type != NULL && strcmp(a->artifact_type, b->artifact_type) != 0))
        return 0;
    for (size_t i = 0; i < a->nrefs; ++i) {
        const manifest_ref_t *x = &a->refs[i], *y = &b->refs[i];
        if (x->kind != y->kind || !digest_equal(&x->digest, &y->digest) || x->size != y->size ||
            strcmp(x->media_type, y->media_type) != 0 || x->foreign != y->foreign)
            return 0;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const cts[] = {
        NULL,
        MT_OCI_MANIFEST,
        MT_OCI_INDEX,
        MT_DOCKER_MANIFEST,
        MT_DOCKER_LIST,
        MT_DOCKER_SCHEMA1,
        MT_OCI_MANIFEST "; charset=utf-8",
        " ",
        "application/json",
        "application/vnd.oci.image.manifest.v1+json ;",
    };
    const char *ct = NULL;
    manifest_t *m, *again;
    manifest_err_t r;
    char err[128];

    if (size != 0) {
        ct = cts[data[0] % (sizeof(cts) / sizeof(cts[0]))];
        ++data;
        --size;
    }
    /* the body doubles as a Content-Type header for the media-type check; only its answer's range matters */
    CHECK((unsigned)manifest_media_type_known((const char *)data, size) <= 1);
    memset(err, 'X', sizeof(err));
    r = manifest_parse(&m, ct, ct != NULL ? strlen(ct) : 0, data, size, err, sizeof(err));
    CHECK(memchr(err, '\0', sizeof(err)) != NULL);
    if (r != MANIFEST_OK) {
        CHECK(m == NULL && (r == MANIFEST_EINVALID || r == MANIFEST_EUNSUPPORTED) && err[0] != '\0');
        return 0;
    }
    CHECK(m != NULL && err[0] == '\0' && m->media_type != NULL);
    CHECK(m->kind == MANIFEST_IMAGE || m->kind == MANIFEST_INDEX);
    CHECK(m->kind != MANIFEST_IMAGE || (m->nrefs != 0 && m->refs[0].kind == REF_CONFIG && m->artifact_type != NULL));
    digest_t d;
    for (size_t i = 0; i < m->nrefs; ++i) {
        const manifest_ref_t *ref = &m->refs[i];
        CHECK(ref->media_type != NULL && ref->size >= 0);
        CHECK(digest_parse(&d, ref->digest.str, ref->digest.len) == DIGEST_OK);
        CHECK(!ref->foreign || ref->kind == REF_LAYER);
        CHECK(ref->kind == (m->kind == MANIFEST_INDEX ? REF_MANIFEST : i == 0 ? REF_CONFIG : REF_LAYER));
    }
    CHECK(!m->has_subject || digest_parse(&d, m->subject.str, m->subject.len) == DIGEST_OK);
    check_media_types(m, data, size);

    /* served later with Content-Type m->media_type, it must read the same under it */
    r = manifest_parse(&again, m->media_type, strlen(m->media_type), data, size, err, sizeof(err));
    if (r != MANIFEST_OK)
        fprintf(stderr, "refused under its own media type \"%s\": %s\n", m->media_type, err);
    CHECK(r == MANIFEST_OK && same(m, again));
    manifest_free(again);
    manifest_free(m);
    return 0;
}

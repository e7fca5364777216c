/* libFuzzer target for src/oci/manifest.c. The first byte picks a Content-Type, the rest is the body. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "oci/manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
    manifest_t *m;
    manifest_err_t r;
    char err[128];

    if (size != 0) {
        ct = cts[data[0] % (sizeof(cts) / sizeof(cts[0]))];
        ++data;
        --size;
    }
    /* the body doubles as a Content-Type header for the media-type check; only its answer's range matters */
    if ((unsigned)manifest_media_type_known((const char *)data, size) > 1)
        abort();
    memset(err, 'X', sizeof(err));
    r = manifest_parse(&m, ct, ct != NULL ? strlen(ct) : 0, data, size, err, sizeof(err));
    if (memchr(err, '\0', sizeof(err)) == NULL)
        abort();
    if (r != MANIFEST_OK) {
        if (m != NULL || (r != MANIFEST_EINVALID && r != MANIFEST_EUNSUPPORTED) || err[0] == '\0')
            abort();
        return 0;
    }
    if (m == NULL || err[0] != '\0' || m->media_type == NULL ||
        (m->kind != MANIFEST_IMAGE && m->kind != MANIFEST_INDEX))
        abort();
    if (m->kind == MANIFEST_IMAGE && (m->nrefs == 0 || m->refs[0].kind != REF_CONFIG || m->artifact_type == NULL))
        abort();
    digest_t again;
    for (size_t i = 0; i < m->nrefs; ++i) {
        const manifest_ref_t *ref = &m->refs[i];
        if (ref->media_type == NULL || ref->size < 0 ||
            digest_parse(&again, ref->digest.str, ref->digest.len) != DIGEST_OK)
            abort();
        if (ref->foreign && ref->kind != REF_LAYER)
            abort();
    }
    if (m->has_subject && digest_parse(&again, m->subject.str, m->subject.len) != DIGEST_OK)
        abort();
    manifest_free(m);
    return 0;
}

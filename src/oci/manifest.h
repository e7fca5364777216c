/*
 * Parsing and validating manifests (OCI image manifest and index, Docker schema 2 manifest and manifest list):
 * what berth needs to store one and to answer later queries (references, subject, artifact type).
 */
#ifndef BERTH_OCI_MANIFEST_H
#define BERTH_OCI_MANIFEST_H

#include <stddef.h>
#include <stdint.h>
#include "oci/digest.h"

#define MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define MT_DOCKER_SCHEMA1 "application/vnd.docker.distribution.manifest.v1+json"
#define MT_DOCKER_SCHEMA1_SIGNED "application/vnd.docker.distribution.manifest.v1+prettyjws"

typedef enum { MANIFEST_IMAGE = 0, MANIFEST_INDEX = 1 } manifest_kind_t;
typedef enum { REF_CONFIG = 0, REF_LAYER = 1, REF_MANIFEST = 2 } manifest_ref_kind_t;

/** One descriptor a manifest points at. */
typedef struct {
    manifest_ref_kind_t kind;
    digest_t digest;
    int64_t size;
    char *media_type; /* never NULL (may be "") */
    int foreign;      /* non-distributable layer (media type says nondistributable/foreign, or `urls` given):
                          the registry need not hold the blob */
} manifest_ref_t;

typedef struct {
    manifest_kind_t kind;
    char *media_type;    /* the effective media type: the body's `mediaType`, else the Content-Type, else
                               inferred (config present -> OCI manifest, manifests present -> OCI index) */
    char *artifact_type; /* `artifactType`, else for an image manifest the config's media type; NULL if neither */
    int has_subject;
    digest_t subject;
    char *annotations_json; /* compact JSON of `annotations`, or NULL */
    size_t nrefs;
    manifest_ref_t *refs;
} manifest_t;

typedef enum {
    MANIFEST_OK = 0,
    MANIFEST_EINVALID = -1,     /* malformed JSON, missing/ill-typed fields, bad digest, media type mismatch */
    MANIFEST_EUNSUPPORTED = -2, /* a kind berth does not store: Docker schema 1, unknown schemaVersion */
} manifest_err_t;

/**
 * Parse `body` (`len` bytes). `content_type` (may be NULL, length `ctlen`) is the request's Content-Type;
 * parameters after ';' are ignored. If the body has `mediaType` and a Content-Type was given, they must be equal.
 * On success `*out` is a new manifest_t the caller frees with manifest_free. On failure a human-readable reason
 * is written to `err` (`errlen` bytes, always NUL-terminated).
 */
manifest_err_t manifest_parse(manifest_t **out, const char *content_type, size_t ctlen, const void *body, size_t len,
                              char *err, size_t errlen);
void manifest_free(manifest_t *m);

/** 1 if `mt` (length `len`, parameters ignored) is one of the manifest media types berth stores. */
int manifest_media_type_known(const char *mt, size_t len);

#endif

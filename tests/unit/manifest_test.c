/*
 * Unit tests for src/oci/manifest.c. Bodies are written with single quotes for readability; parse() turns them into
 * double quotes in an exact-size heap buffer (no NUL terminator, so ASan catches a parser reading past `len`).
 */
#include <stdlib.h>
#include <string.h>
#include "oci/manifest.h"
#include "tap.h"

#define D1 "sha256:b2aa39c304c27b96c1fef0c06bee651ac9241d49c4fe34381cab8453f9a89c7d"
#define D2 "sha256:9834876dcfb05cb167a5c24953eba58c4ac89b1adf57f28f2f9d09af107ee8f0"
#define D3 "sha256:3c3a4604a545cdc127456d94e421cd355bca5b528f4a9c1905b15da2eb4a4c6b"
#define D4 "sha256:ec4b8955958665577945c89419d1af06b5f7636b4ac3da7f12184802ad867736"
#define D5                                                                                                             \
    "sha512:cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce"                                          \
    "47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"
#define EMPTY_CFG "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"

static char err[512];

static manifest_err_t parse(manifest_t **m, const char *ct, const char *body)
{
    size_t len = strlen(body);
    char *copy = malloc(len != 0 ? len : 1);
    manifest_err_t r;

    for (size_t i = 0; i < len; ++i)
        copy[i] = body[i] == '\'' ? '"' : body[i];
    err[0] = 'X'; /* must be overwritten: "" on success, a reason on failure */
    err[1] = '\0';
    *m = (manifest_t *)1;
    r = manifest_parse(m, ct, ct != NULL ? strlen(ct) : 0, copy, len, err, sizeof(err));
    free(copy);
    return r;
}

/* Expect `body` to fail with `want` and a message containing `needle`. */
static void expect_fail(const char *what, const char *ct, const char *body, manifest_err_t want, const char *needle)
{
    manifest_t *m;
    manifest_err_t r = parse(&m, ct, body);

    ok(r == want && m == NULL && strstr(err, needle) != NULL, "%s -> %s (got %d, \"%s\")", what,
       want == MANIFEST_EUNSUPPORTED ? "unsupported" : "invalid", (int)r, err);
    if (r == MANIFEST_OK)
        manifest_free(m);
}

static void test_oci_manifest(void)
{
    static const char body[] =
        "{\n"
        "  'schemaVersion': 2,\n"
        "  'mediaType': 'application/vnd.oci.image.manifest.v1+json',\n"
        "  'config': {\n"
        "    'mediaType': 'application/vnd.oci.image.config.v1+json',\n"
        "    'digest': '" D1 "',\n"
        "    'size': 7023\n"
        "  },\n"
        "  'layers': [\n"
        "    {'mediaType': 'application/vnd.oci.image.layer.v1.tar+gzip', 'digest': '" D2 "', 'size': 32654},\n"
        "    {'mediaType': 'application/vnd.oci.image.layer.v1.tar+zstd', 'digest': '" D3 "', 'size': 16724,\n"
        "     'annotations': {'org.opencontainers.image.title': 'x.tar'}},\n"
        "    {'mediaType': 'application/vnd.oci.image.layer.v1.tar', 'digest': '" D5 "', 'size': 73109,\n"
        "     'urls': []}\n"
        "  ],\n"
        "  'annotations': {'com.example.key2': 'value2', 'com.example.key1': 'value1'}\n"
        "}\n";
    manifest_t *m;
    manifest_err_t r = parse(&m, MT_OCI_MANIFEST, body);

    ok(r == MANIFEST_OK && m != NULL, "OCI image manifest parses (%s)", err);
    if (r != MANIFEST_OK)
        return;
    ok(err[0] == '\0', "err is empty on success");
    ok(m->kind == MANIFEST_IMAGE, "kind is image");
    ok(strcmp(m->media_type, MT_OCI_MANIFEST) == 0, "media type");
    ok(m->artifact_type != NULL && strcmp(m->artifact_type, "application/vnd.oci.image.config.v1+json") == 0,
       "artifact type falls back to the config media type");
    ok(!m->has_subject, "no subject");
    ok(m->annotations_json != NULL &&
           strcmp(m->annotations_json, "{\"com.example.key1\":\"value1\",\"com.example.key2\":\"value2\"}") == 0,
       "annotations are compact with sorted keys (%s)", m->annotations_json);
    ok(m->nrefs == 4, "config + 3 layers (%zu)", m->nrefs);
    ok(m->refs[0].kind == REF_CONFIG && strcmp(m->refs[0].digest.str, D1) == 0 && m->refs[0].size == 7023 &&
           strcmp(m->refs[0].media_type, "application/vnd.oci.image.config.v1+json") == 0 && !m->refs[0].foreign,
       "config ref");
    ok(m->refs[1].kind == REF_LAYER && strcmp(m->refs[1].digest.str, D2) == 0 && m->refs[1].size == 32654 &&
           strcmp(m->refs[1].media_type, "application/vnd.oci.image.layer.v1.tar+gzip") == 0 && !m->refs[1].foreign,
       "layer 0");
    ok(m->refs[2].kind == REF_LAYER && strcmp(digest_hex(&m->refs[2].digest), &D3[7]) == 0 && m->refs[2].size == 16724,
       "layer 1, digest_hex(&digest) points into its own digest");
    ok(m->refs[3].digest.algo == DIGEST_SHA512 && strcmp(m->refs[3].digest.str, D5) == 0 && !m->refs[3].foreign,
       "layer 2 is sha512; empty urls is not foreign");
    for (size_t i = 0; i < m->nrefs; ++i)
        ok(digest_hex(&m->refs[i].digest) == m->refs[i].digest.str + 7,
           "ref %zu digest_hex(&digest) points into refs[%zu]", i, i);
    manifest_free(m);

    /* the same body with Content-Type parameters and whitespace, or no Content-Type at all */
    ok(parse(&m, "application/vnd.oci.image.manifest.v1+json; charset=utf-8", body) == MANIFEST_OK,
       "Content-Type with charset");
    manifest_free(m);
    ok(parse(&m, "  application/vnd.oci.image.manifest.v1+json ;charset=utf-8", body) == MANIFEST_OK,
       "Content-Type with spaces");
    manifest_free(m);
    ok(parse(&m, NULL, body) == MANIFEST_OK && strcmp(m->media_type, MT_OCI_MANIFEST) == 0, "no Content-Type");
    manifest_free(m);
    ok(parse(&m, "", body) == MANIFEST_OK, "empty Content-Type counts as none");
    manifest_free(m);
}

static void test_docker_manifest(void)
{
    static const char body[] =
        "{'schemaVersion': 2, 'mediaType': 'application/vnd.docker.distribution.manifest.v2+json',\n"
        " 'config': {'mediaType': 'application/vnd.docker.container.image.v1+json', 'size': 1512, 'digest': '" D1
        "'},\n"
        " 'layers': [\n"
        "  {'mediaType': 'application/vnd.docker.image.rootfs.diff.tar.gzip', 'size': 2811969, 'digest': '" D2 "'},\n"
        "  {'mediaType': 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip', 'size': 1429653183,\n"
        "   'digest': '" D3 "', 'urls': ['https://mcr.microsoft.com/v2/windows/servercore/blobs/" D3 "']},\n"
        "  {'mediaType': 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip', 'size': 5, 'digest': '" D4
        "'},\n"
        "  {'mediaType': 'application/vnd.docker.image.rootfs.diff.tar.gzip', 'size': 6, 'digest': '" D4 "',\n"
        "   'urls': ['https://example.com/blob']}\n"
        " ]}";
    manifest_t *m;
    manifest_err_t r = parse(&m, MT_DOCKER_MANIFEST, body);

    ok(r == MANIFEST_OK, "Docker schema 2 manifest parses (%s)", err);
    if (r != MANIFEST_OK)
        return;
    ok(m->kind == MANIFEST_IMAGE && strcmp(m->media_type, MT_DOCKER_MANIFEST) == 0, "kind and media type");
    ok(strcmp(m->artifact_type, "application/vnd.docker.container.image.v1+json") == 0,
       "artifact type is the config's");
    ok(m->annotations_json == NULL, "no annotations");
    ok(m->nrefs == 5, "5 refs");
    ok(!m->refs[1].foreign, "ordinary layer is not foreign");
    ok(m->refs[2].foreign && m->refs[2].size == 1429653183, "Windows foreign layer");
    ok(m->refs[3].foreign, "OCI nondistributable layer");
    ok(m->refs[4].foreign, "layer with urls");
    ok(m->refs[3].kind == REF_LAYER && m->refs[4].kind == REF_LAYER &&
           digest_equal(&m->refs[3].digest, &m->refs[4].digest),
       "same blob twice is two refs");
    manifest_free(m);

    ok(parse(&m, NULL,
             "{'schemaVersion':2,'config':{'mediaType':'a','size':1,'digest':'" D1 "'},'layers':["
             "{'mediaType':'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip','size':1,'digest':'" D2 "'},"
             "{'mediaType':'application/vnd.oci.image.layer.v1.tar','size':1,'digest':'" D2
             "','urls':null}]}") == MANIFEST_OK &&
           m->nrefs == 3 && m->refs[1].foreign && !m->refs[2].foreign && !m->refs[0].foreign,
       "foreign media type alone makes a layer foreign; null urls do not");
    manifest_free(m);

    /* a body without mediaType takes the Content-Type as its media type */
    ok(parse(&m, MT_DOCKER_MANIFEST,
             "{'schemaVersion':2,'config':{'mediaType':'a','size':1,'digest':'" D1 "'},'layers':[]}") == MANIFEST_OK &&
           strcmp(m->media_type, MT_DOCKER_MANIFEST) == 0,
       "media type from the Content-Type when the body has none");
    manifest_free(m);
}

static void test_index(void)
{
    static const char oci[] =
        "{'schemaVersion': 2, 'mediaType': 'application/vnd.oci.image.index.v1+json',\n"
        " 'manifests': [\n"
        "  {'mediaType': 'application/vnd.oci.image.manifest.v1+json', 'size': 7143, 'digest': '" D1 "',\n"
        "   'platform': {'architecture': 'ppc64le', 'os': 'linux'}},\n"
        "  {'mediaType': 'application/vnd.oci.image.manifest.v1+json', 'size': 7682, 'digest': '" D2 "',\n"
        "   'platform': {'architecture': 'amd64', 'os': 'linux'}, 'urls': ['https://example.com']}\n"
        " ],\n"
        " 'annotations': {'com.example.key1': 'value1'}}";
    static const char docker[] =
        "{'schemaVersion': 2, 'mediaType': 'application/vnd.docker.distribution.manifest.list.v2+json',\n"
        " 'manifests': [\n"
        "  {'mediaType': 'application/vnd.docker.distribution.manifest.v2+json', 'digest': '" D3 "', 'size': 528,\n"
        "   'platform': {'architecture': 'arm', 'os': 'linux', 'variant': 'v7'}},\n"
        "  {'mediaType': 'application/vnd.docker.distribution.manifest.v2+json', 'digest': '" D4 "', 'size': 528,\n"
        "   'platform': {'architecture': 'amd64', 'os': 'windows', 'os.version': '10.0.17763.1040'}}\n"
        " ]}";
    manifest_t *m;

    ok(parse(&m, MT_OCI_INDEX, oci) == MANIFEST_OK, "OCI index parses (%s)", err);
    if (m != NULL) {
        ok(m->kind == MANIFEST_INDEX && strcmp(m->media_type, MT_OCI_INDEX) == 0, "index kind and media type");
        ok(m->artifact_type == NULL, "an index without artifactType has none");
        ok(m->nrefs == 2 && m->refs[0].kind == REF_MANIFEST && m->refs[1].kind == REF_MANIFEST, "two manifest refs");
        ok(strcmp(m->refs[0].digest.str, D1) == 0 && m->refs[0].size == 7143 && strcmp(m->refs[1].digest.str, D2) == 0,
           "manifest refs' digests and sizes");
        ok(!m->refs[1].foreign, "urls do not make a manifest ref foreign");
        ok(strcmp(m->annotations_json, "{\"com.example.key1\":\"value1\"}") == 0, "index annotations");
        manifest_free(m);
    }
    ok(parse(&m, MT_DOCKER_LIST, docker) == MANIFEST_OK, "Docker manifest list parses (%s)", err);
    if (m != NULL) {
        ok(m->kind == MANIFEST_INDEX && strcmp(m->media_type, MT_DOCKER_LIST) == 0, "list kind and media type");
        ok(m->nrefs == 2 && strcmp(m->refs[1].digest.str, D4) == 0 && m->refs[1].size == 528, "list refs");
        ok(strcmp(m->refs[0].media_type, MT_DOCKER_MANIFEST) == 0, "list ref media type");
        manifest_free(m);
    }
    ok(parse(&m, NULL, "{'schemaVersion':2,'manifests':[]}") == MANIFEST_OK && m->kind == MANIFEST_INDEX &&
           strcmp(m->media_type, MT_OCI_INDEX) == 0 && m->nrefs == 0,
       "empty index without mediaType is inferred as an OCI index");
    manifest_free(m);
}

static void test_artifacts(void)
{
    static const char sbom[] =
        "{'schemaVersion': 2, 'mediaType': 'application/vnd.oci.image.manifest.v1+json',\n"
        " 'artifactType': 'application/vnd.example.sbom.v1',\n"
        " 'config': {'mediaType': 'application/vnd.oci.empty.v1+json', 'digest': '" EMPTY_CFG "', 'size': 2,\n"
        "            'data': 'e30='},\n"
        " 'layers': [{'mediaType': 'application/vnd.example.sbom.v1+json', 'digest': '" D2 "', 'size': 123}],\n"
        " 'subject': {'mediaType': 'application/vnd.oci.image.manifest.v1+json', 'digest': '" D1 "', 'size': 1234},\n"
        " 'annotations': {'org.opencontainers.image.created': '2023-01-02T03:04:05Z'}}";
    static const char helm[] =
        "{'schemaVersion': 2,\n"
        " 'config': {'mediaType': 'application/vnd.cncf.helm.config.v1+json', 'digest': '" D1 "', 'size': 117},\n"
        " 'layers': [{'mediaType': 'application/vnd.cncf.helm.chart.content.v1.tar+gzip', 'digest': '" D2 "',\n"
        "             'size': 3563}]}";
    static const char signature_index[] =
        "{'schemaVersion': 2, 'mediaType': 'application/vnd.oci.image.index.v1+json',\n"
        " 'artifactType': 'application/vnd.example.signatures', 'manifests': [],\n"
        " 'subject': {'mediaType': 'application/vnd.oci.image.index.v1+json', 'digest': '" D5 "', 'size': 99}}";
    manifest_t *m;

    ok(parse(&m, MT_OCI_MANIFEST, sbom) == MANIFEST_OK, "artifact with artifactType and subject parses (%s)", err);
    if (m != NULL) {
        ok(strcmp(m->artifact_type, "application/vnd.example.sbom.v1") == 0, "artifactType wins over the config's");
        ok(m->has_subject && strcmp(m->subject.str, D1) == 0 && digest_hex(&m->subject) == m->subject.str + 7,
           "subject digest");
        ok(m->nrefs == 2 && strcmp(m->refs[0].digest.str, EMPTY_CFG) == 0 && m->refs[0].size == 2, "empty config ref");
        ok(strcmp(m->annotations_json, "{\"org.opencontainers.image.created\":\"2023-01-02T03:04:05Z\"}") == 0,
           "artifact annotations");
        manifest_free(m);
    }
    ok(parse(&m, MT_OCI_MANIFEST, helm) == MANIFEST_OK, "Helm chart without mediaType parses (%s)", err);
    if (m != NULL) {
        ok(strcmp(m->media_type, MT_OCI_MANIFEST) == 0, "media type from the Content-Type");
        ok(strcmp(m->artifact_type, "application/vnd.cncf.helm.config.v1+json") == 0,
           "config media type as artifact type");
        ok(!m->has_subject, "no subject");
        manifest_free(m);
    }
    ok(parse(&m, NULL, helm) == MANIFEST_OK && strcmp(m->media_type, MT_OCI_MANIFEST) == 0,
       "a body with config and no media type anywhere is an OCI manifest");
    manifest_free(m);
    ok(parse(&m, MT_OCI_INDEX, signature_index) == MANIFEST_OK, "index with artifactType and subject parses (%s)", err);
    if (m != NULL) {
        ok(strcmp(m->artifact_type, "application/vnd.example.signatures") == 0 && m->nrefs == 0, "index artifact type");
        ok(m->has_subject && m->subject.algo == DIGEST_SHA512 && strcmp(m->subject.str, D5) == 0, "index subject");
        manifest_free(m);
    }
    ok(parse(&m, NULL,
             "{'schemaVersion':2,'artifactType':'','config':{'mediaType':'c/d','digest':'" D1 "','size':0},"
             "'layers':[],'subject':null,'annotations':null}") == MANIFEST_OK &&
           strcmp(m->artifact_type, "c/d") == 0 && !m->has_subject && m->annotations_json == NULL && m->nrefs == 1,
       "empty artifactType and null optional fields count as absent (%s)", err);
    manifest_free(m);
    ok(parse(&m, NULL,
             "{'schemaVersion':2,'mediaType':'application/vnd.example+json','config':{'mediaType':'c/d','digest':'" D1
             "','size':9007199254740993},'layers':[],'annotations':{}}") == MANIFEST_OK &&
           m->kind == MANIFEST_IMAGE && strcmp(m->media_type, "application/vnd.example+json") == 0 &&
           m->refs[0].size == 9007199254740993LL && strcmp(m->annotations_json, "{}") == 0,
       "unknown mediaType with config is an image; sizes beyond 2^53 are exact; empty annotations (%s)", err);
    manifest_free(m);
    ok(parse(&m, NULL,
             "{'schemaVersion':2,'schemaVersion':2,'mediaType':'x','mediaType':'" MT_OCI_INDEX
             "','manifests':[]}") == MANIFEST_OK &&
           strcmp(m->media_type, MT_OCI_INDEX) == 0,
       "duplicate keys are allowed, the last one wins");
    manifest_free(m);
}

static void test_unsupported(void)
{
    static const char schema1[] =
        "{'schemaVersion': 1, 'name': 'hello-world', 'tag': 'latest', 'architecture': 'amd64',\n"
        " 'fsLayers': [{'blobSum': '" D1 "'}], 'history': [{'v1Compatibility': '{}'}]}";
    static const char oci_body[] =
        "{'schemaVersion':2,'config':{'mediaType':'a','digest':'" D1 "','size':1},'layers':[]}";

    expect_fail("schema 1 body", NULL, schema1, MANIFEST_EUNSUPPORTED, "schema 1");
    expect_fail("schema 1 body with its Content-Type", MT_DOCKER_SCHEMA1, schema1, MANIFEST_EUNSUPPORTED, "schema 1");
    expect_fail("schema 1 signed Content-Type", MT_DOCKER_SCHEMA1_SIGNED, schema1, MANIFEST_EUNSUPPORTED, "schema 1");
    expect_fail("schema 1 Content-Type with parameters", MT_DOCKER_SCHEMA1_SIGNED "; charset=utf-8", oci_body,
                MANIFEST_EUNSUPPORTED, "schema 1");
    expect_fail("schema 1 Content-Type with a non-JSON body", MT_DOCKER_SCHEMA1, "not json", MANIFEST_EUNSUPPORTED,
                "schema 1");
    expect_fail("schema 1 mediaType in the body", NULL,
                "{'schemaVersion':2,'mediaType':'" MT_DOCKER_SCHEMA1 "','config':{},'layers':[]}",
                MANIFEST_EUNSUPPORTED, "schema 1");
    expect_fail("schemaVersion 3", NULL, "{'schemaVersion':3,'manifests':[]}", MANIFEST_EUNSUPPORTED,
                "schemaVersion 3");
    expect_fail("schemaVersion 0", NULL, "{'schemaVersion':0,'manifests':[]}", MANIFEST_EUNSUPPORTED, "schemaVersion");
    expect_fail("schemaVersion -2", NULL, "{'schemaVersion':-2,'manifests':[]}", MANIFEST_EUNSUPPORTED,
                "schemaVersion");
}

static void test_invalid(void)
{
#define cfg "'config':{'mediaType':'a','digest':'" D1 "','size':1}"
#define IMG(extra) "{'schemaVersion':2," cfg ",'layers':[]" extra "}"
#define LAYER(desc) "{'schemaVersion':2," cfg ",'layers':[" desc "]}"
    static const char empty_index[] = "{'schemaVersion':2,'manifests':[]}";

    /* JSON */
    expect_fail("empty body", NULL, "", MANIFEST_EINVALID, "invalid JSON");
    expect_fail("truncated JSON", NULL, "{'schemaVersion':2,", MANIFEST_EINVALID, "line 1");
    expect_fail("JSON with trailing garbage", NULL, "{'schemaVersion':2,'manifests':[]} x", MANIFEST_EINVALID,
                "invalid JSON");
    expect_fail("a second line's error names the line", NULL, "{\n'schemaVersion':2,\n'x': tru}", MANIFEST_EINVALID,
                "line 3");
    expect_fail("JSON array", NULL, "[]", MANIFEST_EINVALID, "object");
    expect_fail("JSON null", NULL, "null", MANIFEST_EINVALID, "");
    expect_fail("JSON string", NULL, "'x'", MANIFEST_EINVALID, "");
    expect_fail("JSON with \\u0000", NULL, "{'schemaVersion':2,'manifests':[],'a':'\\u0000'}", MANIFEST_EINVALID,
                "JSON");
    expect_fail("invalid UTF-8", NULL, "{'schemaVersion':2,'manifests':[],'a':'\xff'}", MANIFEST_EINVALID, "JSON");

    /* schemaVersion and mediaType */
    expect_fail("missing schemaVersion", NULL, "{'manifests':[]}", MANIFEST_EINVALID, "schemaVersion");
    expect_fail("string schemaVersion", NULL, "{'schemaVersion':'2','manifests':[]}", MANIFEST_EINVALID,
                "schemaVersion");
    expect_fail("real schemaVersion", NULL, "{'schemaVersion':2.0,'manifests':[]}", MANIFEST_EINVALID, "schemaVersion");
    expect_fail("null schemaVersion", NULL, "{'schemaVersion':null,'manifests':[]}", MANIFEST_EINVALID,
                "schemaVersion");
    expect_fail("mediaType not a string", NULL, "{'schemaVersion':2,'mediaType':7,'manifests':[]}", MANIFEST_EINVALID,
                "mediaType");
    expect_fail("Content-Type mismatch", MT_DOCKER_MANIFEST,
                "{'schemaVersion':2,'mediaType':'" MT_OCI_MANIFEST "'," cfg ",'layers':[]}", MANIFEST_EINVALID,
                "does not match the Content-Type");
    /* found by fuzz/fuzz_manifest.c: a mediaType with parameters was stored and served as the Content-Type, where a
     * client reads it as another type (and berth itself refused the same bytes pushed under that Content-Type) */
    expect_fail("mediaType with a parameter", NULL,
                "{'schemaVersion':2,'mediaType':'application/vnd.oci.image.man;ifest.v1+json'," cfg ",'layers':[]}",
                MANIFEST_EINVALID, "is not a media type");
    expect_fail("mediaType with a space", NULL,
                "{'schemaVersion':2,'mediaType':'" MT_OCI_MANIFEST " '," cfg ",'layers':[]}", MANIFEST_EINVALID,
                "is not a media type");
    expect_fail("mediaType without a subtype", NULL,
                "{'schemaVersion':2,'mediaType':'application/'," cfg ",'layers':[]}", MANIFEST_EINVALID,
                "is not a media type");
    expect_fail("mediaType without a slash", NULL, "{'schemaVersion':2,'mediaType':'manifest'," cfg ",'layers':[]}",
                MANIFEST_EINVALID, "is not a media type");
    expect_fail("mediaType starting with '+'", NULL, "{'schemaVersion':2,'mediaType':'+a/b'," cfg ",'layers':[]}",
                MANIFEST_EINVALID, "is not a media type");
    manifest_t *m;
    ok(parse(&m, NULL, "{'schemaVersion':2,'mediaType':'application/vnd.example+json'," cfg ",'layers':[]}") ==
               MANIFEST_OK &&
           strcmp(m->media_type, "application/vnd.example+json") == 0,
       "another media type in RFC 6838's form is taken (%s)", err);
    manifest_free(m);

    expect_fail("Content-Type differs in case", "Application/vnd.oci.image.index.v1+json",
                "{'schemaVersion':2,'mediaType':'" MT_OCI_INDEX "','manifests':[]}", MANIFEST_EINVALID,
                "does not match");
    expect_fail("index Content-Type, image body", MT_OCI_INDEX, IMG(""), MANIFEST_EINVALID, "index");
    expect_fail("image Content-Type, index body", MT_OCI_MANIFEST, empty_index, MANIFEST_EINVALID, "manifests");
    expect_fail("neither config nor manifests", NULL, "{'schemaVersion':2,'layers':[]}", MANIFEST_EINVALID, "neither");
    expect_fail("unknown media type, no content", "application/octet-stream", "{'schemaVersion':2}", MANIFEST_EINVALID,
                "neither");

    /* image manifests */
    expect_fail("missing config", NULL, "{'schemaVersion':2,'mediaType':'" MT_OCI_MANIFEST "','layers':[]}",
                MANIFEST_EINVALID, "config");
    expect_fail("null config", MT_DOCKER_MANIFEST, "{'schemaVersion':2,'config':null,'layers':[]}", MANIFEST_EINVALID,
                "config");
    expect_fail("config not an object", NULL, "{'schemaVersion':2,'config':[],'layers':[]}", MANIFEST_EINVALID,
                "config:");
    expect_fail("missing layers", NULL, "{'schemaVersion':2," cfg "}", MANIFEST_EINVALID, "layers");
    expect_fail("layers not an array", NULL, "{'schemaVersion':2," cfg ",'layers':{}}", MANIFEST_EINVALID, "layers");
    expect_fail("config and manifests together", NULL, IMG(",'manifests':[]"), MANIFEST_EINVALID, "manifests");
    expect_fail("config without mediaType", NULL,
                "{'schemaVersion':2,'config':{'digest':'" D1 "','size':1},'layers':[]}", MANIFEST_EINVALID,
                "config: mediaType");
    expect_fail("layer not an object", NULL, LAYER("'" D1 "'"), MANIFEST_EINVALID, "layers[0]");
    expect_fail("layer without mediaType", NULL, LAYER("{'digest':'" D1 "','size':1}"), MANIFEST_EINVALID,
                "layers[0]: mediaType");
    expect_fail("layer mediaType a number", NULL, LAYER("{'mediaType':1,'digest':'" D1 "','size':1}"),
                MANIFEST_EINVALID, "mediaType");
    expect_fail("bad digest in the second layer", NULL,
                LAYER("{'mediaType':'l','digest':'" D1 "','size':1},{'mediaType':'l','digest':'sha256:xyz','size':1}"),
                MANIFEST_EINVALID, "layers[1]: invalid digest \"sha256:xyz\"");
    expect_fail(
        "uppercase digest", NULL,
        LAYER("{'mediaType':'l','digest':'sha256:B2AA39C304C27B96C1FEF0C06BEE651AC9241D49C4FE34381CAB8453F9A89C7D',"
              "'size':1}"),
        MANIFEST_EINVALID, "invalid digest");
    expect_fail("unsupported digest algorithm", NULL, LAYER("{'mediaType':'l','digest':'md5:abc','size':1}"),
                MANIFEST_EINVALID, "unsupported digest algorithm in \"md5:abc\"");
    expect_fail("missing digest", NULL, LAYER("{'mediaType':'l','size':1}"), MANIFEST_EINVALID, "digest");
    expect_fail("digest a number", NULL, LAYER("{'mediaType':'l','digest':5,'size':1}"), MANIFEST_EINVALID, "digest");
    expect_fail("negative size", NULL, LAYER("{'mediaType':'l','digest':'" D1 "','size':-1}"), MANIFEST_EINVALID,
                "size");
    expect_fail("string size", NULL, LAYER("{'mediaType':'l','digest':'" D1 "','size':'1'}"), MANIFEST_EINVALID,
                "size");
    expect_fail("real size", NULL, LAYER("{'mediaType':'l','digest':'" D1 "','size':1.5}"), MANIFEST_EINVALID, "size");
    expect_fail("missing size", NULL, LAYER("{'mediaType':'l','digest':'" D1 "'}"), MANIFEST_EINVALID, "size");
    expect_fail("size beyond int64", NULL, LAYER("{'mediaType':'l','digest':'" D1 "','size':99999999999999999999}"),
                MANIFEST_EINVALID, "");
    expect_fail("urls not an array", NULL, LAYER("{'mediaType':'l','digest':'" D1 "','size':1,'urls':'http://x'}"),
                MANIFEST_EINVALID, "urls");
    expect_fail("urls with a number", NULL, LAYER("{'mediaType':'l','digest':'" D1 "','size':1,'urls':[1]}"),
                MANIFEST_EINVALID, "urls");

    /* indexes */
    expect_fail("index without manifests", NULL, "{'schemaVersion':2,'mediaType':'" MT_OCI_INDEX "'}",
                MANIFEST_EINVALID, "manifests");
    expect_fail("manifests not an array", NULL, "{'schemaVersion':2,'manifests':{}}", MANIFEST_EINVALID, "manifests");
    expect_fail("index with layers", MT_DOCKER_LIST, "{'schemaVersion':2,'manifests':[],'layers':[]}",
                MANIFEST_EINVALID, "layers");
    expect_fail("bad digest in an index", NULL,
                "{'schemaVersion':2,'manifests':[{'mediaType':'m','digest':'sha256:','size':1}]}", MANIFEST_EINVALID,
                "manifests[0]: invalid digest");

    /* optional fields */
    expect_fail("subject not an object", NULL, IMG(",'subject':'" D1 "'"), MANIFEST_EINVALID, "subject");
    expect_fail("subject with a bad digest", NULL, IMG(",'subject':{'mediaType':'m','digest':'sha256','size':1}"),
                MANIFEST_EINVALID, "subject: invalid digest");
    expect_fail("artifactType a number", NULL, IMG(",'artifactType':1"), MANIFEST_EINVALID, "artifactType");
    expect_fail("annotations an array", NULL, IMG(",'annotations':[]"), MANIFEST_EINVALID, "annotations");
    expect_fail("annotation value a number", NULL, IMG(",'annotations':{'a':'b','n':1}"), MANIFEST_EINVALID, "\"n\"");
#undef IMG
#undef LAYER
#undef cfg
}

static void test_err_buffer(void)
{
    manifest_t *m = (manifest_t *)1;
    char small[8];
    static const char bad[] =
        "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"m\",\"digest\":\"sha256:x\",\"size\":1}]}";

    memset(small, 'X', sizeof(small));
    ok(manifest_parse(&m, NULL, 0, bad, strlen(bad), small, sizeof(small)) == MANIFEST_EINVALID && m == NULL &&
           memchr(small, '\0', sizeof(small)) != NULL && strlen(small) == 7,
       "a short err buffer is filled and NUL-terminated (\"%s\")", small);
    ok(manifest_parse(&m, NULL, 0, bad, strlen(bad), NULL, 0) == MANIFEST_EINVALID, "NULL err buffer is allowed");
    ok(manifest_parse(&m, NULL, 0, NULL, 0, err, sizeof(err)) == MANIFEST_EINVALID && m == NULL, "NULL body");
    static const char idx[] = "{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_INDEX "\",\"manifests\":[]}";
    ok(manifest_parse(&m, MT_OCI_INDEX, 5, idx, strlen(idx), err, sizeof(err)) == MANIFEST_EINVALID &&
           strstr(err, "\"appli\"") != NULL,
       "Content-Type honours ctlen (%s)", err);
    if (m != NULL)
        manifest_free(m);
    manifest_free(NULL);
    ok(1, "manifest_free(NULL) is a no-op");
}

static void test_media_type_known(void)
{
    ok(manifest_media_type_known(MT_OCI_MANIFEST, strlen(MT_OCI_MANIFEST)), "OCI manifest is known");
    ok(manifest_media_type_known(MT_OCI_INDEX, strlen(MT_OCI_INDEX)), "OCI index is known");
    ok(manifest_media_type_known(MT_DOCKER_MANIFEST, strlen(MT_DOCKER_MANIFEST)), "Docker manifest is known");
    ok(manifest_media_type_known(MT_DOCKER_LIST, strlen(MT_DOCKER_LIST)), "Docker list is known");
    ok(manifest_media_type_known(MT_OCI_INDEX "; charset=utf-8", strlen(MT_OCI_INDEX) + 15), "parameters ignored");
    ok(manifest_media_type_known(" " MT_OCI_INDEX " ", strlen(MT_OCI_INDEX) + 2), "whitespace ignored");
    ok(manifest_media_type_known(MT_OCI_INDEX "xyz", strlen(MT_OCI_INDEX)), "len honoured");
    ok(!manifest_media_type_known(MT_OCI_INDEX, strlen(MT_OCI_INDEX) - 1), "truncated is unknown");
    ok(!manifest_media_type_known(MT_DOCKER_SCHEMA1, strlen(MT_DOCKER_SCHEMA1)), "schema 1 is unknown");
    ok(!manifest_media_type_known(MT_DOCKER_SCHEMA1_SIGNED, strlen(MT_DOCKER_SCHEMA1_SIGNED)),
       "signed schema 1 is unknown");
    ok(!manifest_media_type_known("application/json", 16), "application/json is unknown");
    ok(!manifest_media_type_known("APPLICATION/VND.OCI.IMAGE.INDEX.V1+JSON", 39), "case matters");
    ok(!manifest_media_type_known("", 0), "empty is unknown");
    ok(!manifest_media_type_known(NULL, 0), "NULL is unknown");
}

int main(void)
{
    test_oci_manifest();
    test_docker_manifest();
    test_index();
    test_artifacts();
    test_unsupported();
    test_invalid();
    test_err_buffer();
    test_media_type_known();
    return tap_done();
}

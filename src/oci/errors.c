#include "oci/errors.h"

static const struct {
    const char *code;
    int status;
    const char *message;
} table[ERR__COUNT] = {
    [ERR_BLOB_UNKNOWN] = {"BLOB_UNKNOWN", 404, "blob unknown to registry"},
    [ERR_BLOB_UPLOAD_INVALID] = {"BLOB_UPLOAD_INVALID", 400, "blob upload invalid"},
    [ERR_BLOB_UPLOAD_UNKNOWN] = {"BLOB_UPLOAD_UNKNOWN", 404, "blob upload unknown to registry"},
    [ERR_RANGE_INVALID] = {"BLOB_UPLOAD_INVALID", 416, "requested range not satisfiable"},
    [ERR_DIGEST_INVALID] = {"DIGEST_INVALID", 400, "provided digest did not match uploaded content"},
    [ERR_MANIFEST_BLOB_UNKNOWN] = {"MANIFEST_BLOB_UNKNOWN", 400,
                                   "manifest references a manifest or blob unknown to registry"},
    [ERR_MANIFEST_INVALID] = {"MANIFEST_INVALID", 400, "manifest invalid"},
    [ERR_MANIFEST_UNKNOWN] = {"MANIFEST_UNKNOWN", 404, "manifest unknown to registry"},
    [ERR_NAME_INVALID] = {"NAME_INVALID", 400, "invalid repository name"},
    [ERR_NAME_UNKNOWN] = {"NAME_UNKNOWN", 404, "repository name not known to registry"},
    [ERR_SIZE_INVALID] = {"SIZE_INVALID", 400, "provided length did not match content length"},
    [ERR_TOO_LARGE] = {"SIZE_INVALID", 413, "payload too large"},
    [ERR_UNAUTHORIZED] = {"UNAUTHORIZED", 401, "authentication required"},
    [ERR_DENIED] = {"DENIED", 403, "requested access to the resource is denied"},
    [ERR_UNSUPPORTED] = {"UNSUPPORTED", 400, "the operation is unsupported"},
    [ERR_METHOD_UNKNOWN] = {"UNSUPPORTED", 405, "the method is not supported on this resource"},
    [ERR_TOOMANYREQUESTS] = {"TOOMANYREQUESTS", 429, "too many requests"},
    [ERR_NOT_FOUND] = {"NOT_FOUND", 404, "not found"},
    [ERR_UNAVAILABLE] = {"UNAVAILABLE", 503, "service unavailable"},
    [ERR_NO_SPACE] = {"UNAVAILABLE", 507, "insufficient storage"},
    [ERR_INTERNAL] = {"INTERNAL_ERROR", 500, "internal server error"},
};

const char *err_code_name(err_code_t e)
{
    return table[e].code;
}

int err_code_status(err_code_t e)
{
    return table[e].status;
}

const char *err_code_message(err_code_t e)
{
    return table[e].message;
}

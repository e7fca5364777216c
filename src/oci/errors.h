/*
 * The distribution spec's error codes, each with its HTTP status: the one table through which every error
 * reaches a client. Internal code returns an err_code_t; the HTTP edge turns it into
 * {"errors":[{"code","message","detail"}]}.
 */
#ifndef BERTH_OCI_ERRORS_H
#define BERTH_OCI_ERRORS_H

typedef enum {
    ERR_BLOB_UNKNOWN,
    ERR_BLOB_UPLOAD_INVALID,
    ERR_BLOB_UPLOAD_UNKNOWN,
    ERR_RANGE_INVALID, /* BLOB_UPLOAD_INVALID with 416: a chunk out of order */
    ERR_DIGEST_INVALID,
    ERR_MANIFEST_BLOB_UNKNOWN,
    ERR_MANIFEST_INVALID,
    ERR_MANIFEST_UNKNOWN,
    ERR_NAME_INVALID,
    ERR_NAME_UNKNOWN,
    ERR_SIZE_INVALID,
    ERR_TOO_LARGE, /* SIZE_INVALID with 413 */
    ERR_UNAUTHORIZED,
    ERR_DENIED,
    ERR_UNSUPPORTED,
    ERR_METHOD_UNKNOWN, /* UNSUPPORTED with 405 */
    ERR_TOOMANYREQUESTS,
    ERR_NOT_FOUND,   /* a path outside the API: NOT_FOUND with 404 */
    ERR_UNAVAILABLE, /* UNAVAILABLE with 503: shutting down, storage failing, out of descriptors or memory */
    ERR_NO_SPACE,    /* UNAVAILABLE with 507: the storage volume is (nearly) full */
    ERR_INTERNAL,
    ERR__COUNT
} err_code_t;

/** The spec's code string ("BLOB_UNKNOWN"), the HTTP status, and the spec's default message for an error. */
const char *err_code_name(err_code_t e);
int err_code_status(err_code_t e);
const char *err_code_message(err_code_t e);

#endif

/* Building responses: the spec's JSON errors (one place, from the table in oci/errors.h), JSON bodies, headers. */
#ifndef BERTH_HTTP_RESPONSE_H
#define BERTH_HTTP_RESPONSE_H

#include <h2o.h>
#include <jansson.h>
#include "oci/errors.h"

/**
 * Send {"errors":[{"code","message","detail"}]} with the error's status. `detail` (may be NULL) is a JSON value
 * the function takes ownership of (e.g. json_pack("{s:s}", "digest", d)); `message` NULL means the table's.
 */
void res_error(h2o_req_t *req, err_code_t e, const char *message, json_t *detail);

/** Send `body` (taken: it is freed) as application/json with `status`. */
void res_json(h2o_req_t *req, int status, json_t *body);

/**
 * Answer a failure of the system call behind `what` (e.g. "cannot open the blob") with errno `e`, and log it:
 * no space 507, out of descriptors or memory 503 with Retry-After, anything else 500. Never "not found".
 */
void res_errno(h2o_req_t *req, int e, const char *what);

/** Send a response without a body (Content-Length: 0, or the given length for HEAD answers). */
void res_empty(h2o_req_t *req, int status);

/** Send `len` bytes at `data` (copied into the request's pool) with `status` and `content_type`. */
void res_bytes(h2o_req_t *req, int status, const char *content_type, const void *data, size_t len);

/** Add a response header (the value is copied into the request's pool). */
void res_header(h2o_req_t *req, const char *name, const char *value);
void res_headerf(h2o_req_t *req, const char *name, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/** The value of request header `name` (lower case), or NULL; its length in *len. */
const char *req_header(h2o_req_t *req, const char *name, size_t *len);

/** The longest X-Request-Id a client may give (a longer one, or one with other characters than [A-Za-z0-9-_.:+/=],
 * is replaced by berth's own). */
#define REQ_ID_MAX 64
/** The name under which the router keeps a request's id in req->env (beside the X-Request-Id answer header). */
#define REQ_ID_ENV "request_id"

/** The id the router gave the request (a NUL-terminated string in its pool), or NULL before. */
const char *req_id(h2o_req_t *req);

/**
 * The percent-decoded value of query parameter `key` in the request's path, copied into the pool and
 * NUL-terminated; NULL if absent. With `nth` > 0, the nth occurrence (0-based) of a repeated key.
 */
char *req_query(h2o_req_t *req, const char *key, int nth);

/** The same for an application/x-www-form-urlencoded string `s` of `len` bytes (a query or a POST body). */
char *form_value(h2o_mem_pool_t *pool, const char *s, size_t len, const char *key, int nth);

#endif

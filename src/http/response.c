#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "http/response.h"
#include "util/log.h"

static const char *reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 206:
        return "Partial Content";
    case 307:
        return "Temporary Redirect";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 413:
        return "Payload Too Large";
    case 416:
        return "Range Not Satisfiable";
    case 429:
        return "Too Many Requests";
    case 503:
        return "Service Unavailable";
    case 507:
        return "Insufficient Storage";
    default:
        return "Internal Server Error";
    }
}

void res_header(h2o_req_t *req, const char *name, const char *value)
{
    size_t vlen = strlen(value);
    char *v = h2o_mem_alloc_pool(&req->pool, vlen + 1);
    memcpy(v, value, vlen + 1);
    h2o_add_header_by_str(&req->pool, &req->res.headers, name, strlen(name), 1, NULL, v, vlen);
}

void res_headerf(h2o_req_t *req, const char *name, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    res_header(req, name, buf);
}

void res_bytes(h2o_req_t *req, int status, const char *content_type, const void *data, size_t len)
{
    static h2o_generator_t generator = {NULL, NULL};
    req->res.status = status;
    req->res.reason = reason(status);
    req->res.content_length = len;
    if (content_type)
        h2o_set_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, content_type, strlen(content_type), 1);
    h2o_iovec_t body = h2o_strdup(&req->pool, data, len);
    h2o_start_response(req, &generator);
    h2o_send(req, &body, h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD")) ? 0 : 1,
             H2O_SEND_STATE_FINAL);
}

void res_errno(h2o_req_t *req, int e, const char *what)
{
    char msg[256];
    snprintf(msg, sizeof(msg), "%s%s%s", what, e ? ": " : "", e ? strerror(e) : "");
    switch (e) {
    case ENOSPC:
    case EDQUOT:
        log_error("%s (answered 507)", msg);
        res_error(req, ERR_NO_SPACE, msg, NULL);
        return;
    case EMFILE:
    case ENFILE:
    case ENOMEM:
    case ENOBUFS:
    case EAGAIN:
        log_error("%s (answered 503)", msg);
        res_header(req, "retry-after", "5");
        res_error(req, ERR_UNAVAILABLE, msg, NULL);
        return;
    default:
        log_error("%s (answered 500)", msg);
        res_error(req, ERR_INTERNAL, msg, NULL);
    }
}

void res_empty(h2o_req_t *req, int status)
{
    res_bytes(req, status, NULL, "", 0);
}

void res_json(h2o_req_t *req, int status, json_t *body)
{
    char *s = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    res_bytes(req, status, "application/json", s, strlen(s));
    free(s);
}

void res_error(h2o_req_t *req, err_code_t e, const char *message, json_t *detail)
{
    json_t *err = json_pack("{s:s,s:s}", "code", err_code_name(e), "message", message ? message : err_code_message(e));
    json_object_set_new(err, "detail", detail ? detail : json_object());
    res_json(req, err_code_status(e), json_pack("{s:[o]}", "errors", err));
}

const char *req_header(h2o_req_t *req, const char *name, size_t *len)
{
    ssize_t i = h2o_find_header_by_str(&req->headers, name, strlen(name), -1);
    if (i < 0)
        return NULL;
    *len = req->headers.entries[i].value.len;
    return req->headers.entries[i].value.base;
}

const char *req_id(h2o_req_t *req)
{
    for (size_t i = 0; i + 1 < req->env.size; i += 2)
        if (h2o_memis(req->env.entries[i].base, req->env.entries[i].len, H2O_STRLIT(REQ_ID_ENV)))
            return req->env.entries[i + 1].base;
    return NULL;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

char *form_value(h2o_mem_pool_t *pool, const char *s, size_t len, const char *key, int nth)
{
    const char *p = s, *end = s + len;
    size_t klen = strlen(key);
    while (p < end) {
        const char *amp = memchr(p, '&', end - p);
        if (amp == NULL)
            amp = end;
        const char *eq = memchr(p, '=', amp - p);
        const char *kend = eq ? eq : amp;
        if ((size_t)(kend - p) == klen && memcmp(p, key, klen) == 0 && nth-- == 0) {
            const char *v = eq ? eq + 1 : amp;
            char *out = h2o_mem_alloc_pool(pool, amp - v + 1), *o = out;
            for (; v < amp; ++v) {
                int hi, lo;
                if (*v == '%' && amp - v >= 3 && (hi = hexval(v[1])) >= 0 && (lo = hexval(v[2])) >= 0 &&
                    (hi | lo) != 0) {
                    *o++ = (char)(hi << 4 | lo);
                    v += 2;
                } else if (*v == '+') {
                    *o++ = ' ';
                } else {
                    *o++ = *v;
                }
            }
            *o = '\0';
            return out;
        }
        p = amp + 1;
    }
    return NULL;
}

char *req_query(h2o_req_t *req, const char *key, int nth)
{
    if (req->query_at == SIZE_MAX)
        return NULL;
    size_t at = req->query_at + 1;
    return form_value(&req->pool, req->path.base + at, req->path.len - at, key, nth);
}

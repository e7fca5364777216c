/*
 * The parameters of an upstream registry's `WWW-Authenticate` challenge (RFC 9110 section 11.6.1), such as
 *   Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/x:pull"
 * Pure: the mirror's HTTP client (upstream.c) calls it, the fuzzer (fuzz/fuzz_challenge.c) too.
 */
#ifndef BERTH_MIRROR_CHALLENGE_H
#define BERTH_MIRROR_CHALLENGE_H

#include <stddef.h>

/**
 * The value of parameter `key` (matched case-insensitively) in `ch`, the challenge's parameters after its scheme
 * ("realm=\"…\",service=…"): a quoted string (backslash escapes removed) or a token running to the next comma.
 * Copied into `buf` (`size` > 0 bytes, truncated to fit, NUL-terminated). 0 if found, -1 if not.
 */
int challenge_param(const char *ch, const char *key, char *buf, size_t size);

#endif

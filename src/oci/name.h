/*
 * The distribution spec's grammar for repository names and tags.
 *   name      = path-component ("/" path-component)*
 *   path-comp = [a-z0-9]+ (separator [a-z0-9]+)*,  separator = "." | "_" | "__" | "-"+
 *   tag       = [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}
 */
#ifndef BERTH_OCI_NAME_H
#define BERTH_OCI_NAME_H

#include <stddef.h>

#define NAME_MAX_LEN 255 /* berth's limit on a whole repository name (distribution uses 255 too) */
#define TAG_MAX_LEN 128

/** 1 if `s` (length `len`) is a valid repository name, else 0. Never touches anything beyond s[len-1]. */
int name_valid(const char *s, size_t len);

/** 1 if `s` (length `len`) is a valid tag, else 0. */
int tag_valid(const char *s, size_t len);

#endif

/*
 * Scopes of the Docker registry token protocol: "repository:<name>:<actions>" and "registry:catalog:*".
 * Actions are pull, push, delete and "*" (all of them); unknown actions are ignored, as distribution does.
 */
#ifndef BERTH_OCI_SCOPE_H
#define BERTH_OCI_SCOPE_H

#include <stddef.h>

enum { ACTION_PULL = 1, ACTION_PUSH = 2, ACTION_DELETE = 4, ACTION_ALL = 7 };

#define SCOPE_NAME_MAX 255

typedef enum { SCOPE_REPOSITORY = 0, SCOPE_REGISTRY = 1 } scope_type_t;

typedef struct {
    scope_type_t type;
    char name[SCOPE_NAME_MAX + 1]; /* repository name (validated), or "catalog" */
    unsigned actions;              /* ACTION_* bits */
} scope_t;

/**
 * Parse one scope ("repository:a/b:pull,push", "repository:a/b:*", "registry:catalog:*"). The name must be a
 * valid repository name (or "catalog" for type registry); a name with a port-like "host:port/" prefix is not a
 * repository berth serves and is invalid. Returns 0 or -1.
 */
int scope_parse(scope_t *out, const char *s, size_t len);

/**
 * Parse a space-separated list of scopes (the OAuth2 form's `scope`; runs of spaces allowed) into `out` (capacity
 * `cap`). Invalid entries are skipped; a resource named twice takes one entry with the union of its actions, and
 * entries beyond `cap` are dropped. Returns the number stored.
 */
size_t scope_parse_list(scope_t *out, size_t cap, const char *s, size_t len);

/**
 * Format actions as "pull,push,delete" (in that order, only those set; "" for none) into buf; returns buf. A buffer
 * too small gets only the names that fit whole.
 */
char *scope_actions_format(unsigned actions, char *buf, size_t len);

/** Parse one action name ("pull", "push", "delete", "*"); 0 if unknown. */
unsigned scope_action_parse(const char *s, size_t len);

#endif

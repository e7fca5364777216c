#include <string.h>
#include <strings.h>
#include "mirror/challenge.h"

int challenge_param(const char *ch, const char *key, char *buf, size_t size)
{
    size_t klen = strlen(key);
    for (const char *p = ch; *p != '\0';) {
        while (*p == ' ' || *p == ',')
            ++p;
        const char *eq = strchr(p, '=');
        if (eq == NULL)
            return -1;
        int match = (size_t)(eq - p) == klen && strncasecmp(p, key, klen) == 0;
        size_t n = 0;
        p = eq + 1;
        if (*p == '"') {
            for (++p; *p != '\0' && *p != '"'; ++p) {
                if (*p == '\\' && p[1] != '\0')
                    ++p;
                if (match && n + 1 < size)
                    buf[n++] = *p;
            }
            if (*p == '"')
                ++p;
        } else {
            for (; *p != '\0' && *p != ','; ++p)
                if (match && n + 1 < size)
                    buf[n++] = *p;
        }
        if (match) {
            buf[n] = '\0';
            return 0;
        }
    }
    return -1;
}

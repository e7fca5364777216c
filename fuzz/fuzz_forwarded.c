/*
 * libFuzzer target for the client address behind trusted proxies (limiter_client_addr in src/auth/limiter.c), which
 * reads the X-Forwarded-For header: the rate limiter keys failed logins on it. The first byte picks the peer, the
 * list of trusted proxies and the size of the buffer; the rest is the header's value. Compared with the rule
 * limiter.h states: the peer's address, unless the peer is one of the trusted proxies and the header's last entry
 * (blanks trimmed) is non-empty and fits.
 */
#include "auth/limiter.h"
#include "fuzz.h"

/* Is `addr` one of the comma-separated `list` (blanks around entries allowed)? */
static int listed(const char *list, const char *addr)
{
    char *copy = fuzz_strndup(list, strlen(list)), *save = NULL;
    int found = 0;
    for (char *e = strtok_r(copy, ",", &save); e != NULL; e = strtok_r(NULL, ",", &save)) {
        e += strspn(e, " ");
        size_t n = strlen(e);
        while (n > 0 && e[n - 1] == ' ')
            --n;
        found |= n == strlen(addr) && strncmp(e, addr, n) == 0;
    }
    free(copy);
    return found;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const peers[] = {"10.0.0.1", "2001:db8::7", "", "192.0.2.7"};
    static const char *const trusted[] = {"10.0.0.1", " 10.0.0.1 , 2001:db8::7", "", "192.0.2.7,10.0.0.1", "10.0.0"};
    static const size_t lens[] = {1, 7, 46, 64};
    unsigned pick = size != 0 ? data[0] : 0;
    const char *peer = peers[pick % 4], *list = trusted[pick / 4 % 5];
    size_t len = lens[pick / 20 % 4];
    if (size != 0) {
        ++data;
        --size;
    }
    const char *xff = pick / 80 % 2 ? NULL : (const char *)data; /* absent, or the input */
    char buf[64], want[64];

    memset(buf, 'X', sizeof(buf));
    limiter_client_addr(buf, len, peer, xff, xff != NULL ? size : 0, list);
    CHECK(memchr(buf, '\0', len) != NULL);

    snprintf(want, len, "%s", peer);
    if (xff != NULL && *peer != '\0' && listed(list, peer)) {
        const char *comma = memrchr(xff, ',', size), *last = comma != NULL ? comma + 1 : xff;
        size_t n = (size_t)(xff + size - last);
        while (n > 0 && *last == ' ')
            ++last, --n;
        while (n > 0 && last[n - 1] == ' ')
            --n;
        if (n > 0 && n < len) {
            memcpy(want, last, n);
            want[n] = '\0';
        }
    }
    if (strcmp(buf, want) != 0 || memcmp(buf, want, strlen(want) + 1) != 0)
        fprintf(stderr, "peer %s, trusted \"%s\", %zu bytes: got \"%s\", want \"%s\"\n", peer, list, len, buf, want);
    CHECK(memcmp(buf, want, strlen(want) + 1) == 0);
    return 0;
}

/*
 * The failed-login rate limiter (src/auth/limiter.c) with an injected clock: when the backoff starts, how it grows
 * and where it stops, what a success forgets, how keys share slots; and the client address it keys on, behind
 * trusted proxies or not.
 */
#include <stdio.h>
#include <string.h>
#include "auth/limiter.h"
#include "tap.h"

/* a key whose slot is `slot` (the slot is the first two bytes), told apart from others by `tag` */
static void key_of(unsigned char *key, unsigned slot, unsigned char tag)
{
    memset(key, tag, LIMITER_KEY_LEN);
    key[0] = (unsigned char)(slot >> 8);
    key[1] = (unsigned char)slot;
}

static void test_backoff(void)
{
    limiter_t *l = limiter_new(3, 1000);
    unsigned char k[LIMITER_KEY_LEN];
    int64_t now = 1000000;
    key_of(k, 7, 'a');
    ok(limiter_wait(l, k, now) == 0, "an unknown key need not wait");
    limiter_record(l, k, 0, now);
    limiter_record(l, k, 0, now);
    ok(limiter_wait(l, k, now) == 0, "two failures of three allowed: no wait yet");
    limiter_record(l, k, 0, now);
    ok(limiter_wait(l, k, now) == 1000, "the third failure: wait the first backoff (1000 ms)");
    ok(limiter_wait(l, k, now + 400) == 600, "the wait counts down with the clock (600 ms left)");
    ok(limiter_wait(l, k, now + 1000) == 0, "and ends when the backoff is over");
    now += 1000;
    limiter_record(l, k, 0, now);
    ok(limiter_wait(l, k, now) == 2000, "the fourth failure doubles it (2000 ms)");
    limiter_record(l, k, 0, now);
    ok(limiter_wait(l, k, now) == 4000, "the fifth doubles it again (4000 ms)");
    for (int i = 0; i < 40; ++i)
        limiter_record(l, k, 0, now);
    ok(limiter_wait(l, k, now) == LIMITER_MAX_BACKOFF_MS, "many failures: the wait stops at 15 minutes");
    limiter_record(l, k, 1, now);
    ok(limiter_wait(l, k, now) == 0, "a success forgets the key at once");
    limiter_record(l, k, 0, now);
    ok(limiter_wait(l, k, now) == 0, "and its count starts again from zero");
    limiter_record(l, k, 0, now);
    ok(limiter_wait(l, k, now) == 0, "two failures again");
    now += LIMITER_FORGET_MS;
    limiter_record(l, k, 0, now);
    ok(limiter_wait(l, k, now) == 0, "a third an hour after the last: counted as the first (no wait)");
    limiter_record(l, k, 0, now + 1);
    limiter_record(l, k, 0, now + 2);
    ok(limiter_wait(l, k, now + 2) == 1000, "two more within the hour: the third, 1000 ms");
    limiter_free(l);

    l = limiter_new(1, 0);
    limiter_record(l, k, 0, now);
    ok(limiter_wait(l, k, now) == 0, "a backoff of 0 never makes anyone wait");
    limiter_free(l);

    l = limiter_new(1, 10 * 60 * 1000);
    limiter_record(l, k, 0, now);
    limiter_record(l, k, 0, now);
    ok(limiter_wait(l, k, now) == LIMITER_MAX_BACKOFF_MS, "a doubled long backoff is capped too");
    limiter_free(l);
    limiter_free(NULL);
}

static void test_slots(void)
{
    limiter_t *l = limiter_new(1, 1000);
    unsigned char a[LIMITER_KEY_LEN], b[LIMITER_KEY_LEN], c[LIMITER_KEY_LEN];
    int64_t now = 5000;
    key_of(a, 3, 'a');
    key_of(b, 3, 'b');
    key_of(c, 4, 'a');
    limiter_record(l, a, 0, now);
    ok(limiter_wait(l, a, now) == 1000, "key a waits");
    ok(limiter_wait(l, b, now) == 0, "key b, in the same slot, does not");
    ok(limiter_wait(l, c, now) == 0, "key c, in another slot, does not");
    limiter_record(l, b, 1, now);
    ok(limiter_wait(l, a, now) == 1000, "a success of b leaves a's record in the shared slot");
    limiter_record(l, c, 0, now);
    limiter_record(l, c, 0, now);
    ok(limiter_wait(l, a, now) == 1000 && limiter_wait(l, c, now) == 2000, "keys in different slots count apart");
    limiter_record(l, b, 0, now);
    ok(limiter_wait(l, b, now) == 1000, "a failure of b takes the slot over, counting from one");
    ok(limiter_wait(l, a, now) == 0, "and a's record is gone (memory stays bounded)");
    key_of(a, 3 + LIMITER_SLOTS, 'b');
    ok(a[0] != b[0] || a[1] != b[1], "a key whose first bytes differ …");
    ok(limiter_wait(l, a, now) == 0, "… is still not mistaken for b though the slot number wraps to the same slot");
    limiter_free(l);
}

static int addr_is(const char *peer, const char *xff, const char *trusted, const char *want)
{
    char buf[64];
    limiter_client_addr(buf, sizeof(buf), peer, xff, xff ? strlen(xff) : 0, trusted);
    if (strcmp(buf, want) != 0) {
        printf("# peer %s xff %s trusted %s: got '%s', want '%s'\n", peer, xff ? xff : "(none)",
               trusted ? trusted : "(null)", buf, want);
        return 0;
    }
    return 1;
}

static void test_client_addr(void)
{
    ok(addr_is("10.0.0.1", NULL, NULL, "10.0.0.1"), "no trusted proxies: the peer");
    ok(addr_is("10.0.0.1", "1.2.3.4", NULL, "10.0.0.1"), "no trusted proxies: X-Forwarded-For ignored");
    ok(addr_is("10.0.0.1", "1.2.3.4", "", "10.0.0.1"), "an empty list trusts nobody");
    ok(addr_is("10.0.0.1", "1.2.3.4", "10.0.0.2", "10.0.0.1"), "an untrusted peer's X-Forwarded-For is ignored");
    ok(addr_is("10.0.0.1", "1.2.3.4", "10.0.0.1", "1.2.3.4"), "a trusted proxy: the address it appended");
    ok(addr_is("10.0.0.1", "6.6.6.6, 1.2.3.4", "10.0.0.1", "1.2.3.4"), "the last entry, not what the client made up");
    ok(addr_is("10.0.0.1", "6.6.6.6,1.2.3.4  ", "10.0.0.1", "1.2.3.4"), "blanks around the last entry dropped");
    ok(addr_is("10.0.0.1", "1.2.3.4", " 10.0.0.9 , 10.0.0.1 ", "1.2.3.4"), "a list with blanks, the peer second");
    ok(addr_is("10.0.0.1", "1.2.3.4", "10.0.0.10", "10.0.0.1"), "a prefix of a listed address is not listed");
    ok(addr_is("10.0.0.10", "1.2.3.4", "10.0.0.1", "10.0.0.10"), "nor is a longer address");
    ok(addr_is("::1", "2001:db8::1", "127.0.0.1,::1", "2001:db8::1"), "IPv6 peers and addresses");
    ok(addr_is("10.0.0.1", NULL, "10.0.0.1", "10.0.0.1"), "a trusted proxy without X-Forwarded-For: the peer");
    ok(addr_is("10.0.0.1", "1.2.3.4,", "10.0.0.1", "10.0.0.1"), "an empty last entry: the peer");
    ok(addr_is("10.0.0.1", "   ", "10.0.0.1", "10.0.0.1"), "a blank header: the peer");
    ok(addr_is("", "1.2.3.4", "10.0.0.1", ""), "no peer address: nothing, whatever the header says");
    char big[200];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    ok(addr_is("10.0.0.1", big, "10.0.0.1", "10.0.0.1"), "an entry too long for the buffer: the peer");
    char buf[64];
    const char *xff = "1.2.3.4, 5.6.7.8";
    limiter_client_addr(buf, sizeof(buf), "10.0.0.1", xff, 7, "10.0.0.1");
    ok(strcmp(buf, "1.2.3.4") == 0, "the header's length is respected (no NUL needed)");

    /* found by fuzz/fuzz_forwarded.c: the peer was looked up in the list as cut to the buffer, so that with a buffer
     * shorter than the address an untrusted peer whose address starts with a listed one was trusted (berth's
     * buffers hold any address: a latent bug) */
    limiter_client_addr(buf, 7, "10.0.0.1", "6.6.6", 5, "10.0.0");
    ok(strcmp(buf, "10.0.0") == 0, "a peer cut to the buffer is not the listed address it was cut to");
    limiter_client_addr(buf, 7, "192.0.2.7", "39", 2, "192.0.2.7");
    ok(strcmp(buf, "39") == 0, "a listed peer cut to the buffer is still listed");
}

int main(void)
{
    test_backoff();
    test_slots();
    test_client_addr();
    return tap_done();
}

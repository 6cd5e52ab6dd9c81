/*
 * fl_threads.c - one flush connection used from several threads, as
 * threaded servers do: a thread blocked in FL_receive while others send and
 * flush on the same mailbox, and FL_disconnect waking the blocked receiver.
 *
 * usage: fl_threads <daemon>
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <fl.h>

#define SENDERS 4
#define PER_SENDER 50

static const char *Group = "flthreads";
static mailbox A, B;
static char Apriv[MAX_GROUP_NAME], Bpriv[MAX_GROUP_NAME];

static pthread_mutex_t Lock = PTHREAD_MUTEX_INITIALIZER;
static int A_views, A_view_size, A_flush_req, A_msgs, A_done, A_last_ret;
static int failures;

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        printf("FAIL line %d: ", __LINE__);                                                        \
        printf(__VA_ARGS__);                                                                       \
        printf("\n");                                                                              \
        failures++;                                                                                \
    } while (0)

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Blocking receiver of A, until the mailbox goes away. */
static void *receiver(void *arg)
{
    static char body[1024];
    (void)arg;
    for (;;) {
        char groups[8][MAX_GROUP_NAME], sender[MAX_GROUP_NAME];
        service s = 0;
        int ng, endian, more, ret;
        int16 mt;
        ret = FL_receive(A, &s, sender, 8, &ng, groups, &mt, &endian, sizeof(body), body, &more);
        pthread_mutex_lock(&Lock);
        if (ret < 0) {
            A_last_ret = ret;
            A_done = 1;
            pthread_mutex_unlock(&Lock);
            return NULL;
        }
        if (Is_reg_memb_mess(s)) {
            A_views++;
            A_view_size = ng;
        } else if (Is_flush_req_mess(s)) {
            A_flush_req++;
        } else if (Is_regular_mess(s)) {
            A_msgs++;
        }
        pthread_mutex_unlock(&Lock);
    }
}

static void *sender(void *arg)
{
    int id = (int)(long)arg, i;
    char text[64];
    for (i = 0; i < PER_SENDER; i++) {
        int len = snprintf(text, sizeof(text), "t%d:%d", id, i);
        int ret = FL_multicast(A, AGREED_MESS, Group, (int16)id, len, text);
        if (ret != len)
            FAIL("sender %d: FL_multicast %d", id, ret);
    }
    return NULL;
}

/* Read everything B has (DONT_BLOCK); flush when asked. */
static int B_views, B_view_size, B_msgs;
static void pump_b(void)
{
    static char body[1024];
    for (;;) {
        char groups[8][MAX_GROUP_NAME], sender[MAX_GROUP_NAME];
        service s = DONT_BLOCK;
        int ng, endian, more, ret;
        int16 mt;
        ret = FL_receive(B, &s, sender, 8, &ng, groups, &mt, &endian, sizeof(body), body, &more);
        if (ret == WOULD_BLOCK)
            return;
        if (ret < 0) {
            FAIL("B receive %d", ret);
            return;
        }
        if (Is_reg_memb_mess(s)) {
            B_views++;
            B_view_size = ng;
        } else if (Is_flush_req_mess(s)) {
            if ((ret = FL_flush(B, sender)) != 0)
                FAIL("B flush %d", ret);
        } else if (Is_regular_mess(s)) {
            B_msgs++;
        }
    }
}

static int wait_until(int (*cond)(void))
{
    double end = now() + 15;
    while (now() < end) {
        int ok;
        pump_b();
        pthread_mutex_lock(&Lock);
        ok = cond();
        pthread_mutex_unlock(&Lock);
        if (ok)
            return 1;
        usleep(2000);
    }
    return 0;
}

static int a_has_view1(void) { return A_views >= 1 && A_view_size == 1; }
static int a_asked(void) { return A_flush_req >= 1; }
static int both_view2(void) { return A_view_size == 2 && B_view_size == 2; }
static int all_msgs(void) { return A_msgs >= SENDERS * PER_SENDER && B_msgs >= SENDERS * PER_SENDER; }
static int a_done(void) { return A_done; }

int main(int argc, char **argv)
{
    pthread_t r, s[SENDERS];
    int i, ret;
    if (argc < 2)
        return 2;
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (FL_connect(argv[1], "tha", 0, &A, Apriv) != ACCEPT_SESSION ||
        FL_connect(argv[1], "thb", 0, &B, Bpriv) != ACCEPT_SESSION) {
        printf("connect failed\n");
        return 2;
    }
    pthread_create(&r, NULL, receiver, NULL);
    if ((ret = FL_join(A, Group)) != 0)
        FAIL("join A %d", ret);
    if (!wait_until(a_has_view1))
        FAIL("A never got its first view");

    /* B joins: A's receiver thread is told, the main thread flushes A. */
    if ((ret = FL_join(B, Group)) != 0)
        FAIL("join B %d", ret);
    if (!wait_until(a_asked))
        FAIL("A was never asked to flush");
    if ((ret = FL_flush(A, Group)) != 0)
        FAIL("flush A from another thread: %d", ret);
    if (!wait_until(both_view2))
        FAIL("no view of 2 (A %d, B %d)", A_view_size, B_view_size);

    /* Several threads send on A while A's receiver is blocked in FL_receive. */
    for (i = 0; i < SENDERS; i++)
        pthread_create(&s[i], NULL, sender, (void *)(long)i);
    for (i = 0; i < SENDERS; i++)
        pthread_join(s[i], NULL);
    if (!wait_until(all_msgs))
        FAIL("messages lost: A got %d, B got %d of %d", A_msgs, B_msgs, SENDERS * PER_SENDER);
    if (A_msgs != SENDERS * PER_SENDER || B_msgs != SENDERS * PER_SENDER)
        FAIL("messages duplicated: A got %d, B got %d", A_msgs, B_msgs);

    /* Disconnecting wakes the blocked receiver with an error. */
    usleep(100000);
    if ((ret = FL_disconnect(A)) != 0)
        FAIL("disconnect A %d", ret);
    if (!wait_until(a_done))
        FAIL("blocked receiver not woken by FL_disconnect");
    else
        pthread_join(r, NULL);
    if (A_last_ret != ILLEGAL_SESSION && A_last_ret != CONNECTION_CLOSED)
        FAIL("receiver ended with %d", A_last_ret);
    FL_disconnect(B);
    printf("fl_threads: %d failed\n", failures);
    return failures == 0 ? 0 : 1;
}

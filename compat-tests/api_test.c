/*
 * api_test.c - exercises every function of sp.h against a running daemon,
 * including the error paths. Part of spread-rs (MIT OR Apache-2.0).
 *
 * usage: api_test <spread_name for TCP, e.g. 4803@127.0.0.1> <port, for the Unix socket>
 * Exit status 0 when every check passed. Each check prints one line.
 * Build with -DORIGINAL_LIBRARY to run it against the original 4.4 library
 * (it skips what only this library does).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "sp.h"

/* Exported by the library (as by the original), never declared in sp.h. */
int SP_query_groups(mailbox mbox, int max_groups, char *groups[MAX_GROUP_NAME]);
int SP_query_members(mailbox mbox, char *group, int max_members, char *members[MAX_GROUP_NAME]);
int E_in_queue(void (*func)(int code, void *data), int code, void *data);
int E_detach_fd_priority(int fd, int fd_type, int priority);

static int failures = 0, checks = 0;

#define CHECK(cond, ...)                                                     \
    do {                                                                     \
        checks++;                                                            \
        if (cond) {                                                          \
            printf("ok   %d: ", __LINE__);                                   \
        } else {                                                             \
            failures++;                                                      \
            printf("FAIL %d: ", __LINE__);                                   \
        }                                                                    \
        printf(__VA_ARGS__);                                                 \
        printf("\n");                                                        \
        fflush(stdout);                                                      \
    } while (0)

#define EXPECT_EQ(got, want, what)                                           \
    do {                                                                     \
        long g_ = (long)(got), w_ = (long)(want);                            \
        CHECK(g_ == w_, "%s: got %ld, want %ld", what, g_, w_);              \
    } while (0)

static const char *tcp_name, *unix_name;
static char tag[8];

/* Wait until the mailbox is readable, at most ms milliseconds. */
static int wait_readable(mailbox m, int ms)
{
    fd_set rs;
    struct timeval tv;
    FD_ZERO(&rs);
    FD_SET(m, &rs);
    tv.tv_sec = ms / 1000;
    tv.tv_usec = (ms % 1000) * 1000;
    return select(m + 1, &rs, NULL, NULL, &tv) == 1;
}

/* Wait until SP_poll reports at least want bytes, at most ms milliseconds. */
static int wait_poll(mailbox m, int want, int ms)
{
    int waited;
    for (waited = 0; waited < ms; waited += 5) {
        if (SP_poll(m) >= want)
            return SP_poll(m);
        usleep(5000);
    }
    return SP_poll(m);
}

typedef struct {
    int ret;
    service st;
    char sender[MAX_GROUP_NAME];
    int num_groups;
    char groups[16][MAX_GROUP_NAME];
    int16 mess_type;
    int endian;
    char body[2000];
} recv_t;

/* Receive one message (bounded wait first). */
static int recv1(mailbox m, recv_t *r)
{
    memset(r, 0, sizeof(*r));
    if (!wait_readable(m, 3000)) {
        r->ret = -1000;
        return r->ret;
    }
    r->st = 0;
    r->ret = SP_receive(m, &r->st, r->sender, 16, &r->num_groups, r->groups, &r->mess_type, &r->endian,
                        sizeof(r->body), r->body);
    return r->ret;
}

static void name(char *out, const char *prefix)
{
    sprintf(out, "%s%s", prefix, tag);
}

static int auth_calls = 0;
static int count_auth(int fd, void *data)
{
    struct stat st;
    auth_calls++;
    return fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode) && data == (void *)&auth_calls;
}
static int refuse_auth(int fd, void *data)
{
    (void)fd;
    (void)data;
    return 0;
}

static void test_version_auth(void)
{
    int a = -1, b = -1, c = -1;
    const char *names[2] = {"NULL", "NULL"};
    int (*funcs[2])(int, void *) = {count_auth, count_auth};
    void *datas[2] = {&auth_calls, &auth_calls};
    char long_name[40];

    EXPECT_EQ(SP_version(&a, &b, &c), 1, "SP_version");
    CHECK(a == 4 && b == 4 && c == 0, "version %d.%d.%d", a, b, c);
    EXPECT_EQ(SP_version(NULL, &b, &c), 0, "SP_version(NULL)");

    memset(long_name, 'x', 35);
    long_name[35] = 0;
    EXPECT_EQ(SP_set_auth_method(long_name, count_auth, NULL), 0, "auth name too long");
    EXPECT_EQ(SP_set_auth_method("NULL", NULL, NULL), 0, "auth func NULL");
    EXPECT_EQ(SP_set_auth_methods(4, names, funcs, datas), 0, "too many auth methods");
    EXPECT_EQ(SP_set_auth_methods(2, names, funcs, datas), 1, "two auth methods");
    EXPECT_EQ(SP_set_auth_method("NULL", count_auth, &auth_calls), 1, "SP_set_auth_method");
}

static void test_connect_errors(void)
{
    mailbox m;
    char pg[MAX_GROUP_NAME], n1[16], bad[16];
    int ret;
    sp_time t = {2, 0};

    EXPECT_EQ(SP_connect("abc", "x", 0, 1, &m, pg), ILLEGAL_SPREAD, "spread name 'abc'");
    EXPECT_EQ(SP_connect("4803x", "x", 0, 1, &m, pg), ILLEGAL_SPREAD, "spread name '4803x'");
    EXPECT_EQ(SP_connect("4803@", "x", 0, 1, &m, pg), ILLEGAL_SPREAD, "spread name '4803@'");
    EXPECT_EQ(SP_connect("4803@no-such-host.invalid", "x", 0, 1, &m, pg), ILLEGAL_SPREAD, "unknown host");
    EXPECT_EQ(SP_connect("1", "x", 0, 1, &m, pg), COULD_NOT_CONNECT, "no daemon on /tmp/1");
    EXPECT_EQ(SP_connect_timeout("1@127.0.0.1", "x", 0, 1, &m, pg, t), COULD_NOT_CONNECT,
              "no daemon on 127.0.0.1:1");

    name(bad, "b#");
    EXPECT_EQ(SP_connect(tcp_name, bad, 0, 1, &m, pg), REJECT_ILLEGAL_NAME, "private name with '#'");

    name(n1, "u");
    ret = SP_connect(tcp_name, n1, 0, 1, &m, pg);
    EXPECT_EQ(ret, ACCEPT_SESSION, "connect for the collision");
    EXPECT_EQ(SP_connect(unix_name, n1, 0, 1, &m, pg), REJECT_NOT_UNIQUE, "same name twice");
    if (ret == ACCEPT_SESSION)
        SP_disconnect(m);

    /* fresh names: the daemon may not have seen the disconnect above yet */
    EXPECT_EQ(SP_set_auth_method("FOO", count_auth, NULL), 1, "register method FOO");
    name(n1, "v");
    EXPECT_EQ(SP_connect(tcp_name, n1, 0, 1, &m, pg), REJECT_AUTH, "method the daemon does not offer");
    EXPECT_EQ(SP_set_auth_method("NULL", refuse_auth, NULL), 1, "register refusing method");
    name(n1, "w");
    EXPECT_EQ(SP_connect(tcp_name, n1, 0, 1, &m, pg), REJECT_AUTH, "method refuses");
    EXPECT_EQ(SP_set_auth_method("NULL", count_auth, &auth_calls), 1, "register counting method");
}

static mailbox connect_ok(const char *daemon, const char *prefix, int memb, char *pg)
{
    mailbox m = -1;
    char n[16];
    int before = auth_calls, ret;
    name(n, prefix);
    ret = SP_connect(daemon, n, 0, memb, &m, pg);
    EXPECT_EQ(ret, ACCEPT_SESSION, "SP_connect");
    CHECK(auth_calls == before + 1, "auth callback ran once on the socket");
    CHECK(strncmp(pg, "#", 1) == 0 && strstr(pg, n) == pg + 1, "private group %s", pg);
    return m;
}

static void test_memb_accessors(recv_t *r, const char *changed)
{
    membership_info mi;
    vs_set_info sets[4];
    unsigned int mine = 99;
    char members[4][MAX_GROUP_NAME];
    scatter sc;
    int n, room = 4;

    memset(&mi, 0xff, sizeof(mi));
    EXPECT_EQ(SP_get_memb_info(r->body, r->st, &mi), 1, "SP_get_memb_info");
    CHECK(strcmp(mi.changed_member, changed) == 0, "changed_member %s", mi.changed_member);
    EXPECT_EQ(mi.num_vs_sets, 1, "num_vs_sets");
    EXPECT_EQ(mi.my_vs_set.num_members, 1, "my_vs_set.num_members");
    EXPECT_EQ(mi.my_vs_set.members_offset, 24, "my_vs_set.members_offset");
    EXPECT_EQ(SP_get_memb_info(r->body, AGREED_MESS, &mi), ILLEGAL_MESSAGE, "memb info of a data message");

    EXPECT_EQ(SP_get_vs_sets_info(r->body, sets, 0, &mine), BUFFER_TOO_SHORT, "vs sets, no room");
    EXPECT_EQ(SP_get_vs_sets_info(r->body, sets, 4, &mine), 1, "SP_get_vs_sets_info");
    EXPECT_EQ(mine, 0, "my vs set index");
    EXPECT_EQ(SP_get_vs_set_members(r->body, &sets[0], members, 0), BUFFER_TOO_SHORT, "members, no room");
    EXPECT_EQ(SP_get_vs_set_members(r->body, &sets[0], members, 4), 1, "SP_get_vs_set_members");
    CHECK(strcmp(members[0], changed) == 0, "vs set member %s", members[0]);

    /* The same through a scatter cut at odd places. (The original library
     * misreads scatters whose fields straddle elements: one element there.) */
    sc.num_elements = 3;
    sc.elements[0].buf = r->body;
    sc.elements[0].len = 7;
    sc.elements[1].buf = r->body + 7;
    sc.elements[1].len = 20;
    sc.elements[2].buf = r->body + 27;
    sc.elements[2].len = r->ret - 27;
#ifdef ORIGINAL_LIBRARY
    sc.num_elements = 1;
    sc.elements[0].len = r->ret;
    room = 1; /* and reads as many sets as there is room for */
#endif
    memset(&mi, 0, sizeof(mi));
    EXPECT_EQ(SP_scat_get_memb_info(&sc, r->st, &mi), 1, "SP_scat_get_memb_info");
    CHECK(strcmp(mi.changed_member, changed) == 0, "scat changed_member %s", mi.changed_member);
    mine = 99;
    EXPECT_EQ(SP_scat_get_vs_sets_info(&sc, sets, room, &mine), 1, "SP_scat_get_vs_sets_info");
    EXPECT_EQ(mine, 0, "scat my vs set index");
    memset(members, 0, sizeof(members));
    n = SP_scat_get_vs_set_members(&sc, &sets[0], members, 4);
    EXPECT_EQ(n, 1, "SP_scat_get_vs_set_members");
    CHECK(strcmp(members[0], changed) == 0, "scat vs set member %s", members[0]);
    EXPECT_EQ(SP_scat_get_vs_set_members(&sc, &sets[0], members, 0), BUFFER_TOO_SHORT, "scat members, no room");

#ifndef ORIGINAL_LIBRARY /* the original 4.4 library does not export them */
    /* Spread 3.x offsets: count and names of the (first) set. */
    EXPECT_EQ(SP_get_gid_offset_memb_mess(), 0, "gid offset");
    EXPECT_EQ(*(int *)(r->body + SP_get_num_vs_offset_memb_mess()), 1, "3.x num_vs");
    CHECK(strcmp(r->body + SP_get_vs_set_offset_memb_mess(), changed) == 0, "3.x vs_set name %s",
          r->body + SP_get_vs_set_offset_memb_mess());
#endif
}

struct flood_arg {
    mailbox m;
    const char *group;
    int count;
    int sent;
};

static void *sender_thread(void *p)
{
    struct flood_arg *a = p;
    int i;
    char buf[64];
    for (i = 0; i < a->count; i++) {
        snprintf(buf, sizeof(buf), "thread message %d", i);
        if (SP_multicast(a->m, FIFO_MESS, a->group, (int16)i, (int)strlen(buf) + 1, buf) > 0)
            a->sent++;
    }
    return NULL;
}

static int event_hits = 0;
static mailbox event_box;
static void on_readable(int fd, int code, void *data)
{
    recv_t r;
    (void)data;
    if (fd == event_box && code == 7 && recv1(fd, &r) > 0 && strcmp(r.body, "via events") == 0)
        event_hits++;
    E_exit_events();
}
static char event_group[MAX_GROUP_NAME];
static void send_later(int code, void *data)
{
    (void)code;
    SP_multicast(*(mailbox *)data, AGREED_MESS, event_group, 0, 11, "via events");
}
static int never_called = 0;
static void never(int code, void *data)
{
    (void)code;
    (void)data;
    never_called++;
}

static void test_events(mailbox a, mailbox b, const char *group)
{
    sp_time t0, t1, d = {0, 50000}, x = {5, 900000}, y = {1, 200000}, r;
    strcpy(event_group, group);
    event_box = b;

    EXPECT_EQ(E_init(), 0, "E_init");
    r = E_add_time(x, y);
    CHECK(r.sec == 7 && r.usec == 100000, "E_add_time %ld.%06ld", r.sec, r.usec);
    r = E_sub_time(y, x);
    CHECK(r.sec == -5 && r.usec == 300000, "E_sub_time %ld.%06ld", r.sec, r.usec);
    EXPECT_EQ(E_compare_time(x, y), 1, "E_compare_time >");
    EXPECT_EQ(E_compare_time(y, x), -1, "E_compare_time <");
    EXPECT_EQ(E_compare_time(x, x), 0, "E_compare_time =");
    t0 = E_get_time();
    E_delay(d);
    t1 = E_get_time();
    r = E_sub_time(t1, t0);
    CHECK(r.sec > 0 || r.usec >= 45000, "E_delay 50ms took %ld.%06ld", r.sec, r.usec);

    EXPECT_EQ(E_dequeue(never, 1, NULL), -1, "E_dequeue of nothing");
    EXPECT_EQ(E_queue(never, 1, NULL, x), 0, "E_queue");
    EXPECT_EQ(E_queue(never, 1, NULL, x), 0, "E_queue again (replaces)");
    EXPECT_EQ(E_dequeue(never, 1, NULL), 0, "E_dequeue");
    EXPECT_EQ(E_dequeue(never, 1, NULL), -1, "E_dequeue replaced entry is gone");

    EXPECT_EQ(E_attach_fd(b, READ_FD, on_readable, 7, NULL, LOW_PRIORITY), 0, "E_attach_fd");
    EXPECT_EQ(E_attach_fd(b, READ_FD, on_readable, 7, NULL, LOW_PRIORITY), 1, "E_attach_fd again replaces");
    EXPECT_EQ(E_num_active(LOW_PRIORITY), 1, "E_num_active");
    EXPECT_EQ(E_deactivate_fd(b, READ_FD), 0, "E_deactivate_fd");
    EXPECT_EQ(E_num_active(LOW_PRIORITY), 0, "E_num_active after deactivate");
    EXPECT_EQ(E_activate_fd(b, READ_FD), 0, "E_activate_fd");
    EXPECT_EQ(E_num_active(LOW_PRIORITY), 1, "E_num_active after activate");
    EXPECT_EQ(E_activate_fd(b, WRITE_FD), -1, "E_activate_fd of an unattached fd");
    EXPECT_EQ(E_set_active_threshold(HIGH_PRIORITY), HIGH_PRIORITY, "E_set_active_threshold(HIGH)");
    EXPECT_EQ(E_set_active_threshold(LOW_PRIORITY), LOW_PRIORITY, "E_set_active_threshold(LOW)");

    /* A timer sends to b's group; b's readable callback receives it and exits the loop. */
    d.sec = 0;
    d.usec = 100000;
    EXPECT_EQ(E_queue(send_later, 0, &a, d), 0, "E_queue send_later");
    EXPECT_EQ(E_queue(never, 2, NULL, x), 0, "E_queue a far timer");
    E_handle_events();
    EXPECT_EQ(event_hits, 1, "event loop delivered the message");
    EXPECT_EQ(never_called, 0, "far timer not run");
    EXPECT_EQ(E_in_queue(never, 2, NULL), 1, "E_in_queue: far timer pending");
    EXPECT_EQ(E_dequeue(never, 2, NULL), 0, "far timer still queued");
    EXPECT_EQ(E_in_queue(never, 2, NULL), 0, "E_in_queue after E_dequeue");
    EXPECT_EQ(E_attach_fd(a, WRITE_FD, on_readable, 1, NULL, MEDIUM_PRIORITY), 0, "attach at MEDIUM");
    EXPECT_EQ(E_num_active(MEDIUM_PRIORITY), 1, "E_num_active(MEDIUM)");
    EXPECT_EQ(E_detach_fd_priority(a, WRITE_FD, LOW_PRIORITY), -1, "E_detach_fd_priority, wrong priority");
    EXPECT_EQ(E_detach_fd_priority(a, WRITE_FD, MEDIUM_PRIORITY), 0, "E_detach_fd_priority");
    EXPECT_EQ(E_detach_fd(b, READ_FD), 0, "E_detach_fd");
    EXPECT_EQ(E_detach_fd(b, READ_FD), -1, "E_detach_fd twice");
}

int main(int argc, char **argv)
{
    mailbox a, b, c, many[40];
    char pga[MAX_GROUP_NAME], pgb[MAX_GROUP_NAME], pgc[MAX_GROUP_NAME], g[16], g2[16];
    char long_group[40], big[2000], dests[102][MAX_GROUP_NAME];
    recv_t r;
    membership_info mi1, mi2;
    scatter out, in;
    char p1[5] = "abcd", p2[3] = "ef", p3[6] = "ghijk", i1[3], i2[4], i3[100];
    int i, ret, n, found;
    service st;
    char sender[MAX_GROUP_NAME], groups[2][MAX_GROUP_NAME];
    int16 mt;
    int ng, em;
    fd_set rs;
    struct timeval tv;
    pthread_t th;
    struct flood_arg fa;
    sp_time to = {5, 0};

    if (argc < 3) {
        fprintf(stderr, "usage: %s <port@127.0.0.1> <port>\n", argv[0]);
        return 2;
    }
    tcp_name = argv[1];
    unix_name = argv[2];
    snprintf(tag, sizeof(tag), "%05d", (int)(getpid() % 100000));
    name(g, "g");
    name(g2, "h");
    setvbuf(stdout, NULL, _IOLBF, 0);

    test_version_auth();
    test_connect_errors();

    a = connect_ok(tcp_name, "a", 1, pga);
    b = connect_ok(unix_name, "b", 1, pgb);
    {
        char n15[24], pg15[MAX_GROUP_NAME], want[16];
        mailbox m15;
        snprintf(n15, sizeof(n15), "t%sxxxxxxxxxx", tag);
        memcpy(want, n15, 10);
        want[10] = 0;
        EXPECT_EQ(SP_connect_timeout(tcp_name, n15, 0, 0, &m15, pg15, to), ACCEPT_SESSION,
                  "SP_connect_timeout, 15-char name");
        CHECK(strncmp(pg15 + 1, want, 10) == 0 && pg15[11] == '#', "name cut to 10: %s", pg15);
        EXPECT_EQ(SP_disconnect(m15), 0, "disconnect");
    }
    {
        struct stat st2;
        CHECK(fstat(a, &st2) == 0 && S_ISSOCK(st2.st_mode), "mailbox is a socket descriptor");
    }

    /* join / leave argument errors */
    memset(long_group, 'x', 32);
    long_group[32] = 0;
    EXPECT_EQ(SP_join(a, ""), ILLEGAL_GROUP, "join ''");
    EXPECT_EQ(SP_join(a, long_group), ILLEGAL_GROUP, "join 32-char group");
    EXPECT_EQ(SP_join(a, "bad group"), ILLEGAL_GROUP, "join 'bad group'");
    EXPECT_EQ(SP_leave(a, long_group), ILLEGAL_GROUP, "leave 32-char group");
    EXPECT_EQ(SP_join(-5, g), ILLEGAL_SESSION, "join on a bad mailbox");
    EXPECT_EQ(SP_leave(9999, g), ILLEGAL_SESSION, "leave on a bad mailbox");

    /* a joins g */
    EXPECT_EQ(SP_join(a, g), 0, "SP_join a");
    recv1(a, &r);
    EXPECT_EQ(r.ret, 56, "join notice size");
    EXPECT_EQ(r.st, REG_MEMB_MESS | CAUSED_BY_JOIN, "join notice service");
    CHECK(strcmp(r.sender, g) == 0, "join notice sender %s", r.sender);
    EXPECT_EQ(r.num_groups, 1, "join notice members");
    CHECK(strcmp(r.groups[0], pga) == 0, "member %s", r.groups[0]);
    EXPECT_EQ(r.mess_type, 0, "my index");
    EXPECT_EQ(r.endian, 0, "endian_mismatch");
    test_memb_accessors(&r, pga);
    SP_get_memb_info(r.body, r.st, &mi1);

    /* b joins g: both see it */
    EXPECT_EQ(SP_join(b, g), 0, "SP_join b");
    recv1(a, &r);
    EXPECT_EQ(r.st, REG_MEMB_MESS | CAUSED_BY_JOIN, "a sees b join");
    EXPECT_EQ(r.num_groups, 2, "two members");
    SP_get_memb_info(r.body, r.st, &mi2);
    CHECK(strcmp(mi2.changed_member, pgb) == 0, "changed member is b");
    EXPECT_EQ(SP_equal_group_ids(mi1.gid, mi1.gid), 1, "SP_equal_group_ids same");
    EXPECT_EQ(SP_equal_group_ids(mi1.gid, mi2.gid), 0, "SP_equal_group_ids different");
    recv1(b, &r);
    EXPECT_EQ(r.st, REG_MEMB_MESS | CAUSED_BY_JOIN, "b sees its join");
    found = -1;
    for (i = 0; i < r.num_groups; i++)
        if (strcmp(r.groups[i], pgb) == 0)
            found = i;
    EXPECT_EQ(r.mess_type, found, "b's index in the member list");

    /* service errors */
    EXPECT_EQ(SP_multicast(a, 0, g, 1, 3, "abc"), ILLEGAL_SERVICE, "service 0");
#ifndef ORIGINAL_LIBRARY
    /* The original sends this, and its receivers then misparse the stream. */
    EXPECT_EQ(SP_multicast(a, AGREED_MESS | REJECT_MESS, g, 1, 3, "abc"), ILLEGAL_SERVICE, "reject bit");
#endif
    EXPECT_EQ(SP_multicast(a, 0x00010000, g, 1, 3, "abc"), ILLEGAL_SERVICE, "control type");
    EXPECT_EQ(SP_multicast(-5, AGREED_MESS, g, 1, 3, "abc"), ILLEGAL_SESSION, "multicast, bad mailbox");
    {
        char *huge = calloc(1, 144001);
        EXPECT_EQ(SP_multicast(a, AGREED_MESS, g, 1, 144001, huge), MESSAGE_TOO_LONG, "144001 bytes");
        EXPECT_EQ(SP_multicast(a, AGREED_MESS, g, 1, 144000 - 31, huge), MESSAGE_TOO_LONG,
                  "body + one name over 144000");
        free(huge);
    }

    /* data both ways */
    ret = SP_multicast(a, AGREED_MESS, g, 0x1234, 6, "hello");
    EXPECT_EQ(ret, 6, "SP_multicast");
    recv1(b, &r);
    EXPECT_EQ(r.ret, 6, "b receives");
    EXPECT_EQ(r.st, AGREED_MESS, "service");
    CHECK(strcmp(r.sender, pga) == 0, "sender %s", r.sender);
    CHECK(r.num_groups == 1 && strcmp(r.groups[0], g) == 0, "groups [%s]", r.groups[0]);
    EXPECT_EQ(r.mess_type, 0x1234, "mess_type");
    EXPECT_EQ(r.endian, 0, "endian_mismatch");
    CHECK(strcmp(r.body, "hello") == 0, "body %s", r.body);
    recv1(a, &r);
    EXPECT_EQ(r.ret, 6, "a receives its own");
    EXPECT_EQ(SP_multicast(a, SAFE_MESS | SELF_DISCARD, g, -2, 3, "sd"), 3, "self-discard multicast");
    recv1(b, &r);
    EXPECT_EQ(r.st, SAFE_MESS | SELF_DISCARD, "service keeps SELF_DISCARD");
    EXPECT_EQ(r.mess_type, -2, "negative mess_type");
    usleep(100000);
    EXPECT_EQ(SP_poll(a), 0, "sender did not get its self-discarded message");

    /* multigroup: one copy, names as given */
    strcpy(dests[0], g);
    strcpy(dests[1], pgb);
    EXPECT_EQ(SP_multigroup_multicast(b, FIFO_MESS, 2, (const char(*)[MAX_GROUP_NAME])dests, 9, 4, "two"), 4,
              "SP_multigroup_multicast");
    recv1(b, &r);
    CHECK(r.ret == 4 && r.num_groups == 2 && strcmp(r.groups[1], pgb) == 0, "b got one copy, 2 names");
    recv1(a, &r);
    EXPECT_EQ(r.ret, 4, "a got it via g");
#ifndef ORIGINAL_LIBRARY /* the original crashes here */
    EXPECT_EQ(SP_multigroup_multicast(b, FIFO_MESS, -1, (const char(*)[MAX_GROUP_NAME])dests, 9, 4, "two"),
              ILLEGAL_GROUP, "negative group count");
#endif

    /* scatter out and in */
    out.num_elements = 3;
    out.elements[0].buf = p1;
    out.elements[0].len = 4;
    out.elements[1].buf = p2;
    out.elements[1].len = 2;
    out.elements[2].buf = p3;
    out.elements[2].len = 5;
    EXPECT_EQ(SP_scat_multicast(a, RELIABLE_MESS, g, 5, &out), 11, "SP_scat_multicast");
    EXPECT_EQ(SP_multigroup_scat_multicast(a, UNRELIABLE_MESS, 1, (const char(*)[MAX_GROUP_NAME])dests, 6, &out),
              11, "SP_multigroup_scat_multicast");
    in.num_elements = 3;
    in.elements[0].buf = i1;
    in.elements[0].len = 3;
    in.elements[1].buf = i2;
    in.elements[1].len = 4;
    in.elements[2].buf = i3;
    in.elements[2].len = 100;
    for (n = 0; n < 2; n++) {
        wait_readable(b, 3000);
        st = 0;
        ret = SP_scat_receive(b, &st, sender, 2, &ng, groups, &mt, &em, &in);
        EXPECT_EQ(ret, 11, "SP_scat_receive");
        CHECK(memcmp(i1, "abc", 3) == 0 && memcmp(i2, "defg", 4) == 0 && memcmp(i3, "hijk", 4) == 0,
              "scatter reassembled");
        EXPECT_EQ(mt, 5 + n, "scatter mess_type");
    }
    recv1(a, &r);
    recv1(a, &r);
    EXPECT_EQ(r.st, UNRELIABLE_MESS, "unreliable keeps its bit");

    /* short buffers: the header is kept, the program learns the sizes */
    memset(big, 'z', sizeof(big));
    EXPECT_EQ(SP_multicast(a, AGREED_MESS, g, 71, 1000, big), 1000, "1000-byte multicast");
    EXPECT_EQ(wait_poll(b, 1080, 3000), 1080, "SP_poll = header + 1 name + body");
    st = 0;
    ret = SP_receive(b, &st, sender, 2, &ng, groups, &mt, &em, 10, big);
    EXPECT_EQ(ret, BUFFER_TOO_SHORT, "10-byte buffer");
    EXPECT_EQ(em, -1000, "needed size in endian_mismatch");
    EXPECT_EQ(ng, 0, "num_groups 0");
    EXPECT_EQ(mt, 71, "mess_type reported");
    EXPECT_EQ(st, AGREED_MESS, "service reported");
    CHECK(strcmp(sender, pga) == 0, "sender reported");
    EXPECT_EQ(SP_poll(b), 1032, "header consumed, rest pending");
    st = 0;
    ret = SP_receive(b, &st, sender, 2, &ng, groups, &mt, &em, 1000, big);
    EXPECT_EQ(ret, 1000, "retry with room");
    EXPECT_EQ(ng, 1, "groups on retry");
    recv1(a, &r);

    strcpy(dests[0], g);
    strcpy(dests[1], g2);
    EXPECT_EQ(SP_multigroup_multicast(a, AGREED_MESS, 2, (const char(*)[MAX_GROUP_NAME])dests, 73, 10, "two-groups"),
              10, "two-group multicast");
    wait_readable(b, 3000);
    st = 0;
    ret = SP_receive(b, &st, sender, 1, &ng, groups, &mt, &em, 100, big);
    EXPECT_EQ(ret, GROUPS_TOO_SHORT, "room for one name");
    EXPECT_EQ(ng, -2, "needed names in num_groups");
    EXPECT_EQ(mt, 73, "mess_type reported");
    st = 0;
    ret = SP_receive(b, &st, sender, 2, &ng, groups, &mt, &em, 100, big);
    EXPECT_EQ(ret, 10, "retry with two names");
    CHECK(strcmp(groups[1], g2) == 0, "second name %s", groups[1]);
    recv1(a, &r);

    /* DROP_RECV: what does not fit is dropped */
    memset(big, 'q', sizeof(big));
    EXPECT_EQ(SP_multicast(a, AGREED_MESS, g, 72, 1000, big), 1000, "1000-byte multicast");
    wait_readable(b, 3000);
    st = DROP_RECV;
    memset(i3, 0, sizeof(i3));
    ret = SP_receive(b, &st, sender, 2, &ng, groups, &mt, &em, 10, i3);
    EXPECT_EQ(ret, BUFFER_TOO_SHORT, "DROP_RECV, 10-byte buffer");
    EXPECT_EQ(st, AGREED_MESS, "service");
    EXPECT_EQ(ng, 1, "names delivered");
    CHECK(memcmp(i3, "qqqqqqqqqq", 10) == 0 && i3[10] == 0, "first 10 bytes delivered");
    usleep(50000);
    EXPECT_EQ(SP_poll(b), 0, "rest dropped");
    recv1(a, &r);
    EXPECT_EQ(SP_multigroup_multicast(a, AGREED_MESS, 2, (const char(*)[MAX_GROUP_NAME])dests, 74, 5, "drop"), 5,
              "two-group multicast");
    wait_readable(b, 3000);
    st = DROP_RECV;
    ret = SP_receive(b, &st, sender, 1, &ng, groups, &mt, &em, 100, big);
    EXPECT_EQ(ret, 5, "DROP_RECV with one name slot returns the body");
    EXPECT_EQ(ng, -2, "num_groups = -(names in message)");
    CHECK(strcmp(groups[0], g) == 0, "first name kept");
    usleep(50000);
    EXPECT_EQ(SP_poll(b), 0, "extra name dropped");
    recv1(a, &r);

    /* the mailbox is the socket: select works on it */
    EXPECT_EQ(SP_multicast(a, AGREED_MESS, g, 1, 3, "fd"), 3, "multicast");
    FD_ZERO(&rs);
    FD_SET(b, &rs);
    tv.tv_sec = 3;
    tv.tv_usec = 0;
    EXPECT_EQ(select(b + 1, &rs, NULL, NULL, &tv), 1, "select() on the mailbox");
    recv1(b, &r);
    recv1(a, &r);

    /* one thread receives while another sends on the same mailbox */
    fa.m = a;
    fa.group = g;
    fa.count = 300;
    fa.sent = 0;
    pthread_create(&th, NULL, sender_thread, &fa);
    for (n = 0, i = 0; i < 300; i++) {
        if (recv1(a, &r) > 0 && r.mess_type == (int16)i && r.st == FIFO_MESS)
            n++;
        else
            break;
    }
    pthread_join(th, NULL);
    EXPECT_EQ(fa.sent, 300, "thread sent all");
    EXPECT_EQ(n, 300, "receiver got all in order while the other thread sent");
    for (i = 0; i < 300; i++)
        if (recv1(b, &r) <= 0)
            break;
    EXPECT_EQ(i, 300, "b got all");

    /* event loop */
    test_events(a, b, g);
    recv1(a, &r);

    /* leave: self-leave for b, a sees it */
    EXPECT_EQ(SP_leave(b, g), 0, "SP_leave");
    recv1(b, &r);
    EXPECT_EQ(r.ret, 0, "self-leave size");
    CHECK(Is_self_leave(r.st), "self-leave service 0x%x", r.st);
    EXPECT_EQ(r.mess_type, -1, "self-leave mess_type");
    recv1(a, &r);
    EXPECT_EQ(r.st, REG_MEMB_MESS | CAUSED_BY_LEAVE, "a sees the leave");
    SP_get_memb_info(r.body, r.st, &mi1);
    CHECK(strcmp(mi1.changed_member, pgb) == 0, "left member %s", mi1.changed_member);

    /* closed by us */
    EXPECT_EQ(SP_disconnect(b), 0, "SP_disconnect");
    recv1(a, &r);
    EXPECT_EQ(r.st, 0, "b was no longer a member: nothing for a");
    st = 0;
    EXPECT_EQ(SP_receive(b, &st, sender, 2, &ng, groups, &mt, &em, 100, big), ILLEGAL_SESSION,
              "receive after disconnect");
    EXPECT_EQ(SP_multicast(b, AGREED_MESS, g, 1, 1, "x"), ILLEGAL_SESSION, "multicast after disconnect");
    EXPECT_EQ(SP_poll(b), ILLEGAL_SESSION, "poll after disconnect");
    EXPECT_EQ(SP_disconnect(b), ILLEGAL_SESSION, "disconnect twice");

    /* closed by the daemon: an invalid message (two services) ends the session */
    c = connect_ok(tcp_name, "c", 1, pgc);
    EXPECT_EQ(SP_join(c, g), 0, "c joins");
    recv1(c, &r);
    recv1(a, &r);
    EXPECT_EQ(SP_multicast(c, AGREED_MESS | SAFE_MESS, g, 1, 1, "x"), 1, "invalid service pair is sent");
    recv1(a, &r);
    EXPECT_EQ(r.st, REG_MEMB_MESS | CAUSED_BY_DISCONNECT, "a sees c disconnected");
    SP_get_memb_info(r.body, r.st, &mi1);
    CHECK(strcmp(mi1.changed_member, pgc) == 0, "disconnected member %s", mi1.changed_member);
    wait_readable(c, 3000);
    st = 0;
    EXPECT_EQ(SP_receive(c, &st, sender, 2, &ng, groups, &mt, &em, 100, big), CONNECTION_CLOSED,
              "receive on a connection the daemon closed");
    st = 0;
    EXPECT_EQ(SP_receive(c, &st, sender, 2, &ng, groups, &mt, &em, 100, big), NET_ERROR_ON_SESSION,
              "receive again");
    EXPECT_EQ(SP_multicast(c, AGREED_MESS, g, 1, 1, "x"), NET_ERROR_ON_SESSION, "multicast after the error");
    EXPECT_EQ(SP_join(c, g), NET_ERROR_ON_SESSION, "join after the error");
    EXPECT_EQ(SP_disconnect(c), 0, "disconnect after the error");
    EXPECT_EQ(SP_poll(c), ILLEGAL_SESSION, "poll after that");

    /* SP_kill */
    c = connect_ok(tcp_name, "k", 0, pgc);
    SP_kill(c);
    EXPECT_EQ(SP_poll(c), ILLEGAL_SESSION, "poll after SP_kill");
    SP_kill(c); /* harmless */

    /* many mailboxes */
    for (i = 0, n = 0; i < 40; i++) {
        char nm[16];
        snprintf(nm, sizeof(nm), "m%02d%s", i, tag);
        if (SP_connect(unix_name, nm, 0, 0, &many[i], pgc) == ACCEPT_SESSION)
            n++;
    }
    EXPECT_EQ(n, 40, "40 sessions in one process");
    for (i = 0, n = 0; i < 40; i++)
        if (SP_disconnect(many[i]) == 0)
            n++;
    EXPECT_EQ(n, 40, "40 disconnects");

    /* more than 100 destinations: refused here (the daemon would drop the session) */
    for (i = 0; i < 101; i++)
        snprintf(dests[i], MAX_GROUP_NAME, "d%d", i);
#ifdef ORIGINAL_LIBRARY
    /* the original sends it, and the daemon then drops the session */
    EXPECT_EQ(SP_multigroup_multicast(a, AGREED_MESS, 101, (const char(*)[MAX_GROUP_NAME])dests, 0, 1, "x"), 1,
              "101 destination groups (original: sent)");
#else
    EXPECT_EQ(SP_multigroup_multicast(a, AGREED_MESS, 101, (const char(*)[MAX_GROUP_NAME])dests, 0, 1, "x"),
              ILLEGAL_GROUP, "101 destination groups");
#endif

    EXPECT_EQ(SP_query_groups(a, 0, NULL), -1, "SP_query_groups");
    EXPECT_EQ(SP_query_members(a, g, 0, NULL), -1, "SP_query_members");
    EXPECT_EQ(SP_disconnect(a), 0, "disconnect a");

    /* SP_error texts, one line each, for the harness to compare */
    printf("--- SP_error\n");
    for (i = -1; i >= -20; i--)
        SP_error(i);
    SP_error(3);
    printf("--- end\n");

    printf("%d checks, %d failures\n", checks, failures);
    return failures == 0 ? 0 : 1;
}

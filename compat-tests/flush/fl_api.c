/*
 * fl_api.c - the Flush API on one daemon, from one process holding several
 * connections: result codes of every error path, short buffers, views of
 * joins and leaves, flush requests, messages sent before a flush, unicast
 * and subgroupcast targets.
 *
 * usage: fl_api <daemon>        (e.g. 4803@127.0.0.1)
 * Prints one line per failed check and a summary; exits 0 only if all passed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <fl.h>

static int checks, failures;

#define CHECK(cond)                                                          \
    do {                                                                     \
        checks++;                                                            \
        if (!(cond)) {                                                       \
            failures++;                                                      \
            printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);           \
        }                                                                    \
    } while (0)

#define CHECK_EQ(a, b)                                                       \
    do {                                                                     \
        long _a = (long)(a), _b = (long)(b);                                 \
        checks++;                                                            \
        if (_a != _b) {                                                      \
            failures++;                                                      \
            printf("FAIL %s:%d: %s == %ld, expected %s == %ld\n", __FILE__,  \
                   __LINE__, #a, _a, #b, _b);                                \
        }                                                                    \
    } while (0)

#define MAX_EVENTS 256

typedef struct {
    service serv;
    char sender[MAX_GROUP_NAME];
    int num_groups;
    char groups[8][MAX_GROUP_NAME];
    int16 mess_type;
    int len;
    char body[256];
} event;

typedef struct {
    const char *label;
    mailbox mb;
    char priv[MAX_GROUP_NAME];
    int autoflush;     /* flush as soon as asked */
    int flush_pending; /* asked, not yet flushed */
    int views;         /* regular memberships seen */
    int view_size;     /* members of the last one */
    group_id view_id;
    int left;
    int nev;
    event ev[MAX_EVENTS];
} member;

static const char *Daemon;
static const char *Group = "flapi";

static void connect_member(member *m, const char *user)
{
    int ret;
    memset(m, 0, sizeof(*m));
    m->label = user;
    ret = FL_connect(Daemon, user, 0, &m->mb, m->priv);
    if (ret != ACCEPT_SESSION) {
        printf("FL_connect(%s) failed: %d\n", user, ret);
        FL_error(ret);
        exit(2);
    }
}

/* Take in everything waiting on m; returns the number of messages. */
static int pump_one(member *m)
{
    int got = 0;
    for (;;) {
        event e;
        int more = 0, ret;
        int endian = 0;
        memset(&e, 0, sizeof(e));
        e.serv = DONT_BLOCK;
        ret = FL_receive(m->mb, &e.serv, e.sender, 8, &e.num_groups, e.groups, &e.mess_type,
                         &endian, sizeof(e.body) - 1, e.body, &more);
        if (ret == WOULD_BLOCK)
            return got;
        if (ret < 0) {
            printf("%s: FL_receive: %d\n", m->label, ret);
            FL_error(ret);
            exit(3);
        }
        got++;
        e.len = ret;
        if (m->nev < MAX_EVENTS)
            m->ev[m->nev++] = e;
        if (Is_reg_memb_mess(e.serv)) {
            m->views++;
            m->view_size = e.num_groups;
            memcpy(&m->view_id, e.body + FL_get_gid_offset_memb_mess(), sizeof(group_id));
        } else if (Is_flush_req_mess(e.serv)) {
            if (m->autoflush) {
                ret = FL_flush(m->mb, e.sender);
                CHECK_EQ(ret, 0);
            } else {
                m->flush_pending = 1;
            }
        } else if (Is_self_leave(e.serv)) {
            m->left = 1;
        }
    }
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Pump all members until cond() holds (10 s at most). */
static int pump_until(member **ms, int n, int (*cond)(member **, int))
{
    double end = now() + 10.0;
    while (now() < end) {
        int i;
        for (i = 0; i < n; i++)
            if (ms[i])
                pump_one(ms[i]);
        if (cond(ms, n))
            return 1;
        usleep(2000);
    }
    printf("timeout waiting\n");
    return 0;
}

static int Want_size;
static int all_have_view(member **ms, int n)
{
    int i;
    for (i = 0; i < n; i++)
        if (ms[i] && ms[i]->view_size != Want_size)
            return 0;
    return 1;
}

static int count_body(const member *m, const char *text);

static int all_saw_after(member **ms, int n)
{
    int i;
    for (i = 0; i < n; i++)
        if (ms[i] && count_body(ms[i], "after") < 1)
            return 0;
    return 1;
}

static int first_pending(member **ms, int n)
{
    (void)n;
    return ms[0]->flush_pending;
}

static int first_left(member **ms, int n)
{
    (void)n;
    return ms[0]->left;
}

/* Index of the first event of m whose body is `text`, or -1. */
static int find_body(const member *m, const char *text)
{
    int i;
    for (i = 0; i < m->nev; i++)
        if (Is_regular_mess(m->ev[i].serv) && strcmp(m->ev[i].body, text) == 0)
            return i;
    return -1;
}

static int count_body(const member *m, const char *text)
{
    int i, c = 0;
    for (i = 0; i < m->nev; i++)
        if (Is_regular_mess(m->ev[i].serv) && strcmp(m->ev[i].body, text) == 0)
            c++;
    return c;
}

/* Index of the last regular membership event of m, or -1. */
static int last_view(const member *m)
{
    int i;
    for (i = m->nev - 1; i >= 0; i--)
        if (Is_reg_memb_mess(m->ev[i].serv))
            return i;
    return -1;
}

static void no_session_paths(void)
{
    service s = 0;
    char sender[MAX_GROUP_NAME], groups[2][MAX_GROUP_NAME], buf[16];
    int ng, endian, more;
    int16 mt;
    mailbox bad = 7777;

    CHECK_EQ(FL_join(bad, "g"), ILLEGAL_SESSION);
    CHECK_EQ(FL_leave(bad, "g"), ILLEGAL_SESSION);
    CHECK_EQ(FL_flush(bad, "g"), ILLEGAL_SESSION);
    CHECK_EQ(FL_multicast(bad, AGREED_MESS, "g", 0, 1, "x"), ILLEGAL_SESSION);
    CHECK_EQ(FL_unicast(bad, AGREED_MESS, "g", "#a#b", 0, 1, "x"), ILLEGAL_SESSION);
    CHECK_EQ(FL_more_msgs(bad), ILLEGAL_SESSION);
    CHECK_EQ(FL_poll(bad), ILLEGAL_SESSION);
    CHECK_EQ(FL_disconnect(bad), ILLEGAL_SESSION);
    CHECK_EQ(FL_receive(bad, &s, sender, 2, &ng, groups, &mt, &endian, sizeof(buf), buf, &more),
             ILLEGAL_SESSION);
    s = 0;
    CHECK_EQ(FL_receive(bad, &s, sender, -1, &ng, groups, &mt, &endian, sizeof(buf), buf, &more),
             ILLEGAL_PARAM);
}

int main(int argc, char **argv)
{
    static member A, B, C, D;
    member *all[4];
    int major = -1, minor = -1, patch = -1, ret, i;
    char text[128];

    if (argc < 2) {
        fprintf(stderr, "usage: %s <daemon>\n", argv[0]);
        return 2;
    }
    Daemon = argv[1];
    setvbuf(stdout, NULL, _IOLBF, 0);

    CHECK_EQ(FL_lib_init(), 0);
    CHECK_EQ(FL_lib_init(), ILLEGAL_STATE);
    FL_version(&major, &minor, &patch);
    CHECK_EQ(major, 2);
    CHECK_EQ(minor, 0);
    CHECK_EQ(patch, 0);
    CHECK_EQ(FL_get_gid_offset_memb_mess(), 0);
    CHECK_EQ(FL_get_num_vs_offset_memb_mess(), 12);
    CHECK_EQ(FL_get_vs_set_offset_memb_mess(), 16);
    no_session_paths();

    /* One member, alone. */
    connect_member(&A, "fa");
    CHECK(A.priv[0] == '#');
    CHECK_EQ(FL_multicast(A.mb, AGREED_MESS, Group, 0, 1, "x"), ILLEGAL_GROUP);
    CHECK_EQ(FL_flush(A.mb, Group), ILLEGAL_GROUP);
    CHECK_EQ(FL_leave(A.mb, Group), ILLEGAL_GROUP);
    CHECK_EQ(FL_join(A.mb, ""), ILLEGAL_GROUP);
    CHECK_EQ(FL_join(A.mb, "a-group-name-that-is-far-too-long-for-spread"), ILLEGAL_GROUP);
    CHECK_EQ(pump_one(&A), 0); /* DONT_BLOCK and nothing there: WOULD_BLOCK */
    CHECK_EQ(FL_more_msgs(A.mb), 0);

    CHECK_EQ(FL_join(A.mb, Group), 0);
    all[0] = &A;
    Want_size = 1;
    CHECK(pump_until(all, 1, all_have_view));
    CHECK_EQ(A.views, 1);
    i = last_view(&A);
    CHECK(i >= 0);
    if (i >= 0) {
        CHECK(Is_caused_join_mess(A.ev[i].serv));
        CHECK_EQ(A.ev[i].mess_type, 0);
        CHECK_EQ(strcmp(A.ev[i].sender, Group), 0);
        CHECK_EQ(strcmp(A.ev[i].groups[0], A.priv), 0);
        CHECK_EQ(A.ev[i].len, 12 + 4 + MAX_GROUP_NAME);
        CHECK_EQ(*(int *)(A.ev[i].body + FL_get_num_vs_offset_memb_mess()), 1);
        CHECK_EQ(strcmp(A.ev[i].body + FL_get_vs_set_offset_memb_mess(), A.priv), 0);
    }
    CHECK_EQ(FL_join(A.mb, Group), ILLEGAL_GROUP);
    CHECK_EQ(FL_flush(A.mb, Group), ILLEGAL_STATE);

    /* Sends the library refuses. */
    CHECK_EQ(FL_multicast(A.mb, AGREED_MESS, Group, -32766, 1, "x"), ILLEGAL_MESSAGE_TYPE);
    CHECK_EQ(FL_multicast(A.mb, AGREED_MESS, Group, -32768, 1, "x"), ILLEGAL_MESSAGE_TYPE);
    CHECK_EQ(FL_multicast(A.mb, AGREED_MESS | FLUSH_REQ_MESS, Group, 0, 1, "x"), ILLEGAL_SERVICE);
    CHECK_EQ(FL_multicast(A.mb, AGREED_MESS | REG_MEMB_MESS, Group, 0, 1, "x"), ILLEGAL_SERVICE);
    CHECK_EQ(FL_multicast(A.mb, 0, Group, 0, 1, "x"), ILLEGAL_SERVICE);
    {
        static scatter big;
        big.num_elements = FL_MAX_SCATTER_ELEMENTS + 1;
        for (i = 0; i < (int)big.num_elements; i++) {
            big.elements[i].buf = text;
            big.elements[i].len = 1;
        }
        CHECK_EQ(FL_scat_multicast(A.mb, AGREED_MESS, Group, 0, &big), ILLEGAL_MESSAGE);
        big.num_elements = FL_MAX_SCATTER_ELEMENTS;
        CHECK_EQ(FL_scat_multicast(A.mb, AGREED_MESS | SELF_DISCARD, Group, 0, &big),
                 FL_MAX_SCATTER_ELEMENTS);
    }
    {
        char r[1][MAX_GROUP_NAME] = {"#nobody#x"};
        CHECK_EQ(FL_subgroupcast(A.mb, AGREED_MESS, Group, -1, r, 0, 1, "x"), ILLEGAL_PARAM);
        CHECK_EQ(FL_subgroupcast(A.mb, AGREED_MESS, Group, 1, r, 0, 1, "x"), ILLEGAL_RECEIVERS);
        CHECK_EQ(FL_unicast(A.mb, AGREED_MESS, Group, "#nobody#x", 0, 1, "x"), ILLEGAL_RECEIVERS);
    }

    /* Short buffers. */
    {
        char big[100], small[10], sender[MAX_GROUP_NAME], groups[4][MAX_GROUP_NAME];
        int ng = 99, endian = 99, more = 99;
        int16 mt = 0;
        service s = 0;
        memset(big, 'b', sizeof(big));
        /* Let the flush layer's own traffic of the join settle first. */
        usleep(200000);
        pump_one(&A);
        CHECK_EQ(FL_multicast(A.mb, AGREED_MESS, Group, 321, 100, big), 100);
        usleep(100000);
        ret = FL_receive(A.mb, &s, sender, 4, &ng, groups, &mt, &endian, sizeof(small), small, &more);
        CHECK_EQ(ret, BUFFER_TOO_SHORT);
        CHECK_EQ(endian, -100);
        CHECK_EQ(ng, 0);
        CHECK_EQ(mt, 321);
        CHECK(Is_agreed_mess(s));
        s = 0;
        ret = FL_receive(A.mb, &s, sender, 0, &ng, groups, &mt, &endian, sizeof(big), big, &more);
        CHECK_EQ(ret, GROUPS_TOO_SHORT);
        CHECK_EQ(ng, -1);
        s = 0;
        ret = FL_receive(A.mb, &s, sender, 4, &ng, groups, &mt, &endian, sizeof(big), big, &more);
        CHECK_EQ(ret, 100);
        CHECK_EQ(ng, 1);
        CHECK_EQ(strcmp(groups[0], Group), 0);
        CHECK_EQ(strcmp(sender, A.priv), 0);
        CHECK_EQ(mt, 321);
        CHECK_EQ(endian, 0);
        CHECK_EQ(more, 0);
        /* DROP_RECV: the message goes, truncated. */
        CHECK_EQ(FL_multicast(A.mb, FIFO_MESS, Group, 5, 100, big), 100);
        usleep(100000);
        s = DROP_RECV;
        ret = FL_receive(A.mb, &s, sender, 4, &ng, groups, &mt, &endian, sizeof(small), small, &more);
        CHECK_EQ(ret, BUFFER_TOO_SHORT);
        CHECK_EQ(memcmp(small, big, sizeof(small)), 0);
        CHECK_EQ(pump_one(&A), 0);
#ifdef SPREAD_RS
        /* Documented, but the original blocks here instead of refusing. */
        s = 0;
        ret = FL_receive(A.mb, &s, sender, 4, &ng, groups, &mt, &endian, -1, big, &more);
        CHECK_EQ(ret, ILLEGAL_MESSAGE);
#endif
    }
    CHECK_EQ(FL_more_msgs(A.mb), 0);

    /* B and C join: everyone ends in the same view of three. */
    connect_member(&B, "fb");
    connect_member(&C, "fc");
    A.autoflush = B.autoflush = C.autoflush = 1;
    CHECK_EQ(FL_join(B.mb, Group), 0);
    CHECK_EQ(FL_join(C.mb, Group), 0);
    all[0] = &A;
    all[1] = &B;
    all[2] = &C;
    Want_size = 3;
    CHECK(pump_until(all, 3, all_have_view));
    CHECK(SP_equal_group_ids(A.view_id, B.view_id));
    CHECK(SP_equal_group_ids(A.view_id, C.view_id));
    for (i = 0; i < 3; i++) {
        int k = last_view(all[i]);
        CHECK(k >= 0);
        if (k >= 0) {
            CHECK_EQ(strcmp(all[i]->ev[k].groups[all[i]->ev[k].mess_type], all[i]->priv), 0);
            CHECK_EQ(strcmp(all[i]->ev[k].groups[0], A.ev[last_view(&A)].groups[0]), 0);
            CHECK_EQ(strcmp(all[i]->ev[k].groups[2], A.ev[last_view(&A)].groups[2]), 0);
        }
    }

    /* Unicast, subgroupcast and private sends reach exactly their targets. */
    {
        char r[2][MAX_GROUP_NAME];
        memset(r, 0, sizeof(r));
        strcpy(r[0], B.priv);
        strcpy(r[1], C.priv);
        CHECK_EQ(FL_unicast(A.mb, AGREED_MESS, Group, B.priv, 11, 4, "uni"), 4);
        CHECK_EQ(FL_subgroupcast(A.mb, SAFE_MESS, Group, 2, r, 12, 4, "sub"), 4);
        CHECK_EQ(FL_multicast(A.mb, AGREED_MESS, C.priv, 13, 5, "priv"), 5);
        CHECK_EQ(FL_multicast(A.mb, AGREED_MESS, Group, 14, 4, "all"), 4);
        usleep(300000);
        pump_one(&A);
        pump_one(&B);
        pump_one(&C);
        CHECK_EQ(count_body(&A, "uni"), 0);
        CHECK_EQ(count_body(&B, "uni"), 1);
        CHECK_EQ(count_body(&C, "uni"), 0);
        CHECK_EQ(count_body(&A, "sub"), 0);
        CHECK_EQ(count_body(&B, "sub"), 1);
        CHECK_EQ(count_body(&C, "sub"), 1);
        CHECK_EQ(count_body(&A, "priv"), 0);
        CHECK_EQ(count_body(&B, "priv"), 0);
        CHECK_EQ(count_body(&C, "priv"), 1);
        CHECK_EQ(count_body(&A, "all"), 1);
        CHECK_EQ(count_body(&B, "all"), 1);
        CHECK_EQ(count_body(&C, "all"), 1);
        i = find_body(&B, "uni");
        if (i >= 0) {
            event *e = &B.ev[i];
            CHECK(Is_subgroup_mess(e->serv));
            CHECK(Is_agreed_mess(e->serv));
            CHECK_EQ(e->num_groups, 2);
            CHECK_EQ(strcmp(e->groups[0], B.priv), 0);
            CHECK_EQ(strcmp(e->groups[1], Group), 0);
            CHECK_EQ(e->mess_type, 11);
            CHECK_EQ(e->len, 4);
            CHECK_EQ(strcmp(e->sender, A.priv), 0);
        }
        i = find_body(&C, "sub");
        if (i >= 0) {
            event *e = &C.ev[i];
            CHECK(Is_subgroup_mess(e->serv));
            CHECK_EQ(e->num_groups, 3);
            CHECK_EQ(strcmp(e->groups[2], Group), 0);
            CHECK_EQ(e->mess_type, 12);
        }
        i = find_body(&C, "priv");
        if (i >= 0) {
            CHECK(!Is_subgroup_mess(C.ev[i].serv));
            CHECK_EQ(C.ev[i].num_groups, 1);
            CHECK_EQ(strcmp(C.ev[i].groups[0], C.priv), 0);
        }
        i = find_body(&B, "all");
        if (i >= 0)
            CHECK(!Is_subgroup_mess(B.ev[i].serv));
    }

    /* D joins while A holds its flush: A may send until it flushes, not after;
     * what A sent before is delivered to B and C in the old view, not to D. */
    A.autoflush = 0;
    connect_member(&D, "fd");
    D.autoflush = 1;
    CHECK_EQ(FL_join(D.mb, Group), 0);
    all[3] = &D;
    CHECK(pump_until(all, 4, first_pending));
    CHECK_EQ(FL_multicast(A.mb, FIFO_MESS, Group, 21, 6, "pre-A"), 6);
    CHECK_EQ(FL_multicast(A.mb, SAFE_MESS, Group, 22, 7, "pre-A2"), 7);
    CHECK_EQ(FL_flush(A.mb, Group), 0);
    CHECK_EQ(FL_flush(A.mb, Group), ILLEGAL_STATE);
    CHECK_EQ(FL_multicast(A.mb, AGREED_MESS, Group, 0, 5, "late"), ILLEGAL_STATE);
    CHECK_EQ(FL_unicast(A.mb, AGREED_MESS, Group, B.priv, 0, 5, "late"), ILLEGAL_STATE);
    A.flush_pending = 0;
    Want_size = 4;
    CHECK(pump_until(all, 4, all_have_view));
    for (i = 0; i < 4; i++) {
        CHECK(SP_equal_group_ids(all[i]->view_id, A.view_id));
        CHECK_EQ(count_body(all[i], "late"), 0);
    }
    for (i = 0; i < 3; i++) {
        int p = find_body(all[i], "pre-A"), p2 = find_body(all[i], "pre-A2"), v = last_view(all[i]);
        CHECK(p >= 0 && p < v);
        CHECK(p2 >= 0 && p2 < v);
        if (v >= 0) {
            CHECK(Is_caused_join_mess(all[i]->ev[v].serv));
            CHECK_EQ(strcmp(all[i]->ev[v].body + 16, D.priv), 0);
        }
    }
    CHECK_EQ(count_body(&D, "pre-A"), 0);
    CHECK_EQ(count_body(&D, "pre-A2"), 0);
    /* Old members were each asked once for this change. */
    for (i = 0; i < 3; i++) {
        int k, reqs = 0;
        for (k = 0; k < all[i]->nev; k++)
            if (Is_flush_req_mess(all[i]->ev[k].serv))
                reqs++;
        CHECK(reqs >= 1);
    }
    snprintf(text, sizeof(text), "after");
    CHECK_EQ(FL_multicast(A.mb, AGREED_MESS, Group, 0, 6, text), 6);
    A.autoflush = 1;
    CHECK(pump_until(all, 4, all_saw_after));
    for (i = 0; i < 4; i++)
        CHECK_EQ(count_body(all[i], "after"), 1);

    /* B leaves: only once, and may not send to the group any more. */
    CHECK_EQ(FL_leave(B.mb, Group), 0);
    CHECK_EQ(FL_leave(B.mb, Group), ILLEGAL_GROUP);
    CHECK_EQ(FL_multicast(B.mb, AGREED_MESS, Group, 0, 2, "x"), ILLEGAL_GROUP);
    CHECK_EQ(FL_flush(B.mb, Group), ILLEGAL_GROUP);
    {
        member *order[4] = {&B, &A, &C, &D};
        CHECK(pump_until(order, 4, first_left));
        Want_size = 3;
        order[0] = NULL;
        CHECK(pump_until(order, 4, all_have_view));
    }
    {
        int v = last_view(&A);
        CHECK(v >= 0 && Is_caused_leave_mess(A.ev[v].serv));
        if (v >= 0)
            CHECK_EQ(strcmp(A.ev[v].body + 16, B.priv), 0);
        CHECK(SP_equal_group_ids(A.view_id, C.view_id));
        CHECK(SP_equal_group_ids(A.view_id, D.view_id));
    }

    CHECK_EQ(FL_disconnect(A.mb), 0);
    CHECK_EQ(FL_disconnect(A.mb), ILLEGAL_SESSION);
    CHECK_EQ(FL_disconnect(B.mb), 0);
    CHECK_EQ(FL_disconnect(C.mb), 0);
    CHECK_EQ(FL_disconnect(D.mb), 0);

    printf("fl_api: %d checks, %d failed\n", checks, failures);
    return failures == 0 ? 0 : 1;
}

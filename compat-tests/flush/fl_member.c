/*
 * fl_member.c - one member of a flush group, driven by commands on stdin,
 * reporting what it is shown on stdout (one line per event), for tests that
 * need several processes: views agreed on joins, leaves and kills, and the
 * messages delivered in each view.
 *
 * usage: fl_member <daemon> <user> <group> <seed> <pre>
 *   pre: messages to send to the group when asked to flush, before flushing.
 *
 * stdin:  join | leave | quit | stream <n> (send n messages, one per turn,
 *         services drawn from the seed) | uni <member> <text> |
 *         sub <text> <member>...
 * stdout: READY <private group>
 *         VIEW <gid> <cause> <n> <members...> vs <k> <names...>
 *         MSG <sender> <mess_type> <service> <num_groups> <body>
 *         FLUSHREQ <group> | FLUSHED <group> | TRANS <group> | LEFT <group>
 *         SENT <n> | ERR <what> <code>
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fl.h>

static mailbox Mbox;
static char Priv[MAX_GROUP_NAME];
static const char *Group;
static const char *User;
static unsigned long long Rng;
static int Pre;
static int To_send, Sent, Pre_sent;

static unsigned next_rand(void)
{
    Rng = Rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (unsigned)(Rng >> 33);
}

static service pick_service(void)
{
    static const service kinds[] = {RELIABLE_MESS, FIFO_MESS, CAUSAL_MESS, AGREED_MESS, SAFE_MESS};
    return kinds[next_rand() % 5];
}

static const char *cause(service s)
{
    if (Is_caused_join_mess(s))
        return "JOIN";
    if (Is_caused_leave_mess(s))
        return "LEAVE";
    if (Is_caused_disconnect_mess(s))
        return "DISCONNECT";
    if (Is_caused_network_mess(s))
        return "NETWORK";
    return "NONE";
}

static void receive_all(void)
{
    static char body[100000];
    static char groups[64][MAX_GROUP_NAME];
    for (;;) {
        service s = DONT_BLOCK;
        char sender[MAX_GROUP_NAME];
        int ng = 0, endian = 0, more = 0, ret, i;
        int16 mt = 0;
        ret = FL_receive(Mbox, &s, sender, 64, &ng, groups, &mt, &endian, sizeof(body) - 1, body, &more);
        if (ret == WOULD_BLOCK)
            return;
        if (ret < 0) {
            printf("ERR receive %d\n", ret);
            exit(3);
        }
        body[ret] = 0;
        if (Is_regular_mess(s)) {
            printf("MSG %s %d 0x%x %d %s\n", sender, mt, (unsigned)s, ng, body);
        } else if (Is_reg_memb_mess(s)) {
            group_id *gid = (group_id *)(body + FL_get_gid_offset_memb_mess());
            int k = *(int *)(body + FL_get_num_vs_offset_memb_mess());
            char *vs = body + FL_get_vs_set_offset_memb_mess();
            printf("VIEW %d:%d:%d %s %d", gid->id[0], gid->id[1], gid->id[2], cause(s), ng);
            for (i = 0; i < ng; i++)
                printf(" %s", groups[i]);
            printf(" vs %d", k);
            for (i = 0; i < k; i++)
                printf(" %s", vs + i * MAX_GROUP_NAME);
            printf("\n");
        } else if (Is_flush_req_mess(s)) {
            printf("FLUSHREQ %s\n", sender);
            for (i = 0; i < Pre; i++) {
                char text[80];
                int len = snprintf(text, sizeof(text), "pre:%s:%d", User, Pre_sent++);
                ret = FL_multicast(Mbox, pick_service(), Group, 1, len, text);
                if (ret != len)
                    printf("ERR pre %d\n", ret);
            }
            ret = FL_flush(Mbox, sender);
            if (ret != 0)
                printf("ERR flush %d\n", ret);
            else
                printf("FLUSHED %s\n", sender);
        } else if (Is_transition_mess(s)) {
            printf("TRANS %s\n", sender);
        } else if (Is_self_leave(s)) {
            printf("LEFT %s\n", sender);
        } else {
            printf("ERR service 0x%x\n", (unsigned)s);
        }
    }
}

static void send_one(void)
{
    char text[80];
    int len = snprintf(text, sizeof(text), "%s:%d", User, Sent);
    int ret = FL_multicast(Mbox, pick_service(), Group, 2, len, text);
    if (ret == len) {
        Sent++;
        if (Sent == To_send)
            printf("SENT %d\n", Sent);
    } else if (ret != ILLEGAL_STATE) {
        /* ILLEGAL_STATE: flushed, waiting for the view; try again later. */
        printf("ERR send %d\n", ret);
        To_send = Sent;
    }
}

static void command(char *line)
{
    char *cmd = strtok(line, " \n");
    int ret;
    if (cmd == NULL)
        return;
    if (strcmp(cmd, "join") == 0) {
        if ((ret = FL_join(Mbox, Group)) != 0)
            printf("ERR join %d\n", ret);
    } else if (strcmp(cmd, "leave") == 0) {
        if ((ret = FL_leave(Mbox, Group)) != 0)
            printf("ERR leave %d\n", ret);
    } else if (strcmp(cmd, "quit") == 0) {
        FL_disconnect(Mbox);
        exit(0);
    } else if (strcmp(cmd, "stream") == 0) {
        char *n = strtok(NULL, " \n");
        To_send = Sent + (n ? atoi(n) : 0);
    } else if (strcmp(cmd, "uni") == 0) {
        char *to = strtok(NULL, " \n"), *text = strtok(NULL, " \n");
        if (to && text && (ret = FL_unicast(Mbox, AGREED_MESS, Group, to, 3, strlen(text), text)) < 0)
            printf("ERR uni %d\n", ret);
    } else if (strcmp(cmd, "sub") == 0) {
        char to[16][MAX_GROUP_NAME], *text = strtok(NULL, " \n"), *t;
        int n = 0;
        memset(to, 0, sizeof(to));
        while (n < 16 && (t = strtok(NULL, " \n")) != NULL)
            strncpy(to[n++], t, MAX_GROUP_NAME - 1);
        if (text && (ret = FL_subgroupcast(Mbox, AGREED_MESS, Group, n, to, 4, strlen(text), text)) < 0)
            printf("ERR sub %d\n", ret);
    } else {
        printf("ERR command %s\n", cmd);
    }
}

int main(int argc, char **argv)
{
    char line[1024];
    size_t have = 0;
    int ret;

    if (argc < 6) {
        fprintf(stderr, "usage: %s <daemon> <user> <group> <seed> <pre>\n", argv[0]);
        return 2;
    }
    User = argv[2];
    Group = argv[3];
    Rng = strtoull(argv[4], NULL, 10) * 2654435761ULL + 1;
    Pre = atoi(argv[5]);
    setvbuf(stdout, NULL, _IOLBF, 0);
    ret = FL_connect(argv[1], User, 0, &Mbox, Priv);
    if (ret != ACCEPT_SESSION) {
        printf("ERR connect %d\n", ret);
        return 2;
    }
    printf("READY %s\n", Priv);
    for (;;) {
        struct pollfd fds[2] = {{0, POLLIN, 0}, {Mbox, POLLIN, 0}};
        int busy = Sent < To_send || FL_more_msgs(Mbox) > 0;
        if (poll(fds, 2, busy ? 0 : 20) < 0 && errno != EINTR)
            return 4;
        if (fds[0].revents & (POLLIN | POLLHUP)) {
            ssize_t n = read(0, line + have, sizeof(line) - 1 - have);
            char *nl;
            if (n <= 0) {
                FL_disconnect(Mbox);
                return 0;
            }
            have += (size_t)n;
            line[have] = 0;
            while ((nl = strchr(line, '\n')) != NULL) {
                size_t used = (size_t)(nl - line) + 1;
                char one[1024];
                memcpy(one, line, used);
                one[used] = 0;
                command(one);
                memmove(line, line + used, have - used + 1);
                have -= used;
            }
        }
        receive_all();
        if (Sent < To_send)
            send_one();
    }
}

/*
 * spuser.c - an interactive client of libspread, driven by the event loop.
 * Part of spread-rs (MIT OR Apache-2.0).
 *
 * usage: spuser [-u name] [-s spread_name] [-r]
 *   -r  receive only (no commands read)
 * commands, one per line:
 *   j <group>            join
 *   l <group>            leave
 *   s <group> <text>     send text (AGREED)
 *   m <g1,g2,..> <text>  send to several groups (SAFE)
 *   b <group> <count>    send count short messages (FIFO)
 *   p                    bytes waiting on the mailbox
 *   v                    library version
 *   q                    quit
 * At end of input it keeps receiving for one more second, then quits.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sp.h"

#define MAX_MEMBERS 100
#define MAX_BODY 102400

static mailbox Mbox;
static char Private_group[MAX_GROUP_NAME];
static char Body[MAX_BODY];

static const char *service_name(service st)
{
    if (Is_unreliable_mess(st))
        return "UNRELIABLE";
    if (Is_reliable_mess(st))
        return "RELIABLE";
    if (Is_fifo_mess(st))
        return "FIFO";
    if (Is_causal_mess(st))
        return "CAUSAL";
    if (Is_agreed_mess(st))
        return "AGREED";
    if (Is_safe_mess(st))
        return "SAFE";
    return "?";
}

static const char *cause_name(service st)
{
    if (Is_caused_join_mess(st))
        return "JOIN";
    if (Is_caused_leave_mess(st))
        return "LEAVE";
    if (Is_caused_disconnect_mess(st))
        return "DISCONNECT";
    if (Is_caused_network_mess(st))
        return "NETWORK";
    return "?";
}

static void quit(int status)
{
    SP_disconnect(Mbox);
    fflush(stdout);
    exit(status);
}

static void on_message(int fd, int code, void *data)
{
    static char groups[MAX_MEMBERS][MAX_GROUP_NAME];
    char sender[MAX_GROUP_NAME];
    service st = 0;
    int num_groups, endian, ret, i;
    int16 mess_type;
    membership_info mi;
    vs_set_info sets[MAX_MEMBERS];
    unsigned int mine = 0;
    char members[MAX_MEMBERS][MAX_GROUP_NAME];

    (void)code;
    (void)data;
    ret = SP_receive(fd, &st, sender, MAX_MEMBERS, &num_groups, groups, &mess_type, &endian, MAX_BODY - 1, Body);
    if (ret < 0) {
        if (ret == BUFFER_TOO_SHORT || ret == GROUPS_TOO_SHORT) {
            printf("message too large (needs %d bytes, %d groups): dropping it\n", -endian, -num_groups);
            st = DROP_RECV;
            SP_receive(fd, &st, sender, MAX_MEMBERS, &num_groups, groups, &mess_type, &endian, MAX_BODY - 1,
                       Body);
            return;
        }
        SP_error(ret);
        quit(1);
    }
    if (Is_regular_mess(st)) {
        Body[ret] = 0;
        printf("received %s message from %s, type %d, endian %d, to %d groups (%d bytes): %s\n",
               service_name(st), sender, mess_type, endian, num_groups, ret, Body);
    } else if (Is_reg_memb_mess(st)) {
        printf("membership %s of group %s: %d members, I am member %d\n", cause_name(st), sender, num_groups,
               mess_type);
        for (i = 0; i < num_groups; i++)
            printf("\t%s\n", groups[i]);
        if (SP_get_memb_info(Body, st, &mi) == 1) {
            printf("\tgroup id %d %d %d\n", mi.gid.id[0], mi.gid.id[1], mi.gid.id[2]);
            if (!Is_caused_network_mess(st))
                printf("\tchanged member: %s\n", mi.changed_member);
            ret = SP_get_vs_sets_info(Body, sets, MAX_MEMBERS, &mine);
            for (i = 0; i < ret; i++) {
                int k, n = SP_get_vs_set_members(Body, &sets[i], members, MAX_MEMBERS);
                printf("\tvs set %d%s:", i, (unsigned)i == mine ? " (mine)" : "");
                for (k = 0; k < n; k++)
                    printf(" %s", members[k]);
                printf("\n");
            }
        }
    } else if (Is_transition_mess(st)) {
        printf("transitional membership of group %s\n", sender);
    } else if (Is_caused_leave_mess(st)) {
        printf("left group %s\n", sender);
    } else if (Is_reject_mess(st)) {
        printf("rejected message from %s, service 0x%x\n", sender, st);
    } else {
        printf("unknown message, service 0x%x, %d bytes\n", st, ret);
    }
    fflush(stdout);
}

static void stop_loop(int code, void *data)
{
    (void)code;
    (void)data;
    E_exit_events();
}

static void report(const char *what, int ret)
{
    if (ret < 0) {
        printf("%s failed: ", what);
        fflush(stdout);
        SP_error(ret);
    }
}

static void on_command(int fd, int code, void *data)
{
    static char line[4096];
    static char dests[MAX_MEMBERS][MAX_GROUP_NAME];
    char group[256], *text, *tok;
    int n, i;
    ssize_t got;
    sp_time one_second = {1, 0};

    (void)code;
    (void)data;
    got = read(fd, line, sizeof(line) - 1);
    if (got <= 0) {
        E_detach_fd(fd, READ_FD);
        E_queue(stop_loop, 0, NULL, one_second);
        return;
    }
    line[got] = 0;
    for (tok = strtok(line, "\n"); tok != NULL; tok = strtok(NULL, "\n")) {
        char cmd = tok[0];
        text = NULL;
        group[0] = 0;
        if (strlen(tok) > 2) {
            sscanf(tok + 2, "%255s", group);
            text = strchr(tok + 2, ' ');
            text = text ? text + 1 : "";
        }
        switch (cmd) {
        case 'j':
            report("join", SP_join(Mbox, group));
            break;
        case 'l':
            report("leave", SP_leave(Mbox, group));
            break;
        case 's':
            report("send", SP_multicast(Mbox, AGREED_MESS, group, 1, (int)strlen(text), text));
            break;
        case 'm': {
            char *g, *save = NULL;
            n = 0;
            for (g = strtok_r(group, ",", &save); g && n < MAX_MEMBERS; g = strtok_r(NULL, ",", &save))
                snprintf(dests[n++], MAX_GROUP_NAME, "%s", g);
            report("multigroup send", SP_multigroup_multicast(Mbox, SAFE_MESS, n,
                                                              (const char(*)[MAX_GROUP_NAME])dests, 2,
                                                              (int)strlen(text), text));
            break;
        }
        case 'b':
            n = atoi(text);
            for (i = 0; i < n; i++) {
                char m[32];
                snprintf(m, sizeof(m), "burst %d", i);
                report("burst", SP_multicast(Mbox, FIFO_MESS, group, 3, (int)strlen(m), m));
            }
            break;
        case 'p':
            printf("poll: %d bytes waiting\n", SP_poll(Mbox));
            break;
        case 'v': {
            int a, b, c;
            SP_version(&a, &b, &c);
            printf("library version %d.%d.%d\n", a, b, c);
            break;
        }
        case 'q':
            quit(0);
            break;
        default:
            printf("unknown command '%s'\n", tok);
        }
    }
    fflush(stdout);
}

int main(int argc, char **argv)
{
    const char *user = "spuser", *spread_name = NULL;
    int i, ret, read_only = 0;

    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-u") && i + 1 < argc)
            user = argv[++i];
        else if (!strcmp(argv[i], "-s") && i + 1 < argc)
            spread_name = argv[++i];
        else if (!strcmp(argv[i], "-r"))
            read_only = 1;
        else {
            fprintf(stderr, "usage: %s [-u name] [-s spread_name] [-r]\n", argv[0]);
            return 2;
        }
    }
    ret = SP_connect(spread_name, user, 0, 1, &Mbox, Private_group);
    if (ret != ACCEPT_SESSION) {
        SP_error(ret);
        return 1;
    }
    printf("connected as %s on mailbox %d\n", Private_group, Mbox);
    fflush(stdout);
    E_init();
    E_attach_fd(Mbox, READ_FD, on_message, 0, NULL, HIGH_PRIORITY);
    if (!read_only)
        E_attach_fd(0, READ_FD, on_command, 0, NULL, LOW_PRIORITY);
    E_handle_events();
    quit(0);
    return 0;
}

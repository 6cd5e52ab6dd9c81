/*
 * spflooder.c - throughput test of libspread. Part of spread-rs (MIT OR Apache-2.0).
 *
 * usage: spflooder [-u name] [-s spread_name] [-g group] [-m messages] [-b bytes] [-w window] [-ro | -wo]
 *   default  join the group, send the messages and receive them back, at most
 *            `window` (default 200) in flight; checks order and content
 *   -ro      join the group and receive `messages` messages from others
 *   -wo      send only (no join, no receive)
 * Prints one summary line; exit status 0 on success.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "sp.h"

#define MAX_GROUPS 10

static mailbox Mbox;
static char Private_group[MAX_GROUP_NAME];

static double now(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return tv.tv_sec + tv.tv_usec / 1e6;
}

/* Receive the next data message into buf; membership notices are skipped. */
static int next_data(char *buf, int size, char *sender)
{
    static char groups[MAX_GROUPS][MAX_GROUP_NAME];
    service st;
    int num_groups, endian, ret;
    int16 mess_type;
    for (;;) {
        st = 0;
        ret = SP_receive(Mbox, &st, sender, MAX_GROUPS, &num_groups, groups, &mess_type, &endian, size, buf);
        if (ret < 0)
            return ret;
        if (Is_regular_mess(st))
            return ret;
    }
}

int main(int argc, char **argv)
{
    const char *user = "flooder", *spread_name = NULL, *group = "flooder";
    int messages = 10000, bytes = 1000, window = 200, mode = 0; /* 0 both, 1 read only, 2 write only */
    int i, ret, sent = 0, received = 0, bad = 0;
    char *out, *in, sender[MAX_GROUP_NAME];
    double start, secs;

    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-u") && i + 1 < argc)
            user = argv[++i];
        else if (!strcmp(argv[i], "-s") && i + 1 < argc)
            spread_name = argv[++i];
        else if (!strcmp(argv[i], "-g") && i + 1 < argc)
            group = argv[++i];
        else if (!strcmp(argv[i], "-m") && i + 1 < argc)
            messages = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-b") && i + 1 < argc)
            bytes = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-w") && i + 1 < argc)
            window = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-ro"))
            mode = 1;
        else if (!strcmp(argv[i], "-wo"))
            mode = 2;
        else {
            fprintf(stderr, "usage: %s [-u name] [-s spread] [-g group] [-m n] [-b bytes] [-w window] [-ro|-wo]\n",
                    argv[0]);
            return 2;
        }
    }
    if (bytes < (int)sizeof(int))
        bytes = sizeof(int);
    if (window < 1)
        window = 1;
    out = calloc(1, bytes);
    in = calloc(1, bytes);
    for (i = sizeof(int); i < bytes; i++)
        out[i] = (char)('a' + i % 26);

    ret = SP_connect(spread_name, user, 0, mode == 2 ? 0 : 1, &Mbox, Private_group);
    if (ret != ACCEPT_SESSION) {
        SP_error(ret);
        return 1;
    }
    if (mode != 2) {
        char groups[MAX_GROUPS][MAX_GROUP_NAME];
        service st = 0;
        int ng, em;
        int16 mt;
        ret = SP_join(Mbox, group);
        if (ret < 0) {
            SP_error(ret);
            return 1;
        }
        /* wait for our own join */
        do {
            st = 0;
            ret = SP_receive(Mbox, &st, sender, MAX_GROUPS, &ng, groups, &mt, &em, bytes, in);
        } while (ret >= 0 && !(Is_reg_memb_mess(st) && Is_caused_join_mess(st) && mt == ng - 1 &&
                                strcmp(groups[ng - 1], Private_group) == 0));
        if (ret < 0) {
            SP_error(ret);
            return 1;
        }
    }

    start = now();
    if (mode == 1) {
        for (received = 0; received < messages; received++) {
            ret = next_data(in, bytes, sender);
            if (ret < 0) {
                SP_error(ret);
                return 1;
            }
        }
    } else {
        for (sent = 0; sent < messages; sent++) {
            memcpy(out, &sent, sizeof(int));
            ret = SP_multicast(Mbox, FIFO_MESS, group, 0, bytes, out);
            if (ret != bytes) {
                SP_error(ret);
                return 1;
            }
            while (mode == 0 && sent + 1 - received >= window) {
                ret = next_data(in, bytes, sender);
                if (ret < 0) {
                    SP_error(ret);
                    return 1;
                }
                if (strcmp(sender, Private_group) != 0)
                    continue;
                if (ret != bytes || memcmp(in, &received, sizeof(int)) != 0 ||
                    memcmp(in + sizeof(int), out + sizeof(int), bytes - sizeof(int)) != 0)
                    bad++;
                received++;
            }
        }
        while (mode == 0 && received < messages) {
            ret = next_data(in, bytes, sender);
            if (ret < 0) {
                SP_error(ret);
                return 1;
            }
            if (strcmp(sender, Private_group) != 0)
                continue;
            if (ret != bytes || memcmp(in, &received, sizeof(int)) != 0)
                bad++;
            received++;
        }
    }
    secs = now() - start;
    if (secs <= 0)
        secs = 1e-6;
    printf("spflooder: %s %d messages of %d bytes in %.3f s: %.0f msgs/s, %.2f Mbit/s, %d bad\n",
           mode == 1 ? "received" : "sent", mode == 1 ? received : sent, bytes, secs,
           messages / secs, messages * (double)bytes * 8 / secs / 1e6, bad);
    SP_disconnect(Mbox);
    free(out);
    free(in);
    return bad == 0 ? 0 : 1;
}

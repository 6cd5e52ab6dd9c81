/* A client built the way a C developer builds one against an installed
 * spread-rs:  cc pkgconfig_client.c $(pkg-config --cflags --libs spread)
 * It connects to the daemon named by argv[1], joins a group, multicasts an
 * AGREED message and waits for it to come back. Exit 0 on success.
 * fl.h is included to prove the flush header is installed and compiles. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <sp.h>
#include <fl.h>

#define GROUP "pkg-test"
#define TEXT "hello from an installed libspread"

static void on_alarm(int sig) {
    (void)sig;
    static const char msg[] = "pkgconfig_client: timed out\n";
    write(2, msg, sizeof msg - 1);
    _exit(3);
}

int main(int argc, char **argv) {
    mailbox mbox;
    char private_group[MAX_GROUP_NAME];
    char sender[MAX_GROUP_NAME];
    char groups[8][MAX_GROUP_NAME];
    char buf[256];
    sp_time timeout = {5, 0};
    int major, minor, patch;
    int ret, num_groups, endian;
    int16 mess_type;
    service service_type;
    (void)FL_connect; /* the flush layer links too */

    if (argc != 2) {
        fprintf(stderr, "usage: %s <port>@<host>\n", argv[0]);
        return 2;
    }
    signal(SIGALRM, on_alarm);
    alarm(20);
    SP_version(&major, &minor, &patch);
    ret = SP_connect_timeout(argv[1], "pkgtest", 0, 1, &mbox, private_group, timeout);
    if (ret != ACCEPT_SESSION) {
        SP_error(ret);
        return 1;
    }
    if ((ret = SP_join(mbox, GROUP)) < 0) {
        SP_error(ret);
        return 1;
    }
    if ((ret = SP_multicast(mbox, AGREED_MESS, GROUP, 7, (int)strlen(TEXT), TEXT)) < 0) {
        SP_error(ret);
        return 1;
    }
    for (;;) {
        service_type = 0;
        ret = SP_receive(mbox, &service_type, sender, 8, &num_groups, groups, &mess_type, &endian,
                         (int)sizeof buf - 1, buf);
        if (ret < 0) {
            SP_error(ret);
            return 1;
        }
        if (Is_regular_mess(service_type)) {
            buf[ret] = '\0';
            if (strcmp(buf, TEXT) != 0 || mess_type != 7 || strcmp(sender, private_group) != 0) {
                fprintf(stderr, "unexpected message '%s' type %d from %s\n", buf, mess_type, sender);
                return 1;
            }
            break;
        }
    }
    SP_disconnect(mbox);
    printf("pkgconfig_client: libspread %d.%d.%d, %s got its message back\n", major, minor, patch,
           private_group);
    return 0;
}

/*
 * fl.h - the Flush interface of libspread (spread-rs).
 *
 * View-synchronous, closed groups on top of the ordinary client sessions:
 * a member is asked before every new view (a FLUSH_REQ_MESS message) and
 * answers with FL_flush; messages are shown in the view they were sent in.
 * Source-compatible with the Flush header of Spread 4.4: the same macros,
 * constants, types and functions.
 * Implementation: the spread-capi crate (Rust), licensed MIT OR Apache-2.0.
 */

#ifndef INC_FL
#define INC_FL

#include <sp.h>

/* Extra service bits. DONT_BLOCK is a receive flag; FLUSH_REQ_MESS marks the
 * request to flush a group; SUBGROUP_CAST marks unicasts and subgroupcasts. */
#define DONT_BLOCK     0x10000000
#define FLUSH_REQ_MESS 0x20000000
#define SUBGROUP_CAST  0x40000000

#define Is_flush_req_mess(serv) (((serv) & FLUSH_REQ_MESS) != 0)
#define Is_subgroup_mess(serv)  (((serv) & SUBGROUP_CAST) != 0)

/* Result codes besides those of sp.h. */
#define ILLEGAL_PARAM        -24
#define WOULD_BLOCK          -25
#define ILLEGAL_MESSAGE_TYPE -26
#define ILLEGAL_STATE        -27
#define ILLEGAL_RECEIVERS    -28

/* A send may use one scatter element less than SP_* calls (the library
 * appends one of its own). */
#define FL_MAX_SCATTER_ELEMENTS (MAX_CLIENT_SCATTER_ELEMENTS - 1)

/* Message types below this one are the library's own. */
#define FL_MIN_LEGAL_MESS_TYPE ((int16) -32765)

#ifdef __cplusplus
extern "C" {
#endif

int  FL_lib_init(void);
void FL_version(int *major_ver, int *minor_ver, int *patch_ver);

int  FL_connect(const char *daemon_name, const char *user_name, int priority,
                mailbox *mbox, char *private_name);
int  FL_disconnect(mailbox mbox);

int  FL_join(mailbox mbox, const char *group_name);
int  FL_leave(mailbox mbox, const char *group_name);
int  FL_flush(mailbox mbox, const char *group_name);

int  FL_unicast(mailbox mbox, service serv_type, const char *group_name,
                const char *recvr_name, int16 mess_type, int mess_len,
                const char *mess);
int  FL_scat_unicast(mailbox mbox, service serv_type, const char *group_name,
                     const char *recvr_name, int16 mess_type,
                     const scatter *scat);
int  FL_subgroupcast(mailbox mbox, service serv_type, const char *group_name,
                     int num_recvrs, char recvr_names[][MAX_GROUP_NAME],
                     int16 mess_type, int mess_len, const char *mess);
int  FL_scat_subgroupcast(mailbox mbox, service serv_type,
                          const char *group_name, int num_recvrs,
                          char recvr_names[][MAX_GROUP_NAME],
                          int16 mess_type, const scatter *scat);
int  FL_multicast(mailbox mbox, service serv_type, const char *group_name,
                  int16 mess_type, int mess_len, const char *mess);
int  FL_scat_multicast(mailbox mbox, service serv_type, const char *group_name,
                       int16 mess_type, const scatter *scat_mess);

int  FL_receive(mailbox mbox, service *serv_type, char *sender_name,
                int max_groups, int *num_groups,
                char group_names[][MAX_GROUP_NAME], int16 *mess_type,
                int *endian_mismatch, int max_mess_len, char *mess,
                int *more_msgs);
int  FL_scat_receive(mailbox mbox, service *serv_type, char *sender_name,
                     int max_groups, int *num_groups,
                     char group_names[][MAX_GROUP_NAME], int16 *mess_type,
                     int *endian_mismatch, scatter *scat_mess,
                     int *more_msgs);

int  FL_more_msgs(mailbox mbox);
int  FL_poll(mailbox mbox);
void FL_error(int error_code);

/* Offsets in the body of a flush membership message: the view id, the
 * number of names in its set, the names. */
int  FL_get_gid_offset_memb_mess(void);
int  FL_get_num_vs_offset_memb_mess(void);
int  FL_get_vs_set_offset_memb_mess(void);

#ifdef __cplusplus
}
#endif

#endif /* INC_FL */

/*
 * sp.h - public interface of libspread (spread-rs).
 *
 * Source-compatible with the Spread 4.4 client header: the same macros,
 * constants, types and functions, so existing programs build unchanged.
 * Implementation: the spread-capi crate (Rust), licensed MIT OR Apache-2.0.
 */

#ifndef INC_SP
#define INC_SP

#include <stddef.h> /* size_t */

#ifdef __cplusplus
extern "C" {
#endif

/* Integer spellings the API uses (macros, as programs expect). */
#define int16 short
#define int32 int

/* Byte swaps of 16- and 32-bit values. */
#define Flip_int16(v) ((((v) >> 8) & 0x00ff) | (((v) << 8) & 0xff00))
#define Flip_int32(v)                                                        \
    ((((v) >> 24) & 0x000000ff) | (((v) >> 8) & 0x0000ff00) |                \
     (((v) << 8) & 0x00ff0000) | (((v) << 24) & 0xff000000))

/* Priorities of the event loop (see sp_events.h). */
#define LOW_PRIORITY 0
#define MEDIUM_PRIORITY 1
#define HIGH_PRIORITY 2

/* Where a daemon listens when the spread name gives no port. */
#define DEFAULT_SPREAD_PORT 4803

/* Version of this interface: major << 24 | minor << 16 | patch. */
#define SPREAD_VERSION ((4 << 24) | (4 << 16) | 0)

/* Sizes of names, terminating NUL included for group names. */
#define MAX_GROUP_NAME 32
#define MAX_PRIVATE_NAME 10
#define MAX_PROC_NAME 20

/* Service types: exactly one of these per message. */
#define UNRELIABLE_MESS 0x00000001
#define RELIABLE_MESS 0x00000002
#define FIFO_MESS 0x00000004
#define CAUSAL_MESS 0x00000008
#define AGREED_MESS 0x00000010
#define SAFE_MESS 0x00000020
#define REGULAR_MESS 0x0000003f

/* Flags added to a service type. */
#define SELF_DISCARD 0x00000040
#define DROP_RECV 0x01000000

/* Membership notices. */
#define REG_MEMB_MESS 0x00001000
#define TRANSITION_MESS 0x00002000
#define CAUSED_BY_JOIN 0x00000100
#define CAUSED_BY_LEAVE 0x00000200
#define CAUSED_BY_DISCONNECT 0x00000400
#define CAUSED_BY_NETWORK 0x00000800
#define MEMBERSHIP_MESS 0x00003f00

#define ENDIAN_RESERVED 0x80000080
#define RESERVED 0x003fc000
#define REJECT_MESS 0x00400000

/* Tests of a received service type. */
#define Is_unreliable_mess(type) (type & UNRELIABLE_MESS)
#define Is_reliable_mess(type) (type & RELIABLE_MESS)
#define Is_fifo_mess(type) (type & FIFO_MESS)
#define Is_causal_mess(type) (type & CAUSAL_MESS)
#define Is_agreed_mess(type) (type & AGREED_MESS)
#define Is_safe_mess(type) (type & SAFE_MESS)
#define Is_regular_mess(type) ((type & REGULAR_MESS) && !(type & REJECT_MESS))
#define Is_self_discard(type) (type & SELF_DISCARD)
#define Is_reg_memb_mess(type) (type & REG_MEMB_MESS)
#define Is_transition_mess(type) (type & TRANSITION_MESS)
#define Is_caused_join_mess(type) (type & CAUSED_BY_JOIN)
#define Is_caused_leave_mess(type) (type & CAUSED_BY_LEAVE)
#define Is_caused_disconnect_mess(type) (type & CAUSED_BY_DISCONNECT)
#define Is_caused_network_mess(type) (type & CAUSED_BY_NETWORK)
#define Is_membership_mess(type) ((type & MEMBERSHIP_MESS) && !(type & REJECT_MESS))
#define Is_reject_mess(type) (type & REJECT_MESS)
#define Is_self_leave(type)                                                  \
    (((type) & CAUSED_BY_LEAVE) && !((type) & (REG_MEMB_MESS | TRANSITION_MESS)))

/* Results of SP_connect, and error codes of every call (negative). */
#define ACCEPT_SESSION 1
#define ILLEGAL_SPREAD -1
#define COULD_NOT_CONNECT -2
#define REJECT_QUOTA -3
#define REJECT_NO_NAME -4
#define REJECT_ILLEGAL_NAME -5
#define REJECT_NOT_UNIQUE -6
#define REJECT_VERSION -7
#define CONNECTION_CLOSED -8
#define REJECT_AUTH -9

#define ILLEGAL_SESSION -11
#define ILLEGAL_SERVICE -12
#define ILLEGAL_MESSAGE -13
#define ILLEGAL_GROUP -14
#define BUFFER_TOO_SHORT -15
#define GROUPS_TOO_SHORT -16
#define MESSAGE_TOO_LONG -17
#define NET_ERROR_ON_SESSION -18
#define SP_BUG -19

/* Elements a scatter can hold. */
#define MAX_CLIENT_SCATTER_ELEMENTS 100

/* A connection to a daemon: its socket descriptor. */
typedef int mailbox;
typedef int service;

/* One piece of a scattered message body. */
typedef struct dummy_scat_element {
    char *buf;
    size_t len;
} scat_element;

/* A message body in up to MAX_CLIENT_SCATTER_ELEMENTS pieces. */
typedef struct dummy_scatter {
    size_t num_elements;
    scat_element elements[MAX_CLIENT_SCATTER_ELEMENTS];
} scatter;

/* Identifies one view of a group. */
typedef struct dummy_group_id {
    int32 id[3];
} group_id;

/* A set of members that moved together; offset counted from the body start. */
typedef struct dummy_vs_set_info {
    unsigned int num_members;
    unsigned int members_offset;
} vs_set_info;

/* What SP_get_memb_info extracts from a membership notice. */
typedef struct dummy_membership_info {
    group_id gid;
    char changed_member[MAX_GROUP_NAME];
    unsigned int num_vs_sets;
    vs_set_info my_vs_set;
} membership_info;

#include "sp_events.h"
#include "sp_func.h"

#ifdef __cplusplus
}
#endif

#endif /* INC_SP */

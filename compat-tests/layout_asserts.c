/*
 * layout_asserts.c - the structure layouts of sp.h, as the original Spread 4.4
 * library lays them out on x86-64 (LP64). Compiles only if they match.
 * Part of spread-rs (MIT OR Apache-2.0).
 */
#include <stddef.h>

#include "sp.h"

#if defined(__x86_64__) || defined(__aarch64__) || (defined(__LP64__) && __LP64__)
_Static_assert(sizeof(scat_element) == 16, "sizeof(scat_element)");
_Static_assert(offsetof(scat_element, buf) == 0, "scat_element.buf");
_Static_assert(offsetof(scat_element, len) == 8, "scat_element.len");
_Static_assert(sizeof(scatter) == 1608, "sizeof(scatter)");
_Static_assert(offsetof(scatter, num_elements) == 0, "scatter.num_elements");
_Static_assert(offsetof(scatter, elements) == 8, "scatter.elements");
_Static_assert(sizeof(sp_time) == 16, "sizeof(sp_time)");
_Static_assert(offsetof(sp_time, usec) == 8, "sp_time.usec");
#endif
_Static_assert(sizeof(group_id) == 12, "sizeof(group_id)");
_Static_assert(sizeof(vs_set_info) == 8, "sizeof(vs_set_info)");
_Static_assert(offsetof(vs_set_info, members_offset) == 4, "vs_set_info.members_offset");
_Static_assert(sizeof(membership_info) == 56, "sizeof(membership_info)");
_Static_assert(offsetof(membership_info, gid) == 0, "membership_info.gid");
_Static_assert(offsetof(membership_info, changed_member) == 12, "membership_info.changed_member");
_Static_assert(offsetof(membership_info, num_vs_sets) == 44, "membership_info.num_vs_sets");
_Static_assert(offsetof(membership_info, my_vs_set) == 48, "membership_info.my_vs_set");
_Static_assert(sizeof(mailbox) == sizeof(int), "mailbox is an int");
_Static_assert(sizeof(service) == sizeof(int), "service is an int");
_Static_assert(sizeof(int16) == 2 && sizeof(int32) == 4, "int16, int32");
_Static_assert(MAX_GROUP_NAME == 32 && MAX_CLIENT_SCATTER_ELEMENTS == 100, "sizes");
_Static_assert(SPREAD_VERSION == 0x04040000, "SPREAD_VERSION");
_Static_assert(DROP_RECV == 0x01000000 && REJECT_MESS == 0x00400000 && SELF_DISCARD == 0x40, "flags");
_Static_assert(BUFFER_TOO_SHORT == -15 && GROUPS_TOO_SHORT == -16 && NET_ERROR_ON_SESSION == -18, "codes");

int layout_asserts_compiled(void) { return 1; }

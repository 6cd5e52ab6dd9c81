/*
 * sp_func.h - the functions of libspread (spread-rs).
 *
 * Include sp.h rather than this file. Same prototypes as the Spread 4.4
 * client interface, plus the three membership-offset helpers of Spread 3.x.
 * Implementation: spread-capi (Rust).
 */

/* Library version; 1 on success, 0 if a pointer is NULL. */
int SP_version(int *major_version, int *minor_version, int *patch_version);

/* Authentication hooks run during SP_connect; 1 on success, 0 on error. */
int SP_set_auth_method(const char *auth_name, int (*auth_function)(int, void *), void *auth_data);
int SP_set_auth_methods(int num_methods, const char *auth_name[], int (*auth_function[])(int, void *),
                        void *auth_data[]);

/* Sessions. */
int SP_connect(const char *spread_name, const char *private_name, int priority, int group_membership,
               mailbox *mbox, char *private_group);
int SP_connect_timeout(const char *spread_name, const char *private_name, int priority,
                       int group_membership, mailbox *mbox, char *private_group, sp_time time_out);
int SP_disconnect(mailbox mbox);
void SP_kill(mailbox mbox);

/* Groups. */
int SP_join(mailbox mbox, const char *group);
int SP_leave(mailbox mbox, const char *group);

/* Sending: the body length on success, a negative code otherwise. */
int SP_multicast(mailbox mbox, service service_type, const char *group, int16 mess_type, int mess_len,
                 const char *mess);
int SP_scat_multicast(mailbox mbox, service service_type, const char *group, int16 mess_type,
                      const scatter *scat_mess);
int SP_multigroup_multicast(mailbox mbox, service service_type, int num_groups,
                            const char groups[][MAX_GROUP_NAME], int16 mess_type, int mess_len,
                            const char *mess);
int SP_multigroup_scat_multicast(mailbox mbox, service service_type, int num_groups,
                                 const char groups[][MAX_GROUP_NAME], int16 mess_type,
                                 const scatter *scat_mess);

/* Receiving: the body length on success, a negative code otherwise. */
int SP_receive(mailbox mbox, service *service_type, char sender[MAX_GROUP_NAME], int max_groups,
               int *num_groups, char groups[][MAX_GROUP_NAME], int16 *mess_type, int *endian_mismatch,
               int max_mess_len, char *mess);
int SP_scat_receive(mailbox mbox, service *service_type, char sender[MAX_GROUP_NAME], int max_groups,
                    int *num_groups, char groups[][MAX_GROUP_NAME], int16 *mess_type,
                    int *endian_mismatch, scatter *scat_mess);

/* Reading the body of a membership notice. */
int SP_get_memb_info(const char *memb_mess, const service service_type, membership_info *memb_info);
int SP_get_vs_sets_info(const char *memb_mess, vs_set_info *vs_sets, int num_vs_sets,
                        unsigned int *my_vs_set_index);
int SP_get_vs_set_members(const char *memb_mess, const vs_set_info *vs_set,
                          char member_names[][MAX_GROUP_NAME], int member_names_count);

int SP_scat_get_memb_info(const scatter *memb_mess_scat, const service service_type,
                          membership_info *memb_info);
int SP_scat_get_vs_sets_info(const scatter *memb_mess_scat, vs_set_info *vs_sets, int num_vs_sets,
                             unsigned int *my_vs_set_index);
int SP_scat_get_vs_set_members(const scatter *memb_mess_scat, const vs_set_info *vs_set,
                               char member_names[][MAX_GROUP_NAME], int member_names_count);

/* Spread 3.x helpers: byte offsets, in a membership body, of the group id,
 * of the member count of the (first) set and of its member names. */
int SP_get_gid_offset_memb_mess(void);
int SP_get_num_vs_offset_memb_mess(void);
int SP_get_vs_set_offset_memb_mess(void);

/* Bytes waiting on the mailbox. */
int SP_poll(mailbox mbox);

/* 1 if the two ids are equal, else 0. */
int SP_equal_group_ids(group_id g1, group_id g2);

/* Print the meaning of an error code. */
void SP_error(int error);

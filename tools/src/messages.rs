//! What kind of message a service type announces: the `Is_*_mess` tests
//! of `sp.h`, as programs apply them (a reject bit makes a message neither
//! regular nor a membership notice).

use spread_wire::client::service::*;

pub fn is_regular(st: u32) -> bool {
    st & REGULAR_MESS != 0 && st & REJECT_MESS == 0
}

pub fn is_membership(st: u32) -> bool {
    st & MEMBERSHIP_MESS != 0 && st & REJECT_MESS == 0
}

pub fn is_reject(st: u32) -> bool {
    st & REJECT_MESS != 0
}

/// The service word the tools print for a regular message ("SAFE", ...):
/// the first of the service bits set, in the order of `sp.h`.
pub fn service_word(st: u32) -> &'static str {
    const WORDS: [(u32, &str); 6] = [
        (UNRELIABLE_MESS, "UNRELIABLE"),
        (RELIABLE_MESS, "RELIABLE"),
        (FIFO_MESS, "FIFO"),
        (CAUSAL_MESS, "CAUSAL"),
        (AGREED_MESS, "AGREED"),
        (SAFE_MESS, "SAFE"),
    ];
    WORDS
        .iter()
        .find(|(bit, _)| st & bit != 0)
        .map(|(_, w)| *w)
        .unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        assert!(is_regular(SAFE_MESS));
        assert!(!is_regular(SAFE_MESS | REJECT_MESS));
        assert!(is_reject(SAFE_MESS | REJECT_MESS));
        assert!(is_membership(REG_MEMB_MESS | CAUSED_BY_JOIN));
        assert!(!is_membership(REG_MEMB_MESS | REJECT_MESS));
        assert_eq!(service_word(FIFO_MESS | SAFE_MESS), "FIFO");
        assert_eq!(service_word(AGREED_MESS), "AGREED");
    }
}

//! The library's result codes.

use spread_wire::client::code;

/// Every negative code a call of the library can return.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpError {
    IllegalSpread,
    CouldNotConnect,
    RejectQuota,
    RejectNoName,
    RejectIllegalName,
    RejectNotUnique,
    RejectVersion,
    ConnectionClosed,
    RejectAuth,
    IllegalSession,
    IllegalService,
    IllegalMessage,
    IllegalGroup,
    BufferTooShort,
    GroupsTooShort,
    MessageTooLong,
    NetErrorOnSession,
    Bug,
    /// A code this library does not know (a daemon may send any reject byte).
    Other(i32),
}

impl SpError {
    pub fn code(self) -> i32 {
        match self {
            SpError::IllegalSpread => code::ILLEGAL_SPREAD,
            SpError::CouldNotConnect => code::COULD_NOT_CONNECT,
            SpError::RejectQuota => code::REJECT_QUOTA,
            SpError::RejectNoName => code::REJECT_NO_NAME,
            SpError::RejectIllegalName => code::REJECT_ILLEGAL_NAME,
            SpError::RejectNotUnique => code::REJECT_NOT_UNIQUE,
            SpError::RejectVersion => code::REJECT_VERSION,
            SpError::ConnectionClosed => code::CONNECTION_CLOSED,
            SpError::RejectAuth => code::REJECT_AUTH,
            SpError::IllegalSession => code::ILLEGAL_SESSION,
            SpError::IllegalService => code::ILLEGAL_SERVICE,
            SpError::IllegalMessage => code::ILLEGAL_MESSAGE,
            SpError::IllegalGroup => code::ILLEGAL_GROUP,
            SpError::BufferTooShort => code::BUFFER_TOO_SHORT,
            SpError::GroupsTooShort => code::GROUPS_TOO_SHORT,
            SpError::MessageTooLong => code::MESSAGE_TOO_LONG,
            SpError::NetErrorOnSession => code::NET_ERROR_ON_SESSION,
            SpError::Bug => code::SP_BUG,
            SpError::Other(c) => c,
        }
    }

    pub fn from_code(c: i32) -> SpError {
        const ALL: [SpError; 18] = [
            SpError::IllegalSpread,
            SpError::CouldNotConnect,
            SpError::RejectQuota,
            SpError::RejectNoName,
            SpError::RejectIllegalName,
            SpError::RejectNotUnique,
            SpError::RejectVersion,
            SpError::ConnectionClosed,
            SpError::RejectAuth,
            SpError::IllegalSession,
            SpError::IllegalService,
            SpError::IllegalMessage,
            SpError::IllegalGroup,
            SpError::BufferTooShort,
            SpError::GroupsTooShort,
            SpError::MessageTooLong,
            SpError::NetErrorOnSession,
            SpError::Bug,
        ];
        ALL.into_iter()
            .find(|e| e.code() == c)
            .unwrap_or(SpError::Other(c))
    }

    /// What `SP_error` says about the code (the original's wording).
    pub fn description(self) -> &'static str {
        match self {
            SpError::IllegalSpread => "Illegal spread was provided",
            SpError::CouldNotConnect => "Could not connect. Is Spread running?",
            SpError::RejectQuota => "Connection rejected, too many users",
            SpError::RejectNoName => "Connection rejected, no name was supplied",
            SpError::RejectIllegalName => "Connection rejected, illegal name",
            SpError::RejectNotUnique => "Connection rejected, name not unique",
            SpError::RejectVersion => "Connection rejected, library does not fit daemon",
            SpError::ConnectionClosed => "Connection closed by spread",
            SpError::RejectAuth => "Connection rejected, authentication failed",
            SpError::IllegalSession => "Illegal session was supplied",
            SpError::IllegalService => "Illegal service request",
            SpError::IllegalMessage => "Illegal message",
            SpError::IllegalGroup => "Illegal group",
            SpError::BufferTooShort => "The supplied buffer was too short",
            SpError::GroupsTooShort => "The supplied groups list was too short",
            SpError::MessageTooLong => "The message body + group names was too large to fit in a message",
            SpError::NetErrorOnSession => {
                "The network socket experienced an error. This Spread mailbox will no longer work until \
                 the connection is disconnected and then reconnected"
            }
            SpError::Bug => "Internal spread bug detected!",
            SpError::Other(_) => "unrecognized error",
        }
    }
}

impl std::fmt::Display for SpError {
    /// The line `SP_error` prints, without the newline.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SP_error: ({}) {}", self.code(), self.description())
    }
}

impl std::error::Error for SpError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for c in -19..=-1 {
            let e = SpError::from_code(c);
            assert_eq!(e.code(), c);
        }
        assert_eq!(SpError::from_code(-10), SpError::Other(-10));
        assert_eq!(
            SpError::BufferTooShort.to_string(),
            "SP_error: (-15) The supplied buffer was too short"
        );
        assert_eq!(SpError::Other(7).to_string(), "SP_error: (7) unrecognized error");
    }
}

//! The Flush layer (`fl.h`): view-synchronous, closed groups on top of the
//! client sessions of [`crate::client`].
//!
//! * [`spread_wire::flush`] (in the codec crate): what the layer adds to
//!   ordinary messages (flush oks, flush receipts, vulnerable and
//!   subgroupcast trailers, the view body it delivers), byte for byte as the
//!   original library, so programs on either library share groups.
//! * [`view`]: the agreement on views of one group, without I/O.
//! * [`conn`]: connections, the queue of messages for the program, locking
//!   and the session I/O.
//! * [`ffi`]: the `FL_*` C functions.

pub mod conn;
pub mod ffi;
pub mod view;

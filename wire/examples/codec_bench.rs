//! Hot-path codec timings: `cargo run --release -p spread-wire --example codec_bench [iters]`.
//!
//! Prints ns/op for the parsers and writers the daemon and the client library
//! run per message, packet and token. The machine may be shared: for
//! load-independent numbers run it under callgrind and divide each `case_*`
//! function's inclusive instruction count by the iterations:
//!
//! ```text
//! valgrind --tool=callgrind --toggle-collect='*case_token_parse' \
//!     target/release/examples/codec_bench 10000 once
//! ```
//!
//! `wire/examples/codec_bench_ir.sh` does that for every case.

use std::hint::black_box;
use std::time::Instant;

use spread_wire::client::service::AGREED_MESS;
use spread_wire::client::MembId;
use spread_wire::client::{hint_for, GroupName, Message, MessageHeader};
use spread_wire::daemon::bits::{AGREED, FIFO};
use spread_wire::daemon::{DataPacket, Fragment, PacketHeader, RingRtr, Token, TokenHeader};
use spread_wire::endian::ByteOrder;

const ORDER: ByteOrder = ByteOrder::Little;

struct Inputs {
    header: Vec<u8>,
    header_be: Vec<u8>,
    message: Message,
    message_bytes: Vec<u8>,
    packet: DataPacket,
    packet_bytes: Vec<u8>,
    packed_bytes: Vec<u8>,
    token: Token,
    token_bytes: Vec<u8>,
    token_rtr: Token,
    token_rtr_bytes: Vec<u8>,
}

fn inputs() -> Inputs {
    let h = MessageHeader {
        service_type: AGREED_MESS,
        sender: GroupName::new(b"#bench#d1").unwrap(),
        num_groups: 1,
        hint: hint_for(7, ORDER),
        data_len: 100,
    };
    let message = Message {
        header: h,
        groups: vec![GroupName::new(b"group1").unwrap()],
        body: vec![0x5a; 100],
    };
    let memb_id = MembId {
        proc_id: 0x0a63_0002,
        time: 0x6b03_e6ff,
    };
    let pheader = PacketHeader {
        kind: AGREED,
        transmitter: 0x0a63_0002,
        proc_id: 0x0a63_0002,
        memb_id,
        seq: 1234,
        token_round: 77,
        conf_hash: 0x2e60_5bb4,
        ..PacketHeader::default()
    };
    let packet = DataPacket {
        header: pheader,
        fragments: vec![Fragment {
            index: -1,
            bytes: vec![0xa5; 1400],
        }],
    };
    let packed = DataPacket {
        header: PacketHeader {
            kind: FIFO,
            ..pheader
        },
        fragments: (0..8)
            .map(|_| Fragment {
                index: -1,
                bytes: vec![0x11; 150],
            })
            .collect(),
    };
    let theader = TokenHeader {
        kind: 0x0017_0000,
        transmitter: 0x0a63_0002,
        proc_id: 0x0a63_0002,
        memb_id,
        seq: 1234,
        aru: 1200,
        aru_last_id: 0x0a63_0003,
        flow_control: 40,
        rtr_len: 0,
        conf_hash: 0x2e60_5bb4,
    };
    let token = Token {
        header: theader,
        rtr: Vec::new(),
    };
    let token_rtr = Token {
        header: theader,
        rtr: vec![RingRtr {
            memb_id,
            proc_id: 0x0a63_0003,
            seg_index: 0,
            seqs: (1201..1211).collect(),
        }],
    };
    Inputs {
        header: h.emit(ORDER).to_vec(),
        header_be: h.emit(ByteOrder::Big).to_vec(),
        message_bytes: message.emit(ORDER),
        message,
        packet_bytes: packet.emit(ORDER),
        packet,
        packed_bytes: packed.emit(ORDER),
        token_bytes: token.emit(ORDER),
        token,
        token_rtr_bytes: token_rtr.emit(ORDER),
        token_rtr,
    }
}

macro_rules! case {
    ($name:ident, |$i:ident| $body:expr) => {
        #[inline(never)]
        fn $name($i: &Inputs, iters: u64) {
            for _ in 0..iters {
                black_box($body);
            }
        }
    };
}

case!(case_message_header_parse, |i| MessageHeader::parse(black_box(
    &i.header
))
.unwrap());
case!(case_message_header_parse_be, |i| MessageHeader::parse(black_box(
    &i.header_be
))
.unwrap());
case!(case_message_header_emit, |i| black_box(&i.message.header)
    .emit(ORDER));
case!(case_message_parse, |i| Message::parse(black_box(
    &i.message_bytes
))
.unwrap());
case!(case_message_emit, |i| black_box(&i.message).emit(ORDER));
case!(case_packet_header_parse, |i| PacketHeader::parse(black_box(
    &i.packet_bytes
))
.unwrap());
case!(case_packet_header_emit, |i| black_box(&i.packet.header)
    .emit(ORDER));
case!(case_data_packet_parse, |i| DataPacket::parse(black_box(
    &i.packet_bytes
))
.unwrap());
case!(case_data_packet_parse_packed8, |i| DataPacket::parse(black_box(
    &i.packed_bytes
))
.unwrap());
case!(case_data_packet_emit, |i| black_box(&i.packet).emit(ORDER));
case!(case_token_header_parse, |i| TokenHeader::parse(black_box(
    &i.token_bytes
))
.unwrap());
case!(case_token_parse, |i| Token::parse(black_box(&i.token_bytes))
    .unwrap());
case!(case_token_parse_rtr10, |i| Token::parse(black_box(
    &i.token_rtr_bytes
))
.unwrap());
case!(case_token_emit, |i| black_box(&i.token).emit(ORDER));
case!(case_token_emit_rtr10, |i| black_box(&i.token_rtr).emit(ORDER));

type Case = (&'static str, fn(&Inputs, u64));

const CASES: &[Case] = &[
    ("message_header_parse", case_message_header_parse),
    ("message_header_parse_be", case_message_header_parse_be),
    ("message_header_emit", case_message_header_emit),
    ("message_parse(1 group, 100 B)", case_message_parse),
    ("message_emit(1 group, 100 B)", case_message_emit),
    ("packet_header_parse", case_packet_header_parse),
    ("packet_header_emit", case_packet_header_emit),
    ("data_packet_parse(1x1400 B)", case_data_packet_parse),
    ("data_packet_parse(8x150 B)", case_data_packet_parse_packed8),
    ("data_packet_emit(1x1400 B)", case_data_packet_emit),
    ("token_header_parse", case_token_header_parse),
    ("token_parse(no rtr)", case_token_parse),
    ("token_parse(rtr 10 seqs)", case_token_parse_rtr10),
    ("token_emit(no rtr)", case_token_emit),
    ("token_emit(rtr 10 seqs)", case_token_emit_rtr10),
];

fn main() {
    let iters: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(2_000_000);
    // `once`: each case runs exactly `iters` times (for callgrind counts).
    let once = std::env::args().nth(2).as_deref() == Some("once");
    let i = inputs();
    for (name, f) in CASES {
        if once {
            f(&i, iters);
            continue;
        }
        f(&i, iters / 10); // warm up
        let mut best = f64::MAX;
        for _ in 0..3 {
            let t = Instant::now();
            f(&i, iters);
            best = best.min(t.elapsed().as_nanos() as f64 / iters as f64);
        }
        println!("{name:34} {best:8.1} ns/op");
    }
}

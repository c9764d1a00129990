//! Property tests: TFTP parsing and the transfer state machine never panic on hostile
//! bytes, and what parses emits back to the same meaning.

use std::time::{Duration, Instant};

use proptest::prelude::*;
use sixboot::tftp::transfer::{Event, Settings, Transfer};
use sixboot::tftp::wire::Repr;

/// Bytes that look like TFTP often enough to reach the deep branches: a real opcode,
/// then NUL-separated pieces of option names and numbers.
fn tftp_like() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"blksize".to_vec()),
        Just(b"tsize".to_vec()),
        Just(b"windowsize".to_vec()),
        Just(b"timeout".to_vec()),
        Just(b"octet".to_vec()),
        Just(b"netascii".to_vec()),
        "[0-9]{0,6}".prop_map(String::into_bytes),
        prop::collection::vec(any::<u8>(), 0..8),
    ];
    (0u16..8, prop::collection::vec(piece, 0..8), any::<bool>()).prop_map(
        |(opcode, pieces, terminated)| {
            let mut bytes = opcode.to_be_bytes().to_vec();
            for (i, piece) in pieces.iter().enumerate() {
                bytes.extend_from_slice(piece);
                if terminated || i + 1 < pieces.len() {
                    bytes.push(0);
                }
            }
            bytes
        },
    )
}

fn any_packet() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![prop::collection::vec(any::<u8>(), 0..64), tftp_like()]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn parsing_never_panics_and_what_parses_emits_to_the_same_meaning(bytes in any_packet()) {
        if let Ok(repr) = Repr::parse_bytes(&bytes) {
            let emitted = repr.to_bytes();
            prop_assert_eq!(emitted.len(), repr.buffer_len());
            let again = Repr::parse_bytes(&emitted);
            prop_assert_eq!(again, Ok(repr));
        }
    }

    #[test]
    fn the_state_machine_never_panics_on_any_sequence_of_packets(
        request in any_packet(),
        packets in prop::collection::vec(any_packet(), 0..20),
        size in 0u64..100_000,
    ) {
        let t0 = Instant::now();
        let (mut transfer, _) = Transfer::start(t0, &request, Settings::default());
        transfer.handle(t0, Event::Opened(Ok(size)));
        for (i, packet) in packets.iter().enumerate() {
            let now = t0 + Duration::from_millis(300 * i as u64);
            transfer.handle(now, Event::Packet(packet));
            transfer.handle(now, Event::Timer);
        }
    }
}

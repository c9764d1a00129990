//! Any ICMPv6 message through the RS/RA parser; what parses must emit and parse back
//! to the same thing. Run with `cargo +nightly fuzz run ra_parse`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sixboot::ra::Repr;

fuzz_target!(|data: &[u8]| {
    if let Ok(repr) = Repr::parse(data) {
        let bytes = repr.to_bytes();
        assert_eq!(Repr::parse(&bytes).as_ref(), Ok(&repr));
    }
});

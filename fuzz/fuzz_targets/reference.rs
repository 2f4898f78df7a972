#![no_main]
use libfuzzer_sys::fuzz_target;
use refwarden::registry::ImageReference;

fuzz_target!(|s: &str| {
    if let Ok(r) = ImageReference::parse(s) {
        let again = ImageReference::parse(&r.whole()).expect("whole() must parse");
        assert_eq!(again, r, "parse(whole()) must round-trip");
    }
});

#![no_main]
use libfuzzer_sys::fuzz_target;
use refwarden::registry::WwwAuthenticate;

fuzz_target!(|s: &str| {
    let _ = WwwAuthenticate::parse(s);
});

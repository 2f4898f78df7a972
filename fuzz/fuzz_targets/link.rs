#![no_main]
use libfuzzer_sys::fuzz_target;
use refwarden::discovery::link;

fuzz_target!(|s: &str| {
    let _ = link::parse(s);
    if let Ok(base) = url::Url::parse("https://r.example/v2/a/referrers/sha256:x") {
        let _ = link::next_link([s], &base);
    }
});

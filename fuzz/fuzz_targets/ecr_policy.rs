#![no_main]
use libfuzzer_sys::fuzz_target;
use refwarden::lifecycle::ecr;

fuzz_target!(|s: &str| {
    let _ = ecr::parse_policy(s);
    let _ = ecr::analyze_policy_text(s, Some("fuzz"));
});

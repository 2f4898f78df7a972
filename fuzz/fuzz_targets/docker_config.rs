#![no_main]
use libfuzzer_sys::fuzz_target;
use refwarden::registry::DockerConfig;

fuzz_target!(|b: &[u8]| {
    if let Ok(c) = DockerConfig::parse(b) {
        let hosts: Vec<String> = c.hosts().map(str::to_string).collect();
        for h in hosts {
            let _ = format!("{:?}", c.credentials_for(&h));
        }
    }
});

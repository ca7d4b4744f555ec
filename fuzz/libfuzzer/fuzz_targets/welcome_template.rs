#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| deadbolt_fuzz::targets::welcome_template(data));

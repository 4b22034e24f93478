#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hermes_s6_helper_fuzz::check_profile(data));

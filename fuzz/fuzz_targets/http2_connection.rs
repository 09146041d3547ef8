//! libFuzzer target: see `terraform_provider_hybrid::fuzzing::http2_connection`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    terraform_provider_hybrid::fuzzing::http2_connection(data);
});

//! Fuzz target `ws_codec`: runs [`drupal_push_tests::fuzz::ws_codec`] on each input (see its docs
//! and `server/fuzz/README.md`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| drupal_push_tests::fuzz::ws_codec(data));

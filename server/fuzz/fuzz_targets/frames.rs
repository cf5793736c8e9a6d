//! Fuzz target `frames`: runs [`drupal_push_tests::fuzz::frames`] on each input (see its docs and
//! `server/fuzz/README.md`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| drupal_push_tests::fuzz::frames(data));

//! Fuzz target `config_js`: runs [`drupal_push_tests::fuzz::config_js`] on each input (see its docs and
//! `server/fuzz/README.md`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| drupal_push_tests::fuzz::config_js(data));

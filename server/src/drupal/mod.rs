//! Drupal's side: the client of its `/nodejs/message` endpoint ([`backend`]: authentication
//! and forwarded messages), presence notices sent in order per user ([`notices`]), the fake
//! Drupal shared by the demo, the tests and the benchmark ([`fake_drupal`]), and the demo mode
//! that plays a Drupal site with it ([`demo`]).

pub mod backend;
pub mod demo;
pub mod fake_drupal;
pub mod notices;

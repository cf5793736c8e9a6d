//! The edge: what is let in before a request or a socket costs anything. Page origins
//! ([`origin`]), client addresses behind trusted proxies ([`proxy`]), per-address keys and rate
//! limits ([`limits`]), the WebSocket upgrade's checks in one place ([`admission`]), the fair
//! share of Drupal's queue per address ([`fair_slots`]), the cache of tokens Drupal refused
//! ([`reject_cache`]), and the browser checks of what runs without a service key
//! ([`open_guard`]).

pub mod admission;
pub mod fair_slots;
pub mod limits;
pub mod open_guard;
pub mod origin;
pub mod proxy;
pub mod reject_cache;

//! HTTP plumbing: the listener and its connections ([`serve`], with caps and timeouts from
//! [`http_conns`]), TLS ([`tls`]), and the browser client's files served from the binary
//! ([`client_assets`]). What the routes do is elsewhere ([`crate::api`], [`crate::conn`],
//! [`crate::ops`]).

pub mod client_assets;
pub mod http_conns;
pub mod serve;
pub mod tls;

//! The byte stream under one WebSocket connection, usable through a shared reference so that
//! publishers can write to it directly (see [`crate::conn::outbox`]) while the connection task reads.
//!
//! A plain-TCP connection is the `TcpStream` itself, taken back from hyper after the upgrade.
//! Anything else (the `https` listener's TLS stream) is bridged through a Unix socket pair: a
//! small pump task copies between the TLS stream and one end, the connection uses the other
//! (why: see ARCHITECTURE.md, Decisions).

use bytes::Bytes;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use std::io::{self, IoSlice};
use tokio::net::{TcpStream, UnixStream};

pub enum Socket {
    Tcp(TcpStream),
    Unix(UnixStream),
}

macro_rules! each {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            Socket::Tcp($s) => $e,
            Socket::Unix($s) => $e,
        }
    };
}

impl Socket {
    /// The socket of an upgraded HTTP connection, and bytes hyper had already read past the
    /// request (a client may send its first frame right after the upgrade request).
    pub fn from_upgraded(upgraded: Upgraded) -> io::Result<(Socket, Bytes)> {
        match upgraded.downcast::<TokioIo<TcpStream>>() {
            // `read_buf` is a view into hyper's whole read buffer (8 KiB or more): copied out
            // (it is nearly always empty), so the connection does not keep that buffer alive.
            Ok(parts) => Ok((Socket::Tcp(parts.io.into_inner()), Bytes::copy_from_slice(&parts.read_buf))),
            Err(upgraded) => {
                let (ours, theirs) = UnixStream::pair()?;
                tokio::spawn(async move {
                    let mut tls = TokioIo::new(upgraded);
                    let mut theirs = theirs;
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut theirs).await;
                });
                Ok((Socket::Unix(ours), Bytes::new()))
            }
        }
    }

    pub async fn readable(&self) -> io::Result<()> {
        each!(self, s => s.readable().await)
    }

    pub async fn writable(&self) -> io::Result<()> {
        each!(self, s => s.writable().await)
    }

    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        each!(self, s => s.try_read(buf))
    }

    pub fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        each!(self, s => s.try_write(buf))
    }

    pub fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        each!(self, s => s.try_write_vectored(bufs))
    }

    /// Ends both directions now, whoever else still holds the socket.
    pub fn shutdown(&self) {
        let _ = each!(self, s => socket2::SockRef::from(s).shutdown(std::net::Shutdown::Both));
    }
}

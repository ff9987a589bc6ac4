//! Integration tests of the HTTP layer over real sockets on 127.0.0.1.

mod client;
mod h1;
mod h2;
mod h2c;
mod park;
mod proxy;
mod support;

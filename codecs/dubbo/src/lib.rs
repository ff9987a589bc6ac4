//! Apache Dubbo 2 over TCP for Strait (work in progress).
#![forbid(unsafe_code)]

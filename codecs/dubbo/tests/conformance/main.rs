//! Conformance tests of the Dubbo codec: fixtures, `wire-formats.md` §6.2 cases D1-D32,
//! detection A3/A7, proxy-facing behaviour (P3, heartbeats, error answers), attachment
//! editing, hessian2 edge cases and a robustness sweep.

mod attachments;
mod cases;
mod cases_body;
mod fixtures;
mod hessian;
mod mosn;
mod proxy;
mod robustness;
mod support;

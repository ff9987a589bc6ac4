//! Conformance tests of the Bolt codec: fixtures, `wire-formats.md` §6.1 cases B1-B29,
//! proxy-facing cases P1/P2/P6/P17/P18, header editing and a robustness sweep.

mod cases;
mod cases_sections;
mod fixtures;
mod headers;
mod proxy;
mod robustness;
mod support;

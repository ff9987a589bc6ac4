//! Strait proxy library.

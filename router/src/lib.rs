//! Virtual hosts, ordered routes and route actions over the protocol-neutral frame view.

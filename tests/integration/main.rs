//! Integration tests: the real `scrape` binary against a real HTTP server on loopback. One test
//! binary (one link step) with a module per area.

mod support;

mod check;
mod extraction;
mod fetching;
mod input;
mod limits;
mod mirror;
mod output;
mod reports;
mod signals;
mod tls;

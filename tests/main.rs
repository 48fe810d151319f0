//! Every end-to-end test, in one executable (`e2e_tests`), one module per
//! area, each in its own file: `tests/<area>.rs`. Every test executable
//! links the whole application, so one executable links it once instead of
//! once per area. Tests are named `<area>::<test>`; one area is
//! `-E 'test(/^crash::/)'` to nextest, `crash::` to `cargo test`.
//!
//! nextest runs each test in its own process. Under plain `cargo test` they
//! share one: a test that changes the process's environment (`ordering`
//! sets `LD_PRELOAD` for one spawn) then reaches the other areas' tests that
//! run at the same time.

mod access;
mod binary;
mod browser;
mod cases;
mod consent;
mod crash;
mod erasure;
mod fail_closed;
mod faults;
mod house;
mod idempotency;
mod identity;
mod input;
mod limits;
mod meetings;
mod ordering;
mod plan;
mod poison;
mod race;
mod rebuild;
mod relay;
mod scaleout;
mod sealed;
mod seams;
mod stream_trust;
mod tasks;
mod traces;
mod web;
mod webhooks;

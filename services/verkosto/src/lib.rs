//! The `verkosto` binary's library half: settings, wiring, health, and the
//! command-line tools. Thin on purpose: each service owns its routes and
//! read models; this crate only picks modules for a target and joins them.

pub mod admin;
pub mod app;
pub mod audit;
mod auth;
pub mod config;
mod demo;
pub mod guard_cli;
mod health;
pub mod keys_cli;
pub mod proto;
pub mod rebuild;
pub mod telemetry;

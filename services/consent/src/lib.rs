//! The consent service: the one consent record per client, and the audit
//! endpoints.
//!
//! Owns the `consent` stream (one per case, its id the case id). The rules
//! that turn the record into answers live in `verkosto-policy`; this crate
//! checks and records changes, answers the point-in-time matrix, and serves
//! auditors (history, access log, integrity), who never see client data.

mod audit;
pub mod domain;
mod matrix;
mod routes;
mod service;

pub use audit::{replay, HistoryEntry, Replay};
pub use matrix::matrix_answer;
pub use routes::{api_doc, router};
pub use service::ConsentService;

/// The consent service as the binary runs it: in `--target all` and
/// `consent`. Its state is the log itself: no tables, no read model.
pub fn module() -> verkosto_service::Module {
    verkosto_service::Module::new("consent", &["all", "consent"])
        .guarded()
        .api_doc(api_doc)
        .start(|ctx| {
            Ok(router(ConsentService {
                log: ctx.log.clone(),
                guard: ctx.guard()?,
                auth: ctx.auth.clone(),
            }))
        })
}

//! The consent service. Empty for now: its aggregates, read models and routes
//! arrive with their own issue. It will own its streams and tables only,
//! learning of other services' events from the shared stream.

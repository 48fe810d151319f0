-- A delivery refused because its URL or address may not be called (see
-- outbound.rs): never tried again, with the reason in last_error.
ALTER TABLE tasks_webhook_outbox ADD COLUMN refused_at TEXT;

-- The tasks service's tables (owned by verkosto-tasks).

-- Read model: every task, for inboxes and reviews.
CREATE TABLE tasks_tasks (
    id              TEXT   PRIMARY KEY,
    case_id         TEXT   NOT NULL,
    lead_agency     TEXT   NOT NULL,
    source_kind     TEXT   NOT NULL,
    source_ref      TEXT   NOT NULL,
    description     TEXT   NOT NULL,
    category        TEXT   NOT NULL,
    assignee        TEXT   NOT NULL,
    due             TEXT,
    status          TEXT   NOT NULL,
    overdue         BIGINT NOT NULL,
    accepted_by     TEXT,
    outcome_note    TEXT,
    created_at      TEXT   NOT NULL,
    updated_at      TEXT   NOT NULL,
    version         BIGINT NOT NULL
);
CREATE INDEX tasks_tasks_assignee ON tasks_tasks (assignee, status);
CREATE INDEX tasks_tasks_lead ON tasks_tasks (lead_agency, status);
CREATE INDEX tasks_tasks_case ON tasks_tasks (case_id);

-- Webhook registrations. The secret stays here: the WebhookRegistered
-- event on the shared stream carries only the URL and agency.
CREATE TABLE tasks_webhooks (
    id          TEXT   PRIMARY KEY,
    agency      TEXT   NOT NULL,
    url         TEXT   NOT NULL,
    secret      TEXT   NOT NULL,
    created_at  TEXT   NOT NULL,
    removed     BIGINT NOT NULL
);
CREATE INDEX tasks_webhooks_agency ON tasks_webhooks (agency, removed);

-- Deliveries owed to webhooks, one per (event, webhook): written in the
-- same transaction as the projection's checkpoint, sent at least once.
CREATE TABLE tasks_webhook_outbox (
    message_id       TEXT   PRIMARY KEY,
    webhook_id       TEXT   NOT NULL,
    payload          TEXT   NOT NULL,
    attempts         BIGINT NOT NULL,
    next_attempt_at  TEXT   NOT NULL,
    delivered_at     TEXT,
    last_error       TEXT
);
CREATE INDEX tasks_webhook_outbox_due ON tasks_webhook_outbox (delivered_at, next_attempt_at);

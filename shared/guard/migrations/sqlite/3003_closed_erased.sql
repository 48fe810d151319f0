-- A closed case takes no new meetings or tasks; an erased one answers 410.
ALTER TABLE guard_cases ADD COLUMN closed_at TEXT;
ALTER TABLE guard_cases ADD COLUMN erased BIGINT NOT NULL DEFAULT 0;

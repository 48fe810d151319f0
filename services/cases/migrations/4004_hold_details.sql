-- What the auditor weighs before releasing a hold: its reason (sealed, as
-- in the log), who placed it and when.
ALTER TABLE cases_holds ADD COLUMN reason TEXT;
ALTER TABLE cases_holds ADD COLUMN placed_by TEXT;
ALTER TABLE cases_holds ADD COLUMN placed_at TEXT;

-- The cases that were closed, for the worker that cancels their tasks
-- still to be done (ids and outcomes only). Fed by `CaseClosed`; an
-- erased case leaves no row.
CREATE TABLE tasks_closed_cases (
    case_id  TEXT PRIMARY KEY,
    outcome  TEXT NOT NULL
);

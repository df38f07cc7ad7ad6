-- 64-bit ids on jobs, task_events and node_histories (and fenced_results.job_id): nothing to
-- change on SQLite, where an INTEGER PRIMARY KEY is the 64-bit rowid and every INTEGER column
-- holds 64 bits. The migration exists so that both databases carry the same history.
SELECT 1;

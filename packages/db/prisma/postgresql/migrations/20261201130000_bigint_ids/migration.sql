-- 64-bit ids on the tables that churn fastest (a job per node start, timer and callback; an event
-- and a history row per state change): a busy server would run a 32-bit serial out in a few years.
-- ALTER ... TYPE rewrites each table in place, keeping every row and id; the sequences go on from
-- where they were, now up to 2^63 - 1.
ALTER TABLE "jobs" ALTER COLUMN "id" SET DATA TYPE BIGINT;
ALTER SEQUENCE "jobs_id_seq" AS BIGINT;
ALTER TABLE "task_events" ALTER COLUMN "id" SET DATA TYPE BIGINT;
ALTER SEQUENCE "task_events_id_seq" AS BIGINT;
ALTER TABLE "node_histories" ALTER COLUMN "id" SET DATA TYPE BIGINT;
ALTER SEQUENCE "node_histories_id_seq" AS BIGINT;
-- A fenced result names the job it came from.
ALTER TABLE "fenced_results" ALTER COLUMN "job_id" SET DATA TYPE BIGINT;

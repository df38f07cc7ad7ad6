-- Node jobs of a task that is not RUNNING (paused) are held: flagged, and their due time moved
-- 2^52 ms (about 142,000 years) ahead until resume moves it back. A claim reads jobs by due time
-- up to now (jobs_due_at_idx): held jobs, like future timers, lie past that range, so however
-- many there are a claim never reads them, and the planner's row estimates stay true.
ALTER TABLE "jobs" ADD COLUMN "held" BOOLEAN NOT NULL DEFAULT false;
UPDATE "jobs" SET "held" = true, "due_at" = "due_at" + 4503599627370496
  WHERE "kind" = 'node' AND "task_id" IN (SELECT "id" FROM "tasks" WHERE "state" <> 'RUNNING');

-- A job whose transaction fails is retried with backoff and, after a bounded number of failures,
-- its node is FAILED: how many times it failed and the last error, kept on the job.
ALTER TABLE "jobs" ADD COLUMN "failures" INTEGER NOT NULL DEFAULT 0;
ALTER TABLE "jobs" ADD COLUMN "last_error" TEXT;

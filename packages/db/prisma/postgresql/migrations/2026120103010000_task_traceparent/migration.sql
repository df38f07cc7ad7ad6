-- The W3C traceparent of the request that started the task: its nodes' spans link to it.
ALTER TABLE "tasks" ADD COLUMN "traceparent" TEXT;

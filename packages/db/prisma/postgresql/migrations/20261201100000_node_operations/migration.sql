-- Node operations: a node held by `pause` (before or after the run reaches it), what a RUNNING
-- node waits for (a callback, or its automatic retry's interval), the kind of retry that made its
-- current attempt, its automatic retry count, and the inputs a manual retry replaced.
ALTER TABLE "node_states" ADD COLUMN "held" BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE "node_states" ADD COLUMN "wait" TEXT;
ALTER TABLE "node_states" ADD COLUMN "retry_kind" TEXT;
ALTER TABLE "node_states" ADD COLUMN "auto_retries" INTEGER NOT NULL DEFAULT 0;
ALTER TABLE "node_states" ADD COLUMN "input_overrides" TEXT;

-- Each attempt: how it came about (manual or automatic retry), the node's version it ran under,
-- and its log (the component's ctx.log lines and the engine's own, bounded).
ALTER TABLE "node_histories" ADD COLUMN "retry_kind" TEXT;
ALTER TABLE "node_histories" ADD COLUMN "version" INTEGER NOT NULL DEFAULT 0;
ALTER TABLE "node_histories" ADD COLUMN "skip" BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE "node_histories" ADD COLUMN "log" TEXT NOT NULL DEFAULT '';

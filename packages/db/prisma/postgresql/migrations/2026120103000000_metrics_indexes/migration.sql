-- What /metrics counts at every scrape, indexed so that it reads only what it counts:
-- tasks by state, and the nodes that wait (RUNNING: on a timer, a callback or their component;
-- FAILED: for an operator). The node indexes are partial, one per state (SQLite uses a partial
-- index only when the query names its condition exactly): a node enters one while it waits and
-- leaves it when it ends, so the finished history costs nothing. Prisma's schema cannot declare
-- a partial index: they live in the migrations only.
CREATE INDEX "tasks_state_idx" ON "tasks"("state");
CREATE INDEX "node_states_running_idx" ON "node_states"("task_id", "node_id") WHERE "state" = 'RUNNING';
CREATE INDEX "node_states_failed_idx" ON "node_states"("task_id", "node_id") WHERE "state" = 'FAILED';

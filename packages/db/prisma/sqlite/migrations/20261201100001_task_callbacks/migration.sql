-- One row per callback event of a task (finished, revoked, a node failed): its record, sent once
-- (the unique event key), with every try counted.
CREATE TABLE "task_callbacks" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "task_id" INTEGER NOT NULL,
    "event" TEXT NOT NULL,
    "node_id" TEXT NOT NULL DEFAULT '',
    "body" TEXT NOT NULL,
    "status" TEXT NOT NULL DEFAULT 'pending',
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "error" TEXT,
    "created_at" BIGINT NOT NULL,
    "sent_at" BIGINT
);

CREATE UNIQUE INDEX "task_callbacks_task_id_event_key" ON "task_callbacks"("task_id", "event");

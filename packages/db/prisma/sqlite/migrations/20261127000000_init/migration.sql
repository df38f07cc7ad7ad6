-- CreateTable
CREATE TABLE "apps" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "code" TEXT NOT NULL,
    "secret_hash" TEXT NOT NULL,
    "trusted" BOOLEAN NOT NULL DEFAULT false,
    "user_skip" BOOLEAN NOT NULL DEFAULT false,
    "created_at" BIGINT NOT NULL
);

-- CreateIndex
CREATE UNIQUE INDEX "apps_code_key" ON "apps"("code");

-- CreateTable
CREATE TABLE "users" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "username" TEXT NOT NULL,
    "created_at" BIGINT NOT NULL
);

-- CreateIndex
CREATE UNIQUE INDEX "users_username_key" ON "users"("username");

-- CreateTable
CREATE TABLE "tokens" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "user_id" INTEGER NOT NULL,
    "token_hash" TEXT NOT NULL,
    "label" TEXT NOT NULL DEFAULT '',
    "expires_at" BIGINT,
    "revoked_at" BIGINT,
    "created_at" BIGINT NOT NULL,
    CONSTRAINT "tokens_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "users" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);

-- CreateIndex
CREATE UNIQUE INDEX "tokens_token_hash_key" ON "tokens"("token_hash");

-- CreateIndex
CREATE INDEX "tokens_user_id_idx" ON "tokens"("user_id");

-- CreateTable
CREATE TABLE "projects" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "name" TEXT NOT NULL,
    "bk_biz_id" INTEGER NOT NULL,
    "created_at" BIGINT NOT NULL
);

-- CreateIndex
CREATE UNIQUE INDEX "projects_bk_biz_id_key" ON "projects"("bk_biz_id");

-- CreateTable
CREATE TABLE "memberships" (
    "project_id" INTEGER NOT NULL,
    "user_id" INTEGER NOT NULL,
    "role" TEXT NOT NULL,
    "created_at" BIGINT NOT NULL,
    CONSTRAINT "memberships_pkey" PRIMARY KEY ("project_id", "user_id"),
    CONSTRAINT "memberships_project_id_fkey" FOREIGN KEY ("project_id") REFERENCES "projects" ("id") ON DELETE CASCADE ON UPDATE CASCADE,
    CONSTRAINT "memberships_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "users" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);

-- CreateIndex
CREATE INDEX "memberships_user_id_idx" ON "memberships"("user_id");

-- CreateTable
CREATE TABLE "templates" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "project_id" INTEGER NOT NULL,
    "name" TEXT NOT NULL,
    "description" TEXT NOT NULL DEFAULT '',
    "pipeline_tree" TEXT NOT NULL,
    "creator" TEXT NOT NULL,
    "editor" TEXT NOT NULL DEFAULT '',
    "version" INTEGER NOT NULL DEFAULT 1,
    "created_at" BIGINT NOT NULL,
    "edited_at" BIGINT NOT NULL,
    CONSTRAINT "templates_project_id_fkey" FOREIGN KEY ("project_id") REFERENCES "projects" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);

-- CreateIndex
CREATE INDEX "templates_project_id_id_idx" ON "templates"("project_id", "id");

-- CreateTable
CREATE TABLE "tasks" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "project_id" INTEGER NOT NULL,
    "template_id" INTEGER,
    "name" TEXT NOT NULL,
    "description" TEXT NOT NULL DEFAULT '',
    "creator" TEXT NOT NULL,
    "executor" TEXT NOT NULL DEFAULT '',
    "state" TEXT NOT NULL,
    "version" INTEGER NOT NULL DEFAULT 0,
    "event_seq" INTEGER NOT NULL DEFAULT 0,
    "pipeline_tree" TEXT NOT NULL,
    "constants" TEXT NOT NULL DEFAULT '{}',
    "outputs" TEXT NOT NULL DEFAULT '{}',
    "callback_url" TEXT,
    "callback_status" TEXT,
    "callback_attempts" INTEGER NOT NULL DEFAULT 0,
    "callback_error" TEXT,
    "created_at" BIGINT NOT NULL,
    "started_at" BIGINT,
    "finished_at" BIGINT,
    CONSTRAINT "tasks_project_id_fkey" FOREIGN KEY ("project_id") REFERENCES "projects" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);

-- CreateIndex
CREATE INDEX "tasks_project_id_id_idx" ON "tasks"("project_id", "id");

-- CreateTable
CREATE TABLE "node_states" (
    "task_id" INTEGER NOT NULL,
    "node_id" TEXT NOT NULL,
    "state" TEXT NOT NULL,
    "version" INTEGER NOT NULL DEFAULT 0,
    "loop" INTEGER NOT NULL DEFAULT 0,
    "retry" INTEGER NOT NULL DEFAULT 0,
    "skip" BOOLEAN NOT NULL DEFAULT false,
    "error_ignored" BOOLEAN NOT NULL DEFAULT false,
    "arrivals" INTEGER NOT NULL DEFAULT 0,
    "expected" INTEGER NOT NULL DEFAULT 0,
    "attempt" INTEGER NOT NULL DEFAULT 0,
    "inputs" TEXT,
    "outputs" TEXT,
    "error" TEXT,
    "started_at" BIGINT,
    "finished_at" BIGINT,
    CONSTRAINT "node_states_pkey" PRIMARY KEY ("task_id", "node_id")
);

-- CreateTable
CREATE TABLE "node_histories" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "task_id" INTEGER NOT NULL,
    "node_id" TEXT NOT NULL,
    "loop" INTEGER NOT NULL,
    "attempt" INTEGER NOT NULL,
    "state" TEXT NOT NULL,
    "worker" TEXT NOT NULL DEFAULT '',
    "inputs" TEXT,
    "outputs" TEXT,
    "error" TEXT,
    "started_at" BIGINT NOT NULL,
    "finished_at" BIGINT
);

-- CreateIndex
CREATE INDEX "node_histories_task_id_node_id_idx" ON "node_histories"("task_id", "node_id");

-- CreateTable
CREATE TABLE "jobs" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "task_id" INTEGER NOT NULL,
    "node_id" TEXT NOT NULL,
    "kind" TEXT NOT NULL,
    "due_at" BIGINT NOT NULL,
    "lease_owner" TEXT,
    "lease_until" BIGINT,
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "payload" TEXT,
    "created_at" BIGINT NOT NULL
);

-- CreateIndex
CREATE INDEX "jobs_due_at_idx" ON "jobs"("due_at");

-- CreateIndex
CREATE INDEX "jobs_task_id_idx" ON "jobs"("task_id");

-- CreateTable
CREATE TABLE "fenced_results" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "job_id" INTEGER NOT NULL,
    "task_id" INTEGER NOT NULL,
    "node_id" TEXT NOT NULL,
    "worker" TEXT NOT NULL,
    "attempt" INTEGER NOT NULL,
    "reason" TEXT NOT NULL,
    "created_at" BIGINT NOT NULL
);

-- CreateIndex
CREATE INDEX "fenced_results_task_id_idx" ON "fenced_results"("task_id");

-- CreateTable
CREATE TABLE "operate_records" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "task_id" INTEGER NOT NULL,
    "project_id" INTEGER NOT NULL,
    "node_id" TEXT NOT NULL DEFAULT '',
    "operator" TEXT NOT NULL,
    "operate_type" TEXT NOT NULL,
    "operate_source" TEXT NOT NULL,
    "created_at" BIGINT NOT NULL
);

-- CreateIndex
CREATE INDEX "operate_records_task_id_id_idx" ON "operate_records"("task_id", "id");

-- CreateTable
CREATE TABLE "task_events" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "task_id" INTEGER NOT NULL,
    "seq" INTEGER NOT NULL,
    "type" TEXT NOT NULL,
    "node_id" TEXT,
    "state" TEXT,
    "data" TEXT,
    "created_at" BIGINT NOT NULL
);

-- CreateIndex
CREATE UNIQUE INDEX "task_events_task_id_seq_key" ON "task_events"("task_id", "seq");

-- CreateTable
CREATE TABLE "settings" (
    "key" TEXT NOT NULL PRIMARY KEY,
    "value" TEXT NOT NULL
);

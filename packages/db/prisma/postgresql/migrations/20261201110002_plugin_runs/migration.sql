-- The plugin gateway's runs: one component run on a caller's behalf, as a one-node task of a
-- project. (app_code, source_key, client_request_id) makes a repeated request the same run.

-- CreateTable
CREATE TABLE "plugin_runs" (
    "id" TEXT NOT NULL,
    "app_code" TEXT NOT NULL,
    "source_key" TEXT NOT NULL,
    "client_request_id" TEXT NOT NULL,
    "plugin_id" TEXT NOT NULL,
    "plugin_version" TEXT NOT NULL,
    "project_id" INTEGER NOT NULL,
    "task_id" INTEGER NOT NULL,
    "node_id" TEXT NOT NULL,
    "callback_url" TEXT NOT NULL,
    "operator" TEXT NOT NULL,
    "created_at" BIGINT NOT NULL,
    CONSTRAINT "plugin_runs_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "plugin_runs_app_code_source_key_client_request_id_key" ON "plugin_runs"("app_code", "source_key", "client_request_id");

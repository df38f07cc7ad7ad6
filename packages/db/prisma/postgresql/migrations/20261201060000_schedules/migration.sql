-- Periodic and clocked tasks, and how each task came to be (bk-sops's create_method).

-- AlterTable
ALTER TABLE "tasks" ADD COLUMN "create_method" TEXT NOT NULL DEFAULT 'app';

-- CreateTable
CREATE TABLE "periodic_tasks" (
    "id" SERIAL NOT NULL,
    "project_id" INTEGER NOT NULL,
    "template_id" INTEGER NOT NULL,
    "name" TEXT NOT NULL,
    "creator" TEXT NOT NULL,
    "editor" TEXT NOT NULL DEFAULT '',
    "cron_minute" TEXT NOT NULL,
    "cron_hour" TEXT NOT NULL,
    "cron_day_of_week" TEXT NOT NULL,
    "cron_day_of_month" TEXT NOT NULL,
    "cron_month_of_year" TEXT NOT NULL,
    "pipeline_tree" TEXT NOT NULL,
    "enabled" BOOLEAN NOT NULL DEFAULT false,
    "next_run_at" BIGINT,
    "last_run_at" BIGINT,
    "total_run_count" INTEGER NOT NULL DEFAULT 0,
    "created_at" BIGINT NOT NULL,
    "edited_at" BIGINT NOT NULL,
    CONSTRAINT "periodic_tasks_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "periodic_tasks_project_id_id_idx" ON "periodic_tasks"("project_id", "id");

-- CreateIndex
CREATE INDEX "periodic_tasks_enabled_next_run_at_idx" ON "periodic_tasks"("enabled", "next_run_at");

-- AddForeignKey
ALTER TABLE "periodic_tasks" ADD CONSTRAINT "periodic_tasks_project_id_fkey" FOREIGN KEY ("project_id") REFERENCES "projects"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- CreateTable
CREATE TABLE "periodic_firings" (
    "id" SERIAL NOT NULL,
    "periodic_task_id" INTEGER NOT NULL,
    "due_at" BIGINT NOT NULL,
    "task_id" INTEGER,
    "error" TEXT,
    "worker" TEXT NOT NULL DEFAULT '',
    "created_at" BIGINT NOT NULL,
    CONSTRAINT "periodic_firings_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "periodic_firings_periodic_task_id_due_at_key" ON "periodic_firings"("periodic_task_id", "due_at");

-- CreateTable
CREATE TABLE "clocked_tasks" (
    "id" SERIAL NOT NULL,
    "project_id" INTEGER NOT NULL,
    "template_id" INTEGER NOT NULL,
    "task_name" TEXT NOT NULL,
    "creator" TEXT NOT NULL,
    "editor" TEXT NOT NULL DEFAULT '',
    "plan_start_at" BIGINT NOT NULL,
    "task_parameters" TEXT NOT NULL DEFAULT '{}',
    "state" TEXT NOT NULL DEFAULT 'not_started',
    "task_id" INTEGER,
    "error" TEXT,
    "worker" TEXT NOT NULL DEFAULT '',
    "created_at" BIGINT NOT NULL,
    "edited_at" BIGINT NOT NULL,
    "fired_at" BIGINT,
    CONSTRAINT "clocked_tasks_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "clocked_tasks_project_id_id_idx" ON "clocked_tasks"("project_id", "id");

-- CreateIndex
CREATE INDEX "clocked_tasks_state_plan_start_at_idx" ON "clocked_tasks"("state", "plan_start_at");

-- AddForeignKey
ALTER TABLE "clocked_tasks" ADD CONSTRAINT "clocked_tasks_project_id_fkey" FOREIGN KEY ("project_id") REFERENCES "projects"("id") ON DELETE CASCADE ON UPDATE CASCADE;

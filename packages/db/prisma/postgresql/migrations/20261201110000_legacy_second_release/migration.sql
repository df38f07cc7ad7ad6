-- The legacy API's second release: template categories, common templates, execution schemes,
-- where a task's (and a schedule's) template came from, the callback's version, and what an
-- operation took (operate records' extra_info).

-- AlterTable
ALTER TABLE "templates" ADD COLUMN "category" TEXT NOT NULL DEFAULT 'Other';

-- AlterTable
ALTER TABLE "tasks" ADD COLUMN "template_source" TEXT NOT NULL DEFAULT 'project';
ALTER TABLE "tasks" ADD COLUMN "callback_version" TEXT NOT NULL DEFAULT 'v1';

-- AlterTable
ALTER TABLE "periodic_tasks" ADD COLUMN "template_source" TEXT NOT NULL DEFAULT 'project';

-- AlterTable
ALTER TABLE "clocked_tasks" ADD COLUMN "template_source" TEXT NOT NULL DEFAULT 'project';

-- AlterTable
ALTER TABLE "operate_records" ADD COLUMN "extra_info" TEXT;

-- CreateTable
CREATE TABLE "common_templates" (
    "id" SERIAL NOT NULL,
    "name" TEXT NOT NULL,
    "description" TEXT NOT NULL DEFAULT '',
    "category" TEXT NOT NULL DEFAULT 'Other',
    "pipeline_tree" TEXT NOT NULL,
    "creator" TEXT NOT NULL,
    "editor" TEXT NOT NULL DEFAULT '',
    "version" INTEGER NOT NULL DEFAULT 1,
    "created_at" BIGINT NOT NULL,
    "edited_at" BIGINT NOT NULL,
    CONSTRAINT "common_templates_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "template_schemes" (
    "id" SERIAL NOT NULL,
    "template_source" TEXT NOT NULL,
    "template_id" INTEGER NOT NULL,
    "name" TEXT NOT NULL,
    "data" TEXT NOT NULL,
    "creator" TEXT NOT NULL DEFAULT '',
    "created_at" BIGINT NOT NULL,
    "edited_at" BIGINT NOT NULL,
    CONSTRAINT "template_schemes_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "template_schemes_template_source_template_id_name_key" ON "template_schemes"("template_source", "template_id", "name");

-- The constants of each running subprocess's child tree (JSON: SubProcess node id → its constants).

-- AlterTable
ALTER TABLE "tasks" ADD COLUMN "scope_constants" TEXT NOT NULL DEFAULT '{}';

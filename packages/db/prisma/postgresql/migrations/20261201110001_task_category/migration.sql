-- A task's own category (bk-sops's fast_create_task takes one); null: its template's.

-- AlterTable
ALTER TABLE "tasks" ADD COLUMN "category" TEXT;

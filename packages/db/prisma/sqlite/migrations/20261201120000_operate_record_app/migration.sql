-- The app that made the call beside the user it named: what a trusted or user-skip app did on a
-- user's behalf is told apart from what the user did. Records older than this column name none.
ALTER TABLE "operate_records" ADD COLUMN "app_code" TEXT NOT NULL DEFAULT '';

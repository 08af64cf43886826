CREATE TABLE "batches" (
	"id" uuid PRIMARY KEY NOT NULL,
	"org_id" text NOT NULL,
	"job_ids" uuid[] NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "jobs" ADD COLUMN "deleted_at" timestamp with time zone;--> statement-breakpoint
CREATE INDEX "batches_org_created_idx" ON "batches" USING btree ("org_id","created_at");
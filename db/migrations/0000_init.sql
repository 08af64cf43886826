CREATE TYPE "public"."job_status" AS ENUM('QUEUED', 'PROCESSING', 'SUCCEEDED', 'FAILED');--> statement-breakpoint
CREATE SEQUENCE "public"."job_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1;--> statement-breakpoint
CREATE TABLE "jobs" (
	"id" uuid PRIMARY KEY NOT NULL,
	"seq" bigint DEFAULT nextval('job_seq') NOT NULL,
	"org_id" text NOT NULL,
	"asset_id" text NOT NULL,
	"segment_id" text NOT NULL,
	"model" text NOT NULL,
	"model_ver" text NOT NULL,
	"point_id" uuid NOT NULL,
	"job_key" text NOT NULL,
	"status" "job_status" DEFAULT 'QUEUED' NOT NULL,
	"attempts" integer DEFAULT 0 NOT NULL,
	"result" jsonb,
	"error" jsonb,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"completed_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "outbox" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"job_id" uuid NOT NULL,
	"job_seq" bigint NOT NULL,
	"payload" jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"sent_at" timestamp with time zone,
	"send_attempts" integer DEFAULT 0 NOT NULL,
	"last_error" text
);
--> statement-breakpoint
ALTER TABLE "outbox" ADD CONSTRAINT "outbox_job_id_jobs_id_fk" FOREIGN KEY ("job_id") REFERENCES "public"."jobs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "jobs_job_key_uq" ON "jobs" USING btree ("job_key");--> statement-breakpoint
CREATE INDEX "jobs_org_point_idx" ON "jobs" USING btree ("org_id","point_id");--> statement-breakpoint
CREATE INDEX "jobs_org_asset_status_idx" ON "jobs" USING btree ("org_id","asset_id","status");--> statement-breakpoint
CREATE INDEX "jobs_segment_seq_idx" ON "jobs" USING btree ("org_id","asset_id","segment_id","model","model_ver","seq");--> statement-breakpoint
CREATE INDEX "outbox_unsent_idx" ON "outbox" USING btree ("created_at") WHERE "outbox"."sent_at" IS NULL;--> statement-breakpoint
CREATE INDEX "outbox_job_idx" ON "outbox" USING btree ("job_id");
"""Step Functions batch scoring (ships): the job's parameters and plan, S3 text I/O (CSV and
JSONL blocks, multipart output), one part scored, the state machine's steps, and the runs
the CLI starts and watches. Imports `serving`, `shared` and the root."""

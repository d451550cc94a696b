"""Prefect tasks: thin batch-level wrappers over the qunyun library (retries, logs, artifacts)."""

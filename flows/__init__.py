"""Prefect flows: one module per operating-cycle job; orchestration only."""

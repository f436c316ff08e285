"""Thin Prefect flows that compose the steps in `tasks/`, and the `seqcast` CLI."""

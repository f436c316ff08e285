"""Stages 1-2, data: ingest source files into a raw snapshot, parse them strictly and check
them against the data contract with Great Expectations (report, quarantine, sample data).
Exposes `ingest`, `parsing`, `contracts`, `gx_suite`, `validation`, `validation_report`,
`sample`."""

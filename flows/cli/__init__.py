"""The `seqcast` command line (`main`), its sub-commands (`models`, `operate`), what they
share (`support`: Prefect defaults first) and the server-side helpers of `deploy`, `serve`
and `backfill` (`server_setup`, `scheduling`)."""

"""The dataset store: a LeRobot v3.0 dataset with a `papo/` sidecar, read through DuckDB."""

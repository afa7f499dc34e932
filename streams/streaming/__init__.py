"""The streaming shell around the metric core: the two consuming stages, publication, /metrics (run by Faust)."""

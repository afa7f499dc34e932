"""The Faust shell around the metric core: agents, tables, publication."""

"""Grafana dashboards as code: builders, the generated JSON in ``json/``, and their provisioning.

``ccpulse dashboards build`` regenerates ``json/`` from the configured targets;
``ccpulse dashboards push`` sends it to a Grafana through the HTTP API. The compose stack reads
``json/`` through file provisioning instead (``deploy/grafana/provisioning``).
"""

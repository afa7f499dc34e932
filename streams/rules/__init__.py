"""Prometheus recording and alert rules, generated from the configured targets.

One source: the per-channel SLA thresholds and targets, the other targets and the minimum volume
all come from ``streams.config.load()``; ``ccpulse rules build`` writes the rule files under
``deploy/prometheus/rules/`` and ``--check`` fails when the committed files differ.
"""

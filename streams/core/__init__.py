"""The arithmetic of ccpulse: pure Python, no Kafka, no asyncio.

The streaming stages and `ccpulse replay` both drive this package, so the numbers are the same
whichever way the events arrive. Pipeline: `events.decode` (validation) -> `tracker.Tracker`
(per-contact state, once-only guards, pairing; emits facts) -> `aggregator.Aggregator`
(minute buckets, live state per region and channel) -> `records.build_records`.
"""

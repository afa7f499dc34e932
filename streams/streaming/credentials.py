"""Faust's broker credentials from the Kafka settings (SASL_SSL / SCRAM, TLS files).

Built from the same `aiokafka_options` that every other client uses, so the worker connects
exactly as the admin tools do; the password never leaves memory.
"""

from __future__ import annotations

from typing import Any

import faust

from streams.config import KafkaSettings
from streams.kafka_client import aiokafka_options


def faust_broker_options(kafka: KafkaSettings) -> dict[str, Any]:
    """Keyword arguments for `faust.App`: `broker_credentials` when security is configured."""
    options = aiokafka_options(kafka)
    protocol = options["security_protocol"]
    if protocol == "PLAINTEXT":
        return {}
    if protocol == "SSL":
        return {"broker_credentials": faust.SSLCredentials(options["ssl_context"])}
    return {"broker_credentials": faust.SASLCredentials(
        username=options["sasl_plain_username"], password=options["sasl_plain_password"],
        mechanism=options["sasl_mechanism"], ssl_context=options.get("ssl_context"))}

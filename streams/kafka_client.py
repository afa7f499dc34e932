"""Kafka client options from the configuration, shared by every part that talks to the broker.

One mapping from :class:`~streams.config.KafkaSettings` to each client library's keyword
arguments, so that the admin tools (kafka-python) and the worker (aiokafka via Faust) always
connect the same way: same brokers, same security settings, same timeouts.
"""

from __future__ import annotations

import logging
from typing import Any

from kafka import KafkaAdminClient
from kafka.errors import KafkaError

from streams.config import KafkaSettings
from streams.errors import CcpulseError, ConfigError

SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


def bootstrap_list(servers: str, key: str = "kafka.bootstrap_servers") -> list[str]:
    """``host:port[,host:port...]`` as a list, or a ConfigError naming the bad address."""
    result = []
    for item in servers.split(","):
        address = item.strip()
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(f"{key}: invalid broker address {address!r} (expected HOST:PORT)")
        result.append(address)
    return result


def _common(kafka: KafkaSettings) -> dict[str, Any]:
    """Options both libraries name the same way (they share kafka-python's vocabulary)."""
    protocol = kafka.security_protocol.upper()
    if protocol not in SECURITY_PROTOCOLS:
        raise ConfigError(f"kafka.security_protocol: invalid value {kafka.security_protocol!r} "
                          f"(expected one of {', '.join(SECURITY_PROTOCOLS)})")
    options: dict[str, Any] = {
        "bootstrap_servers": bootstrap_list(kafka.bootstrap_servers),
        "security_protocol": protocol,
        "request_timeout_ms": int(kafka.request_timeout_s * 1000),
    }
    if protocol.startswith("SASL_"):
        mechanism = (kafka.sasl_mechanism or "").upper()
        if mechanism not in SASL_MECHANISMS:
            raise ConfigError(f"kafka.sasl_mechanism: invalid value {kafka.sasl_mechanism!r} "
                              f"(expected one of {', '.join(SASL_MECHANISMS)})")
        if not kafka.sasl_username:
            raise ConfigError("kafka.sasl_username: required with security_protocol " + protocol)
        password = kafka.sasl_password()
        if password is None:
            raise ConfigError("kafka.sasl_password_file: required with security_protocol " + protocol
                              + " (or set CCPULSE_KAFKA_SASL_PASSWORD)")
        options.update(sasl_mechanism=mechanism, sasl_plain_username=kafka.sasl_username,
                       sasl_plain_password=password)
    return options


def kafka_python_options(kafka: KafkaSettings) -> dict[str, Any]:
    """Keyword arguments for kafka-python's clients (KafkaAdminClient, KafkaProducer, KafkaConsumer)."""
    options = _common(kafka)
    if options["security_protocol"].endswith("SSL"):
        options.update(ssl_cafile=kafka.ssl_cafile, ssl_certfile=kafka.ssl_certfile,
                       ssl_keyfile=kafka.ssl_keyfile)
    return options


def aiokafka_options(kafka: KafkaSettings) -> dict[str, Any]:
    """Keyword arguments for aiokafka's clients, which take TLS files as one SSL context."""
    options = _common(kafka)
    if options["security_protocol"].endswith("SSL"):
        from aiokafka.helpers import create_ssl_context

        try:
            options["ssl_context"] = create_ssl_context(cafile=kafka.ssl_cafile, certfile=kafka.ssl_certfile,
                                                        keyfile=kafka.ssl_keyfile)
        except OSError as exc:
            raise ConfigError(f"kafka.ssl_*: cannot read {exc.filename or 'a TLS file'}: {exc.strerror}") from exc
    return options


def admin_client(kafka: KafkaSettings) -> KafkaAdminClient:
    """A connected kafka-python admin client, or one clear error within the request timeout."""
    options = kafka_python_options(kafka)
    logging.getLogger("kafka").addHandler(logging.NullHandler())  # no library warnings on stderr
    try:
        return KafkaAdminClient(bootstrap_timeout_ms=options["request_timeout_ms"], **options)
    except KafkaError as exc:
        raise CcpulseError(f"cannot reach Kafka at {kafka.bootstrap_servers} within "
                           f"{kafka.request_timeout_s:g} s ({type(exc).__name__})") from None

"""The worker's Faust credentials come from the same Kafka settings as every other client."""

from __future__ import annotations

import faust
import pytest

from streams.config import SASL_PASSWORD_ENV, KafkaSettings
from streams.streaming.credentials import faust_broker_options


def test_plaintext_needs_no_credentials() -> None:
    assert faust_broker_options(KafkaSettings()) == {}


def test_sasl_ssl_scram_becomes_faust_sasl_credentials_with_tls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SASL_PASSWORD_ENV, "s3cret")
    kafka = KafkaSettings(security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512", sasl_username="ccpulse")
    credentials = faust_broker_options(kafka)["broker_credentials"]
    assert isinstance(credentials, faust.SASLCredentials)
    assert (credentials.username, credentials.password) == ("ccpulse", "s3cret")
    assert str(credentials.mechanism.value) == "SCRAM-SHA-512"
    assert credentials.ssl_context is not None
    assert credentials.protocol.value == "SASL_SSL"
    assert "s3cret" not in repr(credentials)


def test_ssl_only_becomes_faust_ssl_credentials() -> None:
    credentials = faust_broker_options(KafkaSettings(security_protocol="SSL"))["broker_credentials"]
    assert isinstance(credentials, faust.SSLCredentials)
    assert credentials.context is not None

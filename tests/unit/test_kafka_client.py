"""streams.kafka_client: one mapping from the configuration to each Kafka library's options."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.config import SASL_PASSWORD_ENV, KafkaSettings
from streams.errors import ConfigError
from streams.kafka_client import aiokafka_options, bootstrap_list, kafka_python_options


def test_plaintext_defaults() -> None:
    options = kafka_python_options(KafkaSettings(bootstrap_servers="a:9092, b:9093"))
    assert options == {"bootstrap_servers": ["a:9092", "b:9093"], "security_protocol": "PLAINTEXT",
                       "request_timeout_ms": 10000}
    assert aiokafka_options(KafkaSettings()) == {"bootstrap_servers": ["127.0.0.1:9092"],
                                                 "security_protocol": "PLAINTEXT", "request_timeout_ms": 10000}


def test_sasl_ssl_maps_credentials_and_tls_files(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SASL_PASSWORD_ENV, "pw")
    kafka = KafkaSettings(security_protocol="sasl_ssl", sasl_mechanism="SCRAM-SHA-512", sasl_username="cc",
                          ssl_cafile="/etc/ca.pem")
    options = kafka_python_options(kafka)
    assert options["security_protocol"] == "SASL_SSL"
    assert (options["sasl_mechanism"], options["sasl_plain_username"], options["sasl_plain_password"]) == (
        "SCRAM-SHA-512", "cc", "pw")
    assert options["ssl_cafile"] == "/etc/ca.pem"


def test_aiokafka_gets_an_ssl_context_and_missing_files_name_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"kafka\.ssl_"):
        aiokafka_options(KafkaSettings(security_protocol="SSL", ssl_cafile=str(tmp_path / "missing.pem")))
    assert "ssl_context" in aiokafka_options(KafkaSettings(security_protocol="SSL"))


@pytest.mark.parametrize(("kafka", "message"), [
    (KafkaSettings(bootstrap_servers="localhost"), "kafka.bootstrap_servers: invalid broker address 'localhost'"),
    (KafkaSettings(bootstrap_servers="a:99999"), "invalid broker address 'a:99999'"),
    (KafkaSettings(security_protocol="TLS"), "kafka.security_protocol: invalid value 'TLS'"),
    (KafkaSettings(security_protocol="SASL_PLAINTEXT", sasl_mechanism="GSSAPI", sasl_username="u"),
     "kafka.sasl_mechanism: invalid value 'GSSAPI'"),
    (KafkaSettings(security_protocol="SASL_PLAINTEXT", sasl_mechanism="PLAIN"), "kafka.sasl_username: required"),
])
def test_bad_settings_name_the_key(kafka: KafkaSettings, message: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SASL_PASSWORD_ENV, raising=False)
    with pytest.raises(ConfigError) as caught:
        kafka_python_options(kafka)
    assert message in str(caught.value)


def test_missing_sasl_password_says_where_it_comes_from(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SASL_PASSWORD_ENV, raising=False)
    kafka = KafkaSettings(security_protocol="SASL_SSL", sasl_mechanism="PLAIN", sasl_username="u")
    with pytest.raises(ConfigError, match=SASL_PASSWORD_ENV):
        kafka_python_options(kafka)


def test_bootstrap_list_names_the_given_key() -> None:
    with pytest.raises(ConfigError, match="--bootstrap: invalid broker address ':9092'"):
        bootstrap_list(":9092", key="--bootstrap")

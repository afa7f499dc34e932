"""streams.config: defaults, the TOML file, environment overrides, and errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams import config
from streams.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ccpulse.toml"
    path.write_text(text)
    return path


def test_defaults_are_the_spec_defaults() -> None:
    settings = config.load(None, env={})
    assert settings.kafka.bootstrap_servers == "127.0.0.1:9092"
    assert settings.topics.name("events.dlq") == "cc.events.dlq"
    assert settings.channel("voice") == config.ChannelTargets(40, 0.90, 0.05)
    assert settings.channel("email").abandon_target is None
    assert settings.targets.csat_top_box == 0.938


def test_file_values_and_env_overrides(tmp_path: Path) -> None:
    path = write(tmp_path, """
[kafka]
bootstrap_servers = "broker-1:9092,broker-2:9092"
[topics]
prefix = "prod.cc."
partitions = 3
[channels.voice]
sla_threshold_s = 20
[pipeline]
regions = ["RU-MOW", "RU-SPE"]
""")
    env = {"CCPULSE_TOPICS__PARTITIONS": "24", "CCPULSE_CHANNELS__CHAT__SL_TARGET": "0.9",
           "CCPULSE_CHANNELS__VOICE__ABANDON_TARGET": "none", "CCPULSE_PIPELINE__MIN_VOLUME": "5"}
    settings = config.load(path, env=env)
    assert settings.kafka.bootstrap_servers == "broker-1:9092,broker-2:9092"
    assert settings.topics.prefix == "prod.cc."
    assert settings.topics.partitions == 24  # the environment beats the file
    assert settings.channel("voice") == config.ChannelTargets(20.0, 0.90, None)
    assert settings.channel("chat").sl_target == 0.9
    assert settings.channel("messenger") == config.DEFAULT_CHANNELS["messenger"]
    assert settings.pipeline.regions == ("RU-MOW", "RU-SPE")
    assert settings.pipeline.min_volume == 5


def test_config_file_from_environment(tmp_path: Path) -> None:
    path = write(tmp_path, '[topics]\nprefix = "x."\n')
    env = {"CCPULSE_CONFIG": str(path), "CCPULSE_PIPELINE__REGIONS": "RU-MOW, RU-CHE"}
    settings = config.load(None, env=env)
    assert settings.topics.prefix == "x."
    assert settings.pipeline.regions == ("RU-MOW", "RU-CHE")


@pytest.mark.parametrize(("text", "env", "message"), [
    ('[topics]\npartitions = "many"\n', {}, "topics.partitions: invalid value 'many' (expected int)"),
    ("[topics]\npartitions = 2.5\n", {}, "topics.partitions: invalid value 2.5"),
    ("", {"CCPULSE_KAFKA__REQUEST_TIMEOUT_S": "soon"}, "kafka.request_timeout_s: invalid value 'soon'"),
    ("[targets]\nfcr_rate = 90\n", {}, "targets.fcr_rate: value out of range"),
    ("", {"CCPULSE_CHANNELS__CHAT__SL_TARGET": "98"}, "channels.chat.sl_target: value out of range"),
    ("[topics]\npartitons = 3\n", {}, "topics.partitons: unknown configuration key"),
    ("[brokers]\nx = 1\n", {}, "unknown configuration section 'brokers'"),
    ("", {"CCPULSE_CHANNELS__FAX__SL_TARGET": "0.5"}, "channels.fax: unknown channel"),
    ('[kafka]\nbootstrap_servers = "a:1"\n', {"CCPULSE_KAFKA__BOOTSTRAP_SERVERS__HOST": "x"},
     "CCPULSE_KAFKA__BOOTSTRAP_SERVERS__HOST: kafka.bootstrap_servers.host does not name a configuration key"),
    ("[topics]\nevents_retention_ms = 604800000\n", {}, "topics.events_retention_ms: value out of range"),
    ("[pipeline]\nretention_horizon_s = 3600\n", {}, "pipeline.retention_horizon_s: value out of range"),
])
def test_invalid_values_name_the_key(tmp_path: Path, text: str, env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config.load(write(tmp_path, text), env=env)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_unreadable_files_are_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        config.load(tmp_path / "missing.toml", env={})
    with pytest.raises(ConfigError, match="is not valid TOML"):
        config.load(write(tmp_path, "[topics\n"), env={})


def test_sasl_password_comes_from_env_or_file_never_the_config(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "password"
    secret.write_text("s3cret\n")
    monkeypatch.delenv(config.SASL_PASSWORD_ENV, raising=False)
    assert config.KafkaSettings().sasl_password() is None
    assert config.KafkaSettings(sasl_password_file=str(secret)).sasl_password() == "s3cret"
    monkeypatch.setenv(config.SASL_PASSWORD_ENV, "from-env")
    assert config.KafkaSettings(sasl_password_file=str(secret)).sasl_password() == "from-env"
    monkeypatch.delenv(config.SASL_PASSWORD_ENV)
    with pytest.raises(ConfigError, match=r"kafka\.sasl_password_file: cannot read"):
        config.KafkaSettings(sasl_password_file=str(tmp_path / "nope")).sasl_password()
    with pytest.raises(ConfigError, match=r"kafka\.sasl_password: unknown configuration key"):
        config.load(write(tmp_path, '[kafka]\nsasl_password = "x"\n'), env={})

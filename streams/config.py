"""Configuration: built-in defaults (the spec's), one TOML file, then environment overrides.

Every value can be overridden by an environment variable named after its dotted key:
``CCPULSE_`` + the key in upper case with ``.`` written as ``__``, for example
``CCPULSE_KAFKA__BOOTSTRAP_SERVERS`` or ``CCPULSE_CHANNELS__VOICE__SLA_THRESHOLD_S``.
Secrets are never read from the file: the SASL password comes from ``CCPULSE_KAFKA_SASL_PASSWORD``
or from the file named by ``kafka.sasl_password_file``.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from streams.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

CHANNELS: tuple[str, ...] = ("voice", "chat", "messenger", "email", "social", "app", "voice_assistant")
ENV_PREFIX = "CCPULSE_"
CONFIG_ENV = "CCPULSE_CONFIG"
SASL_PASSWORD_ENV = "CCPULSE_KAFKA_SASL_PASSWORD"


@dataclasses.dataclass(frozen=True)
class ChannelTargets:
    """Service-level threshold and targets of one channel (spec: Defaults)."""

    sla_threshold_s: float
    sl_target: float
    abandon_target: float | None


DEFAULT_CHANNELS: dict[str, ChannelTargets] = {
    "voice": ChannelTargets(40, 0.90, 0.05),
    "chat": ChannelTargets(20, 0.98, 0.01),
    "messenger": ChannelTargets(60, 0.95, 0.02),
    "app": ChannelTargets(20, 0.95, 0.02),
    "social": ChannelTargets(900, 0.90, 0.05),
    "email": ChannelTargets(86400, 0.80, None),
    "voice_assistant": ChannelTargets(20, 0.90, 0.05),
}


@dataclasses.dataclass(frozen=True)
class Targets:
    """Targets of the non-queue metrics (spec: Defaults, 'Other targets')."""

    fcr_rate: float = 0.90
    first_line_rate: float = 0.985
    csat_top_box: float = 0.938
    ticket_24h_rate: float = 0.80
    ticket_72h_rate: float = 1.0


@dataclasses.dataclass(frozen=True)
class KafkaSettings:
    bootstrap_servers: str = "127.0.0.1:9092"
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password_file: str | None = None
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    request_timeout_s: float = 10.0

    def sasl_password(self) -> str | None:
        """The SASL password from the environment or its file; never stored in the config."""
        if SASL_PASSWORD_ENV in os.environ:
            return os.environ[SASL_PASSWORD_ENV]
        if self.sasl_password_file:
            try:
                return Path(self.sasl_password_file).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(f"kafka.sasl_password_file: cannot read {self.sasl_password_file}: "
                                  f"{exc.strerror}") from exc
        return None


@dataclasses.dataclass(frozen=True)
class TopicSettings:
    prefix: str = "cc."
    partitions: int = 12
    replication_factor: int = 1
    #: stage one's changelog (it rebuilds its state from this topic): a ticket's life and a day
    events_retention_ms: int = 31 * 24 * 3600 * 1000
    facts_retention_ms: int = 3 * 24 * 3600 * 1000
    alerts_retention_ms: int = 30 * 24 * 3600 * 1000
    dlq_retention_ms: int = 30 * 24 * 3600 * 1000

    def name(self, base: str) -> str:
        """Full topic name of a spec topic such as ``events`` or ``events.dlq``."""
        return f"{self.prefix}{base}"


@dataclasses.dataclass(frozen=True)
class PipelineSettings:
    retention_horizon_s: int = 26 * 3600
    future_tolerance_s: int = 300
    short_abandon_s: float = 5.0
    min_volume: int = 20
    publish_interval_s: float = 1.0
    ticket_retention_days: int = 30
    #: how often stage one restates tickets open for more than a day (see TrackingStage)
    ticket_refresh_s: int = 6 * 3600
    regions: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class WorkerSettings:
    app_id: str = "ccpulse"
    web_port: int = 6066
    web_bind: str = "127.0.0.1"
    datadir: str = ".run/worker-data"


@dataclasses.dataclass(frozen=True)
class Settings:
    kafka: KafkaSettings = KafkaSettings()
    topics: TopicSettings = TopicSettings()
    pipeline: PipelineSettings = PipelineSettings()
    worker: WorkerSettings = WorkerSettings()
    targets: Targets = Targets()
    channels: Mapping[str, ChannelTargets] = dataclasses.field(
        default_factory=lambda: dict(DEFAULT_CHANNELS))

    def channel(self, name: str) -> ChannelTargets:
        return self.channels[name]


_SECTIONS: dict[str, type] = {
    "kafka": KafkaSettings,
    "topics": TopicSettings,
    "pipeline": PipelineSettings,
    "worker": WorkerSettings,
    "targets": Targets,
}


def load(path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Settings from defaults, the TOML file (``path`` or ``$CCPULSE_CONFIG``) and the environment."""
    env = os.environ if env is None else env
    raw: dict[str, Any] = {}
    path = path or env.get(CONFIG_ENV)
    if path:
        raw = _read_toml(Path(path))
    _apply_env(raw, env)
    return _build(raw)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {path} does not exist") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc


def _apply_env(raw: dict[str, Any], env: Mapping[str, str]) -> None:
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name or name == CONFIG_ENV:
            continue
        parts = name[len(ENV_PREFIX):].lower().split("__")
        node = raw
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{name}: {'.'.join(parts)} does not name a configuration key")
        node[parts[-1]] = value


def _build(raw: dict[str, Any]) -> Settings:
    unknown = set(raw) - set(_SECTIONS) - {"channels"}
    if unknown:
        raise ConfigError(f"unknown configuration section {sorted(unknown)[0]!r}")
    sections = {name: _build_section(name, cls, raw.get(name, {})) for name, cls in _SECTIONS.items()}
    channels = _build_channels(raw.get("channels", {}))
    settings = Settings(channels=channels, **sections)
    _check(settings)
    return settings


def _build_section(section: str, cls: type, values: Any) -> Any:
    if not isinstance(values, dict):
        raise ConfigError(f"{section}: expected a table of keys")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in values.items():
        if key not in fields:
            raise ConfigError(f"{section}.{key}: unknown configuration key")
        default = getattr(cls(), key)
        kwargs[key] = _coerce(f"{section}.{key}", value, default, fields[key].type)
    return cls(**kwargs)


def _build_channels(values: Any) -> dict[str, ChannelTargets]:
    if not isinstance(values, dict):
        raise ConfigError("channels: expected a table per channel")
    channels = dict(DEFAULT_CHANNELS)
    for name, overrides in values.items():
        if name not in CHANNELS:
            raise ConfigError(f"channels.{name}: unknown channel (known: {', '.join(CHANNELS)})")
        if not isinstance(overrides, dict):
            raise ConfigError(f"channels.{name}: expected a table of keys")
        current = dataclasses.asdict(channels[name])
        for key, value in overrides.items():
            if key not in current:
                raise ConfigError(f"channels.{name}.{key}: unknown configuration key")
            current[key] = _coerce(f"channels.{name}.{key}", value, current[key], "float | None")
        channels[name] = ChannelTargets(**current)
    return channels


def _coerce(key: str, value: Any, default: Any, annotation: Any) -> Any:
    """Turn a TOML or environment value into the type of the default, or fail naming the key."""
    text = str(annotation)
    optional = "None" in text
    if isinstance(value, str) and optional and value.strip().lower() in ("", "none", "null"):
        return None
    try:
        if "tuple" in text:
            items = value.split(",") if isinstance(value, str) else list(value)
            return tuple(str(item).strip() for item in items if str(item).strip())
        if "bool" in text:
            return _to_bool(value)
        if "int" in text and "float" not in text:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if "float" in text:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if isinstance(value, (dict, list)):
            raise ValueError
        return str(value)
    except (TypeError, ValueError):
        kind = type(default).__name__ if default is not None else text
        raise ConfigError(f"{key}: invalid value {value!r} (expected {kind})") from None


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    lowered = str(value).strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(value)


def _check(settings: Settings) -> None:
    """Range checks, so a typo such as a target of 90 instead of 0.90 is caught at start-up."""
    checks: list[tuple[str, bool]] = [
        ("topics.partitions", settings.topics.partitions >= 1),
        ("topics.replication_factor", settings.topics.replication_factor >= 1),
        ("pipeline.retention_horizon_s", settings.pipeline.retention_horizon_s >= 24 * 3600 + 60),
        ("pipeline.future_tolerance_s", settings.pipeline.future_tolerance_s >= 0),
        ("pipeline.short_abandon_s", settings.pipeline.short_abandon_s >= 0),
        ("pipeline.min_volume", settings.pipeline.min_volume >= 0),
        ("pipeline.publish_interval_s", settings.pipeline.publish_interval_s > 0),
        ("pipeline.ticket_retention_days", settings.pipeline.ticket_retention_days >= 3),
        ("pipeline.ticket_refresh_s", settings.pipeline.ticket_refresh_s >= 1),
        ("topics.facts_retention_ms", settings.topics.facts_retention_ms >= 1000 * (
            settings.pipeline.retention_horizon_s + settings.pipeline.ticket_refresh_s + 24 * 3600)),
        ("worker.web_port", 0 <= settings.worker.web_port <= 65535),
        # stage one rebuilds its state from the events topic: it must still hold the tickets it tracks
        ("topics.events_retention_ms", settings.topics.events_retention_ms >= 86_400_000 * (
            settings.pipeline.ticket_retention_days + 1)),
        ("kafka.bootstrap_servers", bool(settings.kafka.bootstrap_servers.strip())),
    ]
    for field in dataclasses.fields(Targets):
        checks.append((f"targets.{field.name}", 0.0 <= getattr(settings.targets, field.name) <= 1.0))
    for name, channel in settings.channels.items():
        checks.append((f"channels.{name}.sla_threshold_s", channel.sla_threshold_s > 0))
        checks.append((f"channels.{name}.sl_target", 0.0 <= channel.sl_target <= 1.0))
        if channel.abandon_target is not None:
            checks.append((f"channels.{name}.abandon_target", 0.0 <= channel.abandon_target <= 1.0))
    for key, ok in checks:
        if not ok:
            raise ConfigError(f"{key}: value out of range")

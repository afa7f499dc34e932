"""Where simulated events go: a JSON Lines file (gzip when the name ends in ``.gz``, ``-`` = stdout)
or the events topic through kafka-python's batching producer."""

from __future__ import annotations

import dataclasses
import gzip
import logging
import os
import sys
from typing import IO, Any, Protocol

from streams.config import Settings
from streams.errors import CcpulseError


class Sink(Protocol):
    def write(self, key: bytes, value: bytes) -> None: ...
    def close(self) -> None: ...


class FileSink:
    """JSON Lines, one event per line; gzip without a timestamp in its header, so output is reproducible."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._raw: IO[bytes] | None = None
        try:
            if path == "-":
                self._fh: IO[bytes] = sys.stdout.buffer
            else:
                self._raw = open(path, "wb")  # noqa: SIM115 - closed in close()
                self._fh = gzip.GzipFile(filename="", mode="wb", fileobj=self._raw, mtime=0) \
                    if path.endswith(".gz") else self._raw
        except OSError as exc:
            raise CcpulseError(f"cannot write {path}: {exc.strerror}") from exc

    def write(self, key: bytes, value: bytes) -> None:
        self._fh.write(value + b"\n")

    def close(self) -> None:
        try:
            self._fh.flush()
        except BrokenPipeError:
            # stdout's reader is gone; point stdout at /dev/null so the exit flush stays quiet
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        finally:
            if self._raw is not None:
                if self._fh is not self._raw:
                    self._fh.close()
                self._raw.close()


class KafkaSink:
    """Produces to the events topic: key bytes, batches with a short linger, errors surfaced on close."""

    def __init__(self, settings: Settings, bootstrap: str | None = None) -> None:
        from kafka import KafkaProducer  # imported here: file output does not need Kafka's libraries
        from kafka.errors import KafkaError

        from streams.kafka_client import kafka_python_options

        kafka = dataclasses.replace(settings.kafka, bootstrap_servers=bootstrap) if bootstrap else settings.kafka
        options: dict[str, Any] = kafka_python_options(kafka)  # brokers, security, request timeout
        self.topic = settings.topics.name("events")
        self._error: BaseException | None = None
        self._kafka_error = KafkaError
        logging.getLogger("kafka").addHandler(logging.NullHandler())  # failures are reported by us
        timeout_ms = options["request_timeout_ms"]
        try:
            self._producer = KafkaProducer(**options, linger_ms=20, batch_size=256 * 1024, acks=1, retries=5,
                                           max_block_ms=timeout_ms, bootstrap_timeout_ms=timeout_ms)
        except KafkaError as exc:
            raise CcpulseError(f"cannot reach Kafka at {kafka.bootstrap_servers} within "
                               f"{kafka.request_timeout_s:g} s ({type(exc).__name__})") from None

    def write(self, key: bytes, value: bytes) -> None:
        if self._error is not None:
            raise CcpulseError(f"sending to {self.topic} failed: {self._error}")
        try:
            self._producer.send(self.topic, key=key, value=value).add_errback(self._failed)
        except self._kafka_error as exc:
            raise CcpulseError(f"sending to {self.topic} failed: {exc}") from exc

    def _failed(self, exc: BaseException) -> None:
        self._error = self._error or exc

    def close(self) -> None:
        try:
            self._producer.flush()
        finally:
            self._producer.close()
        if self._error is not None:
            raise CcpulseError(f"sending to {self.topic} failed: {self._error}")

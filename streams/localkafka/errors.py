"""Errors of the local broker runner, each worded so a person knows what to do."""

from __future__ import annotations

from streams.errors import AirExstreamError


class LocalKafkaError(AirExstreamError):
    """The local broker could not be provisioned, started or stopped."""


class JavaMissing(LocalKafkaError):
    pass


class MavenMissing(LocalKafkaError):
    pass


class DownloadFailed(LocalKafkaError):
    retriable = True


class PortInUse(LocalKafkaError):
    pass


class BrokerStartFailed(LocalKafkaError):
    pass

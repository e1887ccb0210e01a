"""Errors of the local broker runner, each worded so a person knows what to do next."""

from __future__ import annotations

from streams.errors import AirExstreamError


class LocalKafkaError(AirExstreamError):
    """The local broker could not be provisioned, started or stopped."""


class JavaMissing(LocalKafkaError):
    """No ``java`` on PATH (or its version could not be read)."""


class JavaTooOld(LocalKafkaError):
    """The ``java`` on PATH is older than the broker needs (17)."""


class MavenMissing(LocalKafkaError):
    """The broker's jars are not cached yet and no ``mvn`` is on PATH to fetch them."""


class DownloadFailed(LocalKafkaError):
    """Maven could not resolve the broker's jars; the message ends with Maven's output."""

    retriable = True


class PortInUse(LocalKafkaError):
    """A port asked for explicitly is already taken on the loopback interface."""


class StateDirRefused(LocalKafkaError):
    """The state directory holds files this runner did not create, so it will not wipe it."""


class BrokerStartFailed(LocalKafkaError):
    """A node exited, or did not serve requests, during startup; the message shows its log."""

    def __init__(self, message: str, *, port_conflict: bool = False) -> None:
        super().__init__(message)
        self.port_conflict = port_conflict
        """True when the node died because one of its ports was taken: worth new ports."""


class CredentialsRefused(LocalKafkaError):
    """A SASL username or password a SASL_SSL local cluster cannot use; the message says why."""

"""Errors of the local schema registry runner, each worded so a person knows what to do next."""

from __future__ import annotations

from streams.errors import AirExstreamError


class LocalRegistryError(AirExstreamError):
    """The local schema registry could not be provisioned, started or stopped."""


class NoSuitableJava(LocalRegistryError):
    """No Java runtime new enough for any Apicurio Registry release the project runs."""


class MavenMissing(LocalRegistryError):
    """The registry is not cached yet and no ``mvn`` is on PATH to fetch it."""


class DownloadFailed(LocalRegistryError):
    """Maven could not fetch the registry, or its archive could not be unpacked."""

    retriable = True


class StateDirRefused(LocalRegistryError):
    """The state directory holds files this runner did not create, so it will not use it."""


class RegistryStartFailed(LocalRegistryError):
    """The registry exited, or did not answer, during startup; the message shows its log."""

    def __init__(self, message: str, *, port_conflict: bool = False) -> None:
        super().__init__(message)
        self.port_conflict = port_conflict
        """True when it died because its port was taken: worth another port."""

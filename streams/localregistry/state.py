"""The state file: a started registry, recorded so another process can report on or stop it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streams.localregistry.releases import url


@dataclass(frozen=True, slots=True, kw_only=True)
class RegistryInfo:
    """A local registry as recorded in ``<state_dir>/state.json``."""

    state_dir: str
    version: str
    """The Apicurio Registry release that runs."""
    java: str
    pid: int
    http_port: int
    management_port: int | None
    """Health and metrics (releases with a management interface), else None."""
    log_file: str

    @property
    def url(self) -> str:
        """The value of ``KAFKA_SCHEMA_REGISTRY_URL`` for this registry."""
        return url(self.http_port)

    def to_json(self) -> str:
        doc: dict[str, Any] = {
            "state_dir": self.state_dir,
            "version": self.version,
            "java": self.java,
            "pid": self.pid,
            "http_port": self.http_port,
            "management_port": self.management_port,
            "log_file": self.log_file,
            # redundant with the port, written for shell users (`jq -r .url`)
            "url": self.url,
        }
        return json.dumps(doc, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> RegistryInfo:
        raw = json.loads(text)
        if not isinstance(raw, dict):
            raise ValueError("the state file holds no JSON object")
        management = raw.get("management_port")
        return cls(
            state_dir=str(raw["state_dir"]),
            version=str(raw["version"]),
            java=str(raw["java"]),
            pid=int(raw["pid"]),
            http_port=int(raw["http_port"]),
            management_port=None if management is None else int(management),
            log_file=str(raw["log_file"]),
        )


def read_state(path: Path) -> RegistryInfo | None:
    """The recorded registry, or None when there is no (readable) state file."""
    try:
        return RegistryInfo.from_json(path.read_text())
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError):
        # a torn or hand-edited file describes no process we could safely signal
        return None


def write_state(path: Path, info: RegistryInfo) -> None:
    """Replace the state file atomically, so a reader never sees half of it."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(info.to_json())
    tmp.replace(path)

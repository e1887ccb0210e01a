"""Templates as the template sync would publish them (see :mod:`streams.emulator.synced`)."""

from streams.emulator.synced import design_versions, publish_synced_templates, synced

__all__ = ["design_versions", "publish_synced_templates", "synced"]

"""The routing worker's per-record handlers, each a module-level class or function over typed ports
(:mod:`.ports`), testable with plain fakes; ``streams/routing/engine_worker.py`` wires them to
the engine."""

"""The routing worker: handlers on the project's engine that turn Air Inc. events into
composition commands."""

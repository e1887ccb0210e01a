"""The routing worker: Faust agents that turn Air Inc. events into composition commands."""

"""Every exception the project defines derives from :class:`AirExstreamError`, so a boundary can
catch one type and retry logic can ask ``retriable`` instead of matching types or messages."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import streams
from streams.errors import AirExstreamError

pytestmark = pytest.mark.unit


def project_exceptions() -> list[type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for module_info in pkgutil.walk_packages(streams.__path__, prefix="streams."):
        if module_info.name.endswith(".__main__"):
            continue  # runs the CLI when imported
        module = importlib.import_module(module_info.name)
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, BaseException) and obj.__module__.startswith("streams."):
                found[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return [found[name] for name in sorted(found)]


def test_the_walk_finds_the_project_errors() -> None:
    names = {e.__name__ for e in project_exceptions()}
    # a few from different packages: the walk really imports every module
    assert {"DecodeError", "ExstreamError", "SinkFailed", "LocalKafkaError"} <= names
    assert len(names) > 40


def test_every_project_exception_derives_from_the_root() -> None:
    outside = [
        f"{e.__module__}.{e.__qualname__}"
        for e in project_exceptions()
        if not issubclass(e, AirExstreamError)
    ]
    assert outside == []


def test_every_project_exception_says_whether_it_is_retriable() -> None:
    for error in project_exceptions():
        assert isinstance(getattr(error, "retriable", None), bool), error.__qualname__


def test_one_error_may_override_its_class_retriable_flag() -> None:
    from streams.kafka_writer import KafkaWriteError

    assert KafkaWriteError("leader moving").retriable
    assert not KafkaWriteError("not authorized", retriable=False).retriable
    assert KafkaWriteError.retriable  # the class default is untouched
    assert not AirExstreamError("x").retriable
    assert AirExstreamError("x", retriable=True).retriable


def test_on_demand_failures_are_retriable_when_the_portal_may_ask_again() -> None:
    from streams.ondemand.exstream import ExstreamFailure

    assert ExstreamFailure("unavailable", "503").retriable
    assert ExstreamFailure("timeout", "504").retriable
    assert not ExstreamFailure("rejected", "400").retriable
    assert not ExstreamFailure("error", "500").retriable

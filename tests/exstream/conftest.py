from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.exstream.emulated import Emulated, emulated


@pytest.fixture
async def exstream() -> AsyncIterator[Emulated]:
    async for world in emulated():
        yield world

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.domain.records import TemplateVersion
from streams.domain.templates import (
    FALLBACK_LANGUAGE,
    TemplateMiss,
    TemplateMissCode,
    normalize_language,
    resolve_template,
)
from tests.domain.factories import template

pytestmark = pytest.mark.unit


def resolve(
    versions: list[TemplateVersion], language: str | None = "fr", channel: str | None = None
) -> TemplateVersion | TemplateMiss:
    return resolve_template(
        versions, template_id="tpl-statement", language=language, channel=channel
    )


def miss_code(result: TemplateVersion | TemplateMiss) -> str | None:
    return result.code.value if isinstance(result, TemplateMiss) else None


def chosen(result: TemplateVersion | TemplateMiss) -> tuple[int, str] | None:
    return None if isinstance(result, TemplateMiss) else (result.version, result.language)


def test_fallback_language_is_english() -> None:
    assert FALLBACK_LANGUAGE == "en"


@pytest.mark.parametrize(
    ("versions", "language", "expected"),
    [
        # highest approved in the customer's language
        ([template(version=1, language="fr"), template(version=2, language="fr")], "fr", (2, "fr")),
        # drafts and retired versions are never used, whatever their number
        (
            [
                template(version=1, language="fr"),
                template(version=2, language="fr", status="RETIRED"),
                template(version=3, language="fr", status="DRAFT"),
            ],
            "fr",
            (1, "fr"),
        ),
        # fallback to English when the customer's language has no approved version
        (
            [
                template(version=4, language="en"),
                template(version=5, language="fr", status="DRAFT"),
            ],
            "fr",
            (4, "en"),
        ),
        # the customer's language wins over a newer English version
        ([template(version=9, language="en"), template(version=2, language="fr")], "fr", (2, "fr")),
        # normalised languages
        ([template(version=1, language="FR")], "fr-CA", (1, "FR")),
        ([template(version=1, language="pt-BR")], "pt_PT", (1, "pt-BR")),
        ([template(version=1, language="en")], None, (1, "en")),
        ([template(version=1, language="en")], "  ", (1, "en")),
        # versions of other templates are ignored
        (
            [template(version=7, language="fr", template_id="other"), template(version=1)],
            "fr",
            (1, "en"),
        ),
    ],
)
def test_resolution_table(
    versions: list[TemplateVersion], language: str | None, expected: tuple[int, str]
) -> None:
    assert chosen(resolve(versions, language)) == expected


@pytest.mark.parametrize(
    ("versions", "language", "code"),
    [
        ([], "fr", "MISSING_TEMPLATE"),
        ([template(template_id="other")], "fr", "MISSING_TEMPLATE"),
        ([template(status="RETIRED")], "en", "RETIRED_TEMPLATE"),
        (
            [template(status="DRAFT"), template(version=2, status="RETIRED")],
            "en",
            "RETIRED_TEMPLATE",
        ),
        ([template(status="SOMETHING")], "en", "RETIRED_TEMPLATE"),
        ([template(language="de")], "fr", "LANGUAGE_UNAVAILABLE"),
        (
            [template(language="de"), template(language="en", status="RETIRED")],
            "fr",
            "LANGUAGE_UNAVAILABLE",
        ),
    ],
)
def test_miss_table(versions: list[TemplateVersion], language: str, code: str) -> None:
    result = resolve(versions, language)
    assert miss_code(result) == code
    assert isinstance(result, TemplateMiss)
    assert "tpl-statement" in result.reason


@pytest.mark.parametrize(
    ("channels", "channel", "ok"),
    [
        ([], "SMS", True),
        (["PRINT", "EMAIL"], "EMAIL", True),
        (["PRINT", "EMAIL"], "SMS", False),
        (["PRINT"], None, True),
    ],
)
def test_channel_must_be_supported(channels: list[str], channel: str | None, ok: bool) -> None:
    result = resolve([template(channels=channels)], "en", channel)
    assert (miss_code(result) is None) is ok
    if not ok:
        assert miss_code(result) == "CHANNEL_UNSUPPORTED"


def test_older_version_is_not_used_for_a_channel_the_newest_lacks() -> None:
    versions = [template(version=1, channels=["SMS"]), template(version=2, channels=["PRINT"])]
    result = resolve(versions, "en", "SMS")
    assert isinstance(result, TemplateMiss)
    assert result.code is TemplateMissCode.CHANNEL_UNSUPPORTED
    assert result.version is not None
    assert result.version.version == 2


@pytest.mark.parametrize(
    ("raw", "normal"),
    [("en", "en"), ("EN", "en"), ("en-GB", "en"), ("pt_BR", "pt"), (None, "en"), ("", "en")],
)
def test_normalize_language(raw: str | None, normal: str) -> None:
    assert normalize_language(raw) == normal


version_strategy = st.builds(
    template,
    template_id=st.sampled_from(["tpl-statement", "other"]),
    version=st.integers(1, 6),
    language=st.sampled_from(["en", "fr", "de"]),
    status=st.sampled_from(["DRAFT", "APPROVED", "RETIRED"]),
    channels=st.sampled_from([[], ["PRINT"], ["EMAIL", "PRINT"]]),
    updated_at=st.integers(0, 3),
)


@given(
    st.lists(version_strategy, max_size=10),
    st.sampled_from(["en", "fr", "de", "es", None]),
    st.sampled_from([None, "PRINT", "EMAIL", "SMS"]),
    st.randoms(),
)
def test_resolution_properties(
    versions: list[TemplateVersion],
    language: str | None,
    channel: str | None,
    rnd: random.Random,
) -> None:
    result = resolve(versions, language, channel)
    shuffled = list(versions)
    rnd.shuffle(shuffled)
    assert resolve(shuffled, language, channel) == result  # order never matters
    own = [v for v in versions if v.template_id == "tpl-statement"]
    if isinstance(result, TemplateMiss):
        if result.code is TemplateMissCode.MISSING_TEMPLATE:
            assert not own
        if result.code is TemplateMissCode.RETIRED_TEMPLATE:
            assert own
            assert all(v.status != "APPROVED" for v in own)
        return
    # never a draft or retired version, never another template, always a supported channel
    assert result.status == "APPROVED"
    assert result.template_id == "tpl-statement"
    assert channel is None or not result.channels or channel in result.channels
    # the highest approved version of its language, which is the customer's or the fallback
    same_language = [v for v in own if v.status == "APPROVED" and v.language == result.language]
    assert result.version == max(v.version for v in same_language)
    wanted = language or "en"
    assert result.language in {wanted, "en"}
    if result.language != wanted:
        assert not any(v.status == "APPROVED" and v.language == wanted for v in own)

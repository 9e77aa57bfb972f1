"""Masking: every spelling of a secret, as whole tokens (django_cd.pipeline.secrets)."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from django_cd.pipeline.errors import StepFailed
from django_cd.pipeline.secrets import MASK, mask, secret_values
from django_cd.pipeline.steps import StepRunner

PASSWORD = "pa/ss@w0rd-9"  # needs percent-encoding in a URL
ENCODED = quote(PASSWORD, safe="")  # pa%2Fss%40w0rd-9
URL = f"postgres://app:{ENCODED}@127.0.0.1:5432/notes"
ENV = {
    "DATABASE_URL": URL,
    "DJANGO_SECRET_KEY": "k3y-" + "x" * 46,
    "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
    "API_TOKEN": "short",
}


def masked(text: str) -> str:
    return mask(text, secret_values(ENV))


def test_the_decoded_password_is_masked_as_django_prints_it() -> None:
    # settings.DATABASES['default']['PASSWORD'] holds the decoded value.
    text = f"FATAL: password {PASSWORD!r} rejected; {{'PASSWORD': '{PASSWORD}'}}"
    assert masked(text) == f"FATAL: password '{MASK}' rejected; {{'PASSWORD': '{MASK}'}}"


def test_every_spelling_and_part_of_a_url_secret_is_masked() -> None:
    lines = [
        URL,  # as written in .env
        f"postgres://app:{PASSWORD}@127.0.0.1:5432/notes",  # decoded
        ENCODED,
        quote(PASSWORD),  # encoded, keeping '/'
        f"app:{PASSWORD}",
        f"app:{ENCODED}",
        quote(URL, safe=""),  # the whole URL encoded again (a redirect's ?next=)
        '{"password": "%s"}' % PASSWORD.replace("/", "\\/"),  # noqa: UP031
    ]
    out = masked("\n".join(lines))
    for secret in (PASSWORD, ENCODED, quote(PASSWORD), "w0rd-9"):
        assert secret not in out
    assert out.splitlines()[:7] == [MASK, MASK, MASK, MASK, MASK, MASK, MASK]


def test_json_and_repr_escapes_are_masked() -> None:
    secret = 'q"uo\\te-secret-1'
    values = secret_values({"SECRET": secret})
    assert mask('{"k": "q\\"uo\\\\te-secret-1"}', values) == f'{{"k": "{MASK}"}}'
    assert mask(repr({"k": secret}), values) == f"{{'k': '{MASK}'}}"


def test_a_short_secret_is_masked_only_as_a_whole_token() -> None:
    text = "The key is shorter than 50 characters; token=short, (short) short_cut shorts"
    assert masked(text) == (
        f"The key is shorter than 50 characters; token={MASK}, ({MASK}) short_cut shorts"
    )


def test_a_long_secret_is_masked_inside_words_too() -> None:
    key = ENV["DJANGO_SECRET_KEY"]
    assert masked(f"prefix{key}suffix") == f"prefix{MASK}suffix"


def test_plain_options_and_tiny_values_are_left_alone() -> None:
    values = secret_values({**ENV, "SECRET_FLAG": "on"})
    assert "on" not in values and "127.0.0.1,localhost" not in values
    assert mask("turned on at 127.0.0.1", values) == "turned on at 127.0.0.1"


def test_any_url_password_is_masked_even_of_an_unknown_url() -> None:
    assert masked("redis://u:pw2@h/0") == f"redis://u:{MASK}@h/0"


def test_a_failing_step_masks_its_message_output_and_detail() -> None:
    results: list = []
    runner = StepRunner(results, None, secret_values(ENV))

    def leak() -> str:
        raise StepFailed("migrate", f"connect with {PASSWORD} failed", f"x\nPASSWORD={PASSWORD}")

    with pytest.raises(StepFailed) as raised:
        runner.run("migrate", leak)
    assert str(raised.value) == f"connect with {MASK} failed"
    assert raised.value.output == f"x\nPASSWORD={MASK}"
    assert results[0].detail == f"connect with {MASK} failed"

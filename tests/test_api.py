"""The public API: a literal __all__, every name importable, stage packages never shadowing."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import pipeline


def test_all_is_literal_and_every_name_resolves():
    assert sorted(pipeline.__all__) == sorted(pipeline._EXPORTS)
    for name in pipeline.__all__:
        assert getattr(pipeline, name) is getattr(
            importlib.import_module(pipeline._EXPORTS[name]), name
        )


@pytest.mark.slow
def test_the_send_function_is_not_shadowed_by_the_sending_stage():
    # In a fresh interpreter: import the stage first, then ask for the function.
    script = (
        "import pipeline.sending.chunks, pipeline; import pipeline.job as j; "
        "assert pipeline.send is j.send, pipeline.send; print('ok')"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.stdout == "ok\n", done.stderr


def test_the_package_is_typed():
    from importlib.resources import files

    assert files("pipeline").joinpath("py.typed").is_file()


def test_textlocal_implements_the_provider_protocol():
    from pipeline.providers.base import Provider
    from pipeline.providers.textlocal.client import TextlocalClient

    with TextlocalClient("a-key-123456", "https://api.textlocal.in/") as client:
        assert isinstance(client, Provider)


def test_send_takes_an_options_object_and_keyword_overrides_of_its_fields():
    import dataclasses

    import pytest

    from pipeline.job import SendOptions, send

    fields = {f.name for f in dataclasses.fields(SendOptions)}
    assert {
        "provider",
        "sender",
        "chunk_size",
        "limit",
        "journal",
        "out",
        "repeat_window",
        "account",
        "clock",
    } <= fields
    with pytest.raises(TypeError, match="no_such_option"):
        send(None, None, SendOptions(), no_such_option=1)  # type: ignore[arg-type]

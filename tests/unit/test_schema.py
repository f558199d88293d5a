"""The one field error: validators name a field of what they were handed; whoever handed it over
says once where it sits (`within`), the loader anchors it to the file once (`anchored`)."""

from __future__ import annotations

from pathlib import Path

import pytest
from coexist.base.schema import FieldError, ScenarioError, anchored, within
from coexist.host.guestnet import parse_network
from coexist.scenario.expect import parse_expect
from coexist.scenario.fixes import parse_fix


def test_within_names_the_field_from_one_level_up_and_anchored_names_the_file() -> None:
    with pytest.raises(ScenarioError) as caught, anchored("s.toml"), within("step[1]"), within("expect"):
        raise FieldError("ping", "must be a boolean, got 'yes'")
    assert (caught.value.path, caught.value.where) == ("s.toml", "step[1].expect.ping")
    assert str(caught.value) == "s.toml: step[1].expect.ping: must be a boolean, got 'yes'"


def test_an_error_of_the_data_itself_takes_the_prefix_as_its_field() -> None:
    with pytest.raises(FieldError) as caught, within("case[0].expect.boot"):
        raise FieldError("", "must be a table")
    assert caught.value.field == "case[0].expect.boot"


def test_an_anchored_error_passes_through_unchanged() -> None:
    with pytest.raises(ScenarioError) as caught, anchored("outer.toml"), within("x"):
        raise ScenarioError("inner.toml", "file", "not valid TOML")
    assert str(caught.value) == "inner.toml: file: not valid TOML"


@pytest.mark.parametrize(("validate", "field"), [
    (lambda: parse_fix("mine", {"summary": "s"}), "commands"),
    (lambda: parse_network("n", {"bridge": "v"}), "ipv4"),
    (lambda: parse_expect({"ping": "yes"}, ()), "ping"),
])
def test_every_validator_raises_the_one_field_error(validate: object, field: str) -> None:
    with pytest.raises(FieldError) as caught:
        validate()  # type: ignore[operator]
    assert caught.value.field == field and not isinstance(caught.value, ScenarioError)


@pytest.mark.parametrize(("toml", "said"), [
    ('[host]\nrelease = "trixy"\n', "host.release: 'trixy' is not allowed; did you mean 'trixie'? allowed: "),
    ('[hots]\nrelease = "trixie"\n', "[hots]: unknown table; did you mean 'host'? allowed: "),
    ('[[step]]\ndo = "boot"\nexepct = { symptom = true }\n', "step[0].exepct: unknown key; did you mean 'expect'?"),
    ('[[step]]\ndo = "boot"\nexpect = { symtpom = true }\n', "symtpom: unknown key; did you mean 'symptom'?"),
    ('[host]\nrelease = "ubuntu"\n', "host.release: 'ubuntu' is not allowed; allowed: "),   # nothing near
])
def test_a_misspelt_key_or_value_gets_a_suggestion(tmp_path: Path, toml: str, said: str) -> None:
    from coexist.scenario.model import load

    file = tmp_path / "report.toml"
    file.write_text('[scenario]\nname = "report"\nsummary = "s"\n\n' + toml)
    with pytest.raises(ScenarioError) as error:
        load(file)
    assert said in str(error.value)

"""An emptied custom_fields.yaml is refused (the fields in force stay); a missing one means none."""

import pytest

from core.errors import ConfigError
from plugins.customfields import store

ONE = "fields:\n  gadget:\n    level:\n      type: string\n      label: {en: Level}\n"


@pytest.mark.parametrize("text,words", [
    ("", "the file is empty (hint: write 'fields: {}' for no custom fields, or delete the file)"),
    ("# fields: none for now\n", "the file is empty (hint: write 'fields: {}'"),
    ("- level\n", "the file must be a mapping of keys, not a list"),
])
def test_an_empty_or_misshapen_file_is_refused_and_the_fields_stay(app, admin_api, fields_file, runner,
                                                                   text, words):
    fields_file(ONE)
    assert admin_api.get("/api/v1/custom-fields").json["total"] == 1
    with pytest.raises(ConfigError):  # refused: the version in force stays
        fields_file(text)
    assert admin_api.get("/api/v1/custom-fields").json["total"] == 1
    problems = admin_api.get("/api/v1/custom-fields/check").json["problems"]
    assert len(problems) == 1 and f"custom_fields.yaml:1:1: error: {words}" in problems[0], problems
    result = runner.invoke(["fields", "check"])
    assert result.exit_code == 1 and "custom_fields.yaml:1:1: error: " + words.split(" (")[0] in result.output


def test_fields_empty_mapping_means_no_fields(app, admin_api, fields_file):
    fields_file(ONE)
    assert admin_api.get("/api/v1/custom-fields").json["total"] == 1
    fields_file("fields: {}\n")
    assert admin_api.get("/api/v1/custom-fields").json["total"] == 0
    assert not store.state(app).problems

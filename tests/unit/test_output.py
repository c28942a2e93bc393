"""Docker-style output: aligned tables, JSON lines, Go-template subsets."""

from __future__ import annotations

import io
import json

import pytest

from docker_cghistory.errors import UsageError
from docker_cghistory.output import Template, align, render

FIELDS = ("Index", "Updated", "Digest", "Tag")
HEADERS = {"Index": "#", "Updated": "UPDATED", "Digest": "DIGEST", "Tag": "TAG"}
D0 = "sha256:" + "a" * 64
D1 = "sha256:" + "b" * 64
ROWS = [
    {"Index": 0, "Updated": "2024-06-02T00:00:00Z", "Digest": D0, "Tag": "latest"},
    {"Index": 1, "Updated": "2024-06-01T00:00:00.5Z", "Digest": D1, "Tag": "latest"},
]
TABLE = (["#", "UPDATED", "DIGEST"],
         [["0", "2024-06-02T00:00:00Z", "aaaaaaaaaaaa"], ["1", "2024-06-01T00:00:00Z", "bbbb"]])


def show(fmt: str | None, rows=ROWS, fields=FIELDS) -> str:
    out = io.StringIO()
    render(rows, fmt, out, fields=fields, headers=HEADERS, table=TABLE)
    return out.getvalue()


def columns(line: str) -> list[int]:
    """Start offsets of the cells of an aligned line (cells hold no spaces here)."""
    starts, previous = [], " "
    for offset, char in enumerate(line):
        if char != " " and previous == " ":
            starts.append(offset)
        previous = char
    return starts


@pytest.mark.parametrize("fmt", [None, "", "  ", "table"])
def test_default_table_is_aligned(fmt: str | None) -> None:
    lines = show(fmt).splitlines()
    assert lines[0].split() == ["#", "UPDATED", "DIGEST"]
    assert lines[1].split() == ["0", "2024-06-02T00:00:00Z", "aaaaaaaaaaaa"]
    assert len(lines) == 3
    assert columns(lines[0]) == columns(lines[1]) == columns(lines[2])
    # docker's tabwriter: padding 3 after the widest cell; no trailing blanks.
    assert columns(lines[0])[1] == len("#") + 3
    assert columns(lines[0])[2] == columns(lines[0])[1] + len("2024-06-02T00:00:00Z") + 3
    assert all(line == line.rstrip() for line in lines)


def test_align_ragged_and_empty() -> None:
    out = io.StringIO()
    align([], out)
    assert out.getvalue() == ""
    align([["a", "bb", "c"], ["dddd", "e"], ["f"]], out)
    assert out.getvalue().splitlines() == ["a      bb   c", "dddd   e", "f"]


def test_json_lines() -> None:
    lines = show("json").splitlines()
    assert [json.loads(line) for line in lines] == ROWS
    extra = [dict(ROWS[0], Secret="x")]
    assert json.loads(show("json", rows=extra)) == ROWS[0]  # only the declared fields


def test_json_lines_of_nothing() -> None:
    assert show("json", rows=[]) == ""


def test_template_with_escaped_tab() -> None:
    assert show(r"{{.Digest}}\t{{.Updated}}").splitlines() == [
        f"{D0}\t2024-06-02T00:00:00Z", f"{D1}\t2024-06-01T00:00:00.5Z",
    ]
    assert show("{{ .Index }}:{{.Tag}}") == "0:latest\n1:latest\n"
    assert show(r"{{.Index}}\n") == "0\n\n1\n\n"


def test_table_template_has_a_header_and_alignment() -> None:
    lines = show(r"table {{.Index}}\t{{.Digest}}").splitlines()
    assert lines[0].split() == ["#", "DIGEST"]
    assert lines[1].split() == ["0", D0]
    assert lines[2].split() == ["1", D1]
    assert columns(lines[0]) == columns(lines[1]) == [0, 4]


def test_table_template_header_defaults_to_upper_field_name() -> None:
    out = io.StringIO()
    render(ROWS, "table {{.Tag}}", out, fields=FIELDS, headers={}, table=TABLE)
    assert out.getvalue().splitlines() == ["TAG", "latest", "latest"]


def test_json_dot_and_json_field() -> None:
    lines = show("{{json .}}").splitlines()
    assert json.loads(lines[0]) == ROWS[0]
    assert show("{{json .Digest}} {{json .Index}}").splitlines()[1] == f'"{D1}" 1'


def test_upper_lower_println() -> None:
    assert show("{{upper .Tag}}{{println}}{{lower .Tag}}", rows=ROWS[:1]) == "LATEST\nlatest\n"


def test_missing_value_renders_empty() -> None:
    assert show("[{{.Tag}}]", rows=[{"Index": 0}]) == "[]\n"


@pytest.mark.parametrize(
    "fmt",
    ["{{.Nope}}", "{{.digest}}", "{{Digest}}", "table {{.Index}}\t{{.Size}}", "{{json .Nope}}"],
)
def test_unknown_field_names_the_fields(fmt: str) -> None:
    with pytest.raises(UsageError) as caught:
        show(fmt)
    message = str(caught.value)
    assert "unknown field" in message
    assert ".Index, .Updated, .Digest, .Tag" in message
    assert "\n" not in message


@pytest.mark.parametrize("fmt", ["{{}}", "{{ }}", "{{index .Digest 0}}", "{{.Index .Digest}}"])
def test_unreadable_actions(fmt: str) -> None:
    """Refused with one line that quotes the format as given."""
    with pytest.raises(UsageError) as caught:
        show(fmt)
    message = str(caught.value)
    assert message.startswith(f"invalid format {fmt!r}: ")
    assert "\n" not in message


def test_bad_format_text_is_sanitized() -> None:
    """Control characters are neutralised, yet the message still names what is wrong."""
    with pytest.raises(UsageError) as caught:
        Template("\x1b[2J{{.Evil\x07}}", FIELDS)
    message = str(caught.value)
    assert "\x1b" not in message and "\x07" not in message
    assert "unknown field '.Evil" in message and "[2J" in message


def test_objects_and_lists_print_as_go_prints_them() -> None:
    rows = [{"Index": 0, "Updated": {"linux/arm64": "sha256:b", "linux/amd64": "sha256:a"},
             "Digest": ["x", 1, True], "Tag": None}]
    out = show("{{.Updated}}|{{.Digest}}|{{.Tag}}|{{json .Updated}}", rows)
    assert out == ('map[linux/amd64:sha256:a linux/arm64:sha256:b]|[x 1 true]||'
                   '{"linux/arm64":"sha256:b","linux/amd64":"sha256:a"}\n')


def test_an_if_block_in_a_table_template_is_headed_by_the_field_it_tests() -> None:
    """Not by the first branch's literal: ``{{if .LocalTag}}current…`` is the LOCAL TAG column."""
    rows = [{"Index": 0, "LocalTag": True, "Local": True},
            {"Index": 1, "LocalTag": False, "Local": False}]
    out = io.StringIO()
    render(rows, "table {{.Index}}\\t{{if .LocalTag}}current{{else if .Local}}pulled"
                  "{{else}}-{{end}}", out, fields=("Index", "LocalTag", "Local"),
                  headers={"Index": "#", "LocalTag": "LOCAL TAG", "Local": "LOCAL"},
                  table=((), ()))
    assert out.getvalue().splitlines() == ["#   LOCAL TAG", "0   current", "1   -"]

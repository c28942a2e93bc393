"""The two BuildKit word scanners share one state machine; these pin what each keeps."""

from __future__ import annotations

from docker_cghistory.rewrite.dockerfile_text import builder_flags, parse_words


def test_the_two_word_scanners_differ_only_where_buildkit_does() -> None:
    """builder_flags drops quotes and escapes and stops at "--"; parse_words keeps them."""
    text = '--mount=type="cache" --platform=$P -- x'
    flags, rest = builder_flags(text, 0, len(text), "\\")
    assert [word.text for word in flags] == ["--mount=type=cache", "--platform=$P"]
    assert text[rest:] == " x"  # where the "--" word ended
    text = "--a='x\\y' img"
    flags, rest = builder_flags(text, 0, len(text), "\\")
    assert [word.text for word in flags] == ["--a=xy"]  # escapes count inside single quotes
    assert text[rest:] == "img"
    text = "a=\"b c\" 'd\\e' f\\ g"
    words = parse_words(text, 0, len(text), "\\")
    assert [word.text for word in words] == ['a="b c"', "'d\\e'", "f\\ g"]
    assert [(word.start, word.end) for word in words] == [(0, 7), (8, 13), (14, 18)]

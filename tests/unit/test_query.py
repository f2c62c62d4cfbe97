"""Query parsing: filler dropped, longest concepts first, AND / OR, unknown words reported, length caps."""

from __future__ import annotations

import pytest

from pixelsift.errors import UsageError
from pixelsift.library.query import MAX_QUERY_CHARS, MAX_QUERY_WORDS, parse, words_of
from pixelsift.library.rows import Term

KNOWN = {
    "cat",
    "dog",
    "beach",
    "hot dog",
    "stop sign",
    "golden retriever",
    "person",
    "snow",
    "hen of the woods",
}


def resolve(phrase: str) -> Term | None:
    word = phrase[:-1] if phrase.endswith("s") and phrase[:-1] in KNOWN else phrase
    return Term(word, {word: 1.0}, {}, {}) if word in KNOWN else None


def groups(text: str) -> list[list[str]]:
    return [[t.text for t in group] for group in parse(text, resolve).groups]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("my photos of cat", [["cat"]]),
        ("Show me pictures of cats!", [["cat"]]),
        ("a dog on the beach", [["dog", "beach"]]),
        ("people in the snow", [["snow"]]),  # "people" is not KNOWN here: reported, see below
        ("dog, beach", [["dog", "beach"]]),
        ("cat or dog", [["cat"], ["dog"]]),
        ("dog beach or cat", [["dog", "beach"], ["cat"]]),
        ("the dog's photos", [["dog"]]),
    ],
)
def test_filler_is_dropped_and_concepts_combine(text: str, expected: list[list[str]]) -> None:
    assert groups(text) == expected


def test_multi_word_concepts_are_matched_longest_first() -> None:
    assert groups("a hot dog on the beach") == [["hot dog", "beach"]], "not 'dog'"
    assert groups("stop signs") == [["stop sign"]]
    assert groups("my golden retriever and a cat") == [["golden retriever", "cat"]]
    assert groups("hen of the woods") == [["hen of the woods"]], "filler inside a name stays"


def test_a_concept_never_spans_a_separator() -> None:
    assert groups("hot, dog") == [["dog"]] and parse("hot, dog", resolve).unknown == ["hot"]


def test_unknown_words_are_reported_and_the_rest_still_answers() -> None:
    query = parse("a fluffy cat on a sunny beach", resolve)
    assert [[t.text for t in g] for g in query.groups] == [["cat", "beach"]]
    assert query.unknown == ["fluffy", "sunny"]
    assert "photos" in parse("photos of xyzzy", resolve).ignored
    nothing = parse("xyzzy plugh", resolve)
    assert not nothing.understood and nothing.unknown == ["xyzzy", "plugh"]


def test_a_repeated_concept_counts_once() -> None:
    assert groups("cat cats") == [["cat"]]


def test_words_keep_hyphens_and_apostrophes_inside_names() -> None:
    assert words_of("Jack-o'-lantern, +dog") == ["jack-o'-lantern", ",", "+", "dog"]


def test_too_long_queries_are_a_usage_error_with_the_limit() -> None:
    with pytest.raises(UsageError, match=f"at most {MAX_QUERY_WORDS}"):
        parse(" ".join(["cat"] * (MAX_QUERY_WORDS + 1)), resolve)
    with pytest.raises(UsageError, match=f"at most {MAX_QUERY_CHARS}"):
        parse("c" * 10_000, resolve)
    assert groups(" ".join(["cat"] * MAX_QUERY_WORDS)) == [["cat"]], "at the limit it still answers"


def test_a_container_of_something_means_the_something() -> None:
    containers = {"cup"}
    KNOWN.update({"cup", "coffee"})
    try:
        query = parse("a cup of coffee", resolve, holds=lambda t: t.text in containers)
        assert [[t.text for t in g] for g in query.groups] == [["coffee"]] and "cup" in query.ignored
        assert groups("a cup and coffee") == [["cup", "coffee"]], "only 'of' reads it so"
        assert groups("cup of coffee") == [["cup", "coffee"]], "without `holds` both stay"
    finally:
        KNOWN.difference_update({"cup", "coffee"})


def test_accents_are_folded_and_a_query_of_filler_understands_nothing() -> None:
    KNOWN.add("cafe")
    try:
        assert groups("Café") == [["cafe"]]
    finally:
        KNOWN.discard("cafe")
    only_filler = parse("photos of the", resolve)
    assert not only_filler.understood and only_filler.unknown == []


def test_a_word_that_means_nothing_is_searched_as_its_clear_correction() -> None:
    asked: list[str] = []

    def correct(phrase: str) -> str | None:
        asked.append(phrase)
        return {"dgo": "dog", "hot dgo": "hot dog"}.get(phrase)

    query = parse("a dgo on the beach", resolve, correct=correct)
    assert [[t.text for t in g] for g in query.groups] == [["dog", "beach"]]
    assert query.corrected == [("dgo", "dog")] and query.unknown == []
    assert "beach" not in asked  # a word that means something is never corrected
    # the longest run is corrected first: "hot dgo" is one concept, not "hot" and "dog"
    assert [t.text for t in parse("hot dgo", resolve, correct=correct).terms] == ["hot dog"]
    # no clear correction: the word is reported as unknown, as without the hook
    query = parse("xqzv cat", resolve, correct=correct)
    assert query.unknown == ["xqzv"] and query.corrected == []


def test_a_name_of_several_words_is_one_concept_even_when_nothing_is_indexed_by_it() -> None:
    def is_name(phrase: str) -> bool:
        return phrase in ("spring rolls", "cat food")

    query = parse("spring rolls", resolve, is_name=is_name)
    assert query.groups == [] and query.unknown == ["spring rolls"]  # not spring AND roll(s)
    query = parse("cat food or dog", resolve, is_name=is_name)
    assert [[t.text for t in g] for g in query.groups] == [["dog"]] and query.unknown == ["cat food"]
    # a name that resolves is taken as before; single words are never asked
    assert [t.text for t in parse("hot dog", resolve, is_name=lambda p: True).terms] == ["hot dog"]


@pytest.mark.parametrize(
    "text", ["close-up of a dog", "closeup dog", "dog close up", "up close dogs", "close-ups of my dog"]
)
def test_close_up_is_an_order_not_a_concept(text: str) -> None:
    query = parse(text, resolve)
    assert query.close_up
    assert [t.text for t in query.terms] == ["dog"] and not query.unknown


def test_close_alone_is_not_close_up() -> None:
    query = parse("dog close to the sea", resolve)
    assert not query.close_up

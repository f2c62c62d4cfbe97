"""How the text read in photos is matched to what someone typed (pure: no index, no networks)."""

from __future__ import annotations

import sqlite3

import pytest

from pixelsift.core.sqlite import run_script
from pixelsift.library import textmatch
from pixelsift.library.rows import TextHit


def line(photo_id: int, text: str, size: float = 0.1, score: float = 1.0) -> TextHit:
    norm = textmatch.normalize(text)
    return TextHit(photo_id, photo_id * 100 + len(text), text, norm, score, size, (0, 0, 10, 10))


def test_normalize_drops_case_accents_and_extra_spaces() -> None:
    assert textmatch.normalize("  Café\tZÜRICH  ") == "cafe zurich"
    assert textmatch.words("wi-fi: re16/tgk") == ["wi", "fi", "re16", "tgk"]


@pytest.mark.parametrize(
    ("query", "word", "quality"),
    [
        ("re16", "re16", textmatch.EXACT),
        ("re16", "re16tgk", textmatch.PREFIX),
        ("flower", "sunflower42", textmatch.INSIDE),
        ("pasword", "password", textmatch.ONE_EDIT),
        ("birthdya", "birthday", textmatch.TWO_EDITS),  # a swap is two edits; forgiven from 8 letters
        ("cat", "cot", 0.0),  # under 4 letters: no misspelling forgiven
        ("zebra", "password", 0.0),
    ],
)
def test_word_quality_follows_the_table(query: str, word: str, quality: float) -> None:
    assert textmatch.word_quality(query, word, fuzzy=True) == quality


def test_whole_words_only_for_a_plain_query() -> None:
    assert textmatch.word_quality("cat", "catalogue", fuzzy=False, parts=False) == 0.0
    assert textmatch.word_quality("cat", "cat", fuzzy=False, parts=False) == textmatch.EXACT
    assert textmatch.content_words("my photos of happy birthday") == ["happy", "birthday"]


def test_every_word_must_be_found_and_a_phrase_beats_scattered_words() -> None:
    lines = [line(1, "Happy Birthday"), line(2, "Birthday"), line(2, "so happy"), line(3, "Happy Easter")]
    found = textmatch.match_photos(["happy", "birthday"], lines)
    assert set(found) == {1, 2}  # photo 3 lacks "birthday"
    assert found[1].score > found[2].score
    assert found[1].words == ("happy", "birthday")


def test_big_letters_and_sure_readings_rank_first() -> None:
    big, small, unsure = line(1, "Open", size=0.1), line(2, "Open", size=0.01), line(3, "Open", score=0.8)
    found = textmatch.match_photos(["open"], [big, small, unsure])
    assert found[1].score > found[3].score and found[1].score > found[2].score


def test_fragments_add_the_librarys_words_within_reach_of_a_misspelling() -> None:
    vocabulary = {"password", "passport", "sunflower42", "birthday"}
    assert textmatch.fragments(["pasword"], vocabulary) == {"pasword", "password"}
    assert textmatch.fragments(["pasword"], vocabulary, fuzzy=False) == {"pasword"}


def test_run_script_keeps_a_triggers_body_whole() -> None:
    conn = sqlite3.connect(":memory:")
    run_script(
        conn,
        """
        CREATE TABLE a (x TEXT);
        CREATE TABLE log (x TEXT);
        CREATE TRIGGER a_added AFTER INSERT ON a BEGIN
            INSERT INTO log (x) VALUES (new.x || ';');
        END;
        INSERT INTO a (x) VALUES ('one; two');
        """,
    )
    assert conn.execute("SELECT x FROM log").fetchall() == [("one; two;",)]

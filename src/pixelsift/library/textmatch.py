"""How well the text read in a photo matches what someone typed (`search --text`, and the text part
of a plain query). Pure: the store finds the candidate lines, this scores them.

Text is compared normalised (`normalize`: lower case, accents removed, spaces collapsed), so "CAFÉ"
matches "cafe". For each word of the query, the best of the photo's words counts:

| the photo's word ...                            | quality |
|-------------------------------------------------|---------|
| is the query word                               | 1.0     |
| starts with it ("RE16" in "RE16TGK")            | 0.9     |
| contains it ("birthday" in "happybirthday")     | 0.85    |
| is one edit away (a misspelling, `--text` only) | 0.75    |
| is two edits away (words of 8 letters or more)  | 0.6     |

The photo's match is the mean over the query's words, and only when every word is found somewhere;
all of them in one line, in order, is a phrase and counts in full, else 10% less. The line that
matched scales it by how prominent it is (large letters count more than small print, up to 25%) and
by the recogniser's confidence (up to 10%).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pixelsift.library.query import AND_WORDS, FILLER, fold
from pixelsift.library.rows import TextHit

_WORD = re.compile(r"\w+")

EXACT, PREFIX, INSIDE = 1.0, 0.9, 0.85
ONE_EDIT, TWO_EDITS = 0.75, 0.6
NOT_A_PHRASE = 0.9  # every word found, but not together in one line
BIG_LETTERS = 0.08  # letters this tall (a fraction of the photo's height) or taller are fully prominent


def normalize(text: str) -> str:
    """ "  Café  ZÜRICH " -> "cafe zurich": what the index stores and search compares.

    >>> normalize("  Café  ZÜRICH ")
    'cafe zurich'
    """
    return " ".join(fold(text).split())


def words(text: str) -> list[str]:
    """The words of normalised text (letters and digits; punctuation separates)."""
    return _WORD.findall(text)


def max_edits(word: str) -> int:
    """Misspellings forgiven in a query word: none under 4 letters, one up to 7, two from 8."""
    return 0 if len(word) < 4 else 1 if len(word) < 8 else 2


def content_words(query: str) -> list[str]:
    """The words of a plain query that text in a photo would show: "my photos of happy birthday" ->
    ["happy", "birthday"] (filler and "and"-words left out)."""
    return [w for w in words(normalize(query)) if w not in FILLER and w not in AND_WORDS]


def _edits(a: str, b: str, limit: int) -> int:
    """Levenshtein distance of a and b, or limit + 1 once it is over `limit`."""
    from rapidfuzz.distance import Levenshtein  # a dependency of the library's query corrections

    return int(Levenshtein.distance(a, b, score_cutoff=limit))


def word_quality(query_word: str, word: str, fuzzy: bool, parts: bool = True) -> float:
    """How well one word of the photo matches one query word (the module's table); 0 for no match.
    `parts=False`: whole words only (and no misspellings): the text part of a plain query, where
    "cat" must not find "catalogue"."""
    if word == query_word:
        return EXACT
    if not parts:
        return 0.0
    if len(query_word) >= 2 and word.startswith(query_word):
        return PREFIX
    if len(query_word) >= 3 and query_word in word:
        return INSIDE
    limit = max_edits(query_word) if fuzzy else 0
    if limit and abs(len(word) - len(query_word)) <= limit:
        distance = _edits(query_word, word, limit)
        if distance <= limit:
            return ONE_EDIT if distance == 1 else TWO_EDITS
    return 0.0


@dataclass(frozen=True)
class TextMatch:
    """A photo whose text matches: its score (0-1), the line that matched best and its words that did."""

    photo_id: int
    score: float
    line: TextHit
    words: tuple[str, ...]
    quality: float  # before prominence and confidence


def fragments(query_words: Sequence[str], vocabulary: Iterable[str] = (), fuzzy: bool = True) -> set[str]:
    """What to look up in the store's trigram index for these query words: the words themselves (as
    parts of lines) and, for misspellings, the library's words within `max_edits` of them."""
    wanted = set(query_words)
    near = [w for w in query_words if max_edits(w)] if fuzzy else []
    if near:
        from rapidfuzz import process
        from rapidfuzz.distance import Levenshtein

        known = list(vocabulary)
        for w in near:
            found = process.extract(
                w, known, scorer=Levenshtein.distance, score_cutoff=max_edits(w), limit=None
            )
            wanted.update(str(match) for match, _, _ in found)
    return wanted


def _in_order(query_words: Sequence[str], line_words: Sequence[str], fuzzy: bool, parts: bool) -> bool:
    """Whether the query's words follow each other in the line (each matching the next word)."""
    n = len(query_words)
    for start in range(len(line_words) - n + 1):
        if all(word_quality(q, line_words[start + k], fuzzy, parts) > 0 for k, q in enumerate(query_words)):
            return True
    return False


def match_photos(
    query_words: Sequence[str], lines: Iterable[TextHit], fuzzy: bool = True, parts: bool = True
) -> dict[int, TextMatch]:
    """photo id -> its match, for the photos whose lines show every query word (module docstring).
    `fuzzy`: misspellings count; `parts`: parts of words count (`word_quality`)."""
    if not query_words:
        return {}
    by_photo: dict[int, list[TextHit]] = {}
    for line in lines:
        by_photo.setdefault(line.photo_id, []).append(line)
    out: dict[int, TextMatch] = {}
    for photo_id, photo_lines in by_photo.items():
        best: TextMatch | None = None
        split = [(line, words(line.norm)) for line in photo_lines]
        photo_best = [0.0] * len(query_words)
        for line, line_words in split:
            per_word = [
                max((word_quality(q, w, fuzzy, parts) for w in line_words), default=0.0) for q in query_words
            ]
            photo_best = [max(a, b) for a, b in zip(photo_best, per_word, strict=True)]
            found = sum(1 for q in per_word if q > 0)
            if not found:
                continue
            quality = sum(per_word) / len(query_words)
            if found < len(query_words) or not _in_order(query_words, line_words, fuzzy, parts):
                quality *= NOT_A_PHRASE
            prominence = min(1.0, line.size / BIG_LETTERS)
            score = quality * (0.75 + 0.25 * prominence) * (0.9 + 0.1 * line.score)
            matched = tuple(
                w for w in line_words if any(word_quality(q, w, fuzzy, parts) > 0 for q in query_words)
            )
            if best is None or score > best.score:
                best = TextMatch(photo_id, score, line, matched, quality)
        if best is not None and min(photo_best) > 0:  # every query word is somewhere in the photo
            if best.quality < sum(photo_best) / len(query_words) * NOT_A_PHRASE:
                # the words are spread over lines: the photo's own best per word, not quite a phrase
                spread = sum(photo_best) / len(query_words) * NOT_A_PHRASE
                factor = best.score / best.quality if best.quality else 1.0
                best = TextMatch(photo_id, spread * factor, best.line, best.words, spread)
            out[photo_id] = best
    return out

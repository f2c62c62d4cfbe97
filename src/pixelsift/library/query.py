"""Understanding a search query the way people type it: "my photos of cat", "a dog on the beach",
"people in the snow", "cat or dog", "stop signs".

1. The text is split into words; filler ("my", "photos of", "show me", "a", "the") is dropped;
   linking words ("and", "with", "on", "in", ",") separate concepts, "or" separates alternatives.
2. Concepts are matched longest first, up to `MAX_PHRASE_WORDS` words ("golden retriever", "hot dog",
   "stop sign" before "dog" or "sign"), by a `resolve` function the searcher gives (WordNet, the
   library's own labels and detected classes).
3. A word that matches nothing is reported (`Query.unknown`); the rest of the query still answers.
4. "close-up" ("closeup", "close up", "up close") is not a concept but an order: the photos the main
   concept fills most come first (`Query.close_up`).

The result is an OR of ANDs: "dog beach or cat" = (dog AND beach) OR cat. Nothing here touches the
index; `library.search` scores the photos.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field

from pixelsift.errors import UsageError
from pixelsift.library.rows import Term

MAX_QUERY_WORDS = 32  # a longer query is an error: it is not a search people type
MAX_QUERY_CHARS = 400
MAX_PHRASE_WORDS = 4  # the longest concept name tried ("jack-o'-lantern" is one word, "hen of the woods" 4)

# Words that carry no concept of their own in a photo search ("a group of people" is people).
FILLER = frozenset(
    {
        "a",
        "an",
        "the",
        "my",
        "our",
        "your",
        "his",
        "her",
        "their",
        "its",
        "some",
        "any",
        "all",
        "every",
        "each",
        "me",
        "i",
        "we",
        "us",
        "you",
        "show",
        "find",
        "get",
        "give",
        "see",
        "search",
        "look",
        "looking",
        "want",
        "need",
        "display",
        "list",
        "photo",
        "photos",
        "photograph",
        "photographs",
        "picture",
        "pictures",
        "pic",
        "pics",
        "image",
        "images",
        "shot",
        "shots",
        "snapshot",
        "snapshots",
        "selfie",
        "selfies",
        "of",
        "that",
        "which",
        "who",
        "whose",
        "where",
        "there",
        "here",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "has",
        "have",
        "had",
        "having",
        "contain",
        "contains",
        "containing",
        "featuring",
        "feature",
        "features",
        "showing",
        "shows",
        "shown",
        "taken",
        "from",
        "this",
        "these",
        "those",
        "what",
        "please",
        "just",
        "only",
        "bunch",
        "group",
        "pair",
        "piece",
        "slice",
        "pile",
        "stack",
        "heap",
        "crowd",
        "herd",
        "flock",
        "lot",
        "couple",
        "handful",
    }
)
AND_WORDS = frozenset(
    [
        "and",
        "with",
        "on",
        "in",
        "at",
        "near",
        "by",
        "beside",
        "under",
        "over",
        "plus",
        "inside",
        "behind",
        "next",
        "to",
        "into",
        "onto",
        ",",
        "+",
        "&",
        ";",
        "/",
    ]
)
OR_WORDS = frozenset({"or", "|"})
CLOSE_UP = frozenset({"close-up", "close-ups", "closeup", "closeups"})
CLOSE_UP_PAIRS = frozenset({("close", "up"), ("close", "ups"), ("up", "close")})
_TOKEN = re.compile(r"[,+&;/|]|[^\s,+&;/|]+")


@dataclass
class Query:
    """A query as understood: alternatives (OR) of concept lists (AND), and what was left out."""

    text: str
    groups: list[list[Term]] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)  # words that matched nothing
    ignored: list[str] = field(default_factory=list)  # filler dropped on purpose
    corrected: list[tuple[str, str]] = field(default_factory=list)  # (typed, searched): "piza" -> "pizza"
    close_up: bool = False  # "close-up of a dog": the photos the dog fills most first

    @property
    def terms(self) -> list[Term]:
        """Every concept of the query once, in order."""
        seen: dict[str, Term] = {}
        for group in self.groups:
            for term in group:
                seen.setdefault(term.text, term)
        return list(seen.values())

    @property
    def understood(self) -> bool:
        return bool(self.groups)

    def describe(self) -> str:
        """ "dog AND beach (related: shore) OR cat" """
        return " OR ".join(" AND ".join(t.describe() for t in group) for group in self.groups)


def fold(text: str) -> str:
    """Lower case, accents dropped ("Café" -> "cafe"): WordNet's nouns are plain ASCII."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def words_of(text: str) -> list[str]:
    """The query's words and separators, lower case without accents; a possessive "'s" is dropped
    ("dog's" -> "dog")."""
    tokens = []
    for token in _TOKEN.findall(fold(text).replace("_", " ")):
        token = token.strip('.!?"()[]{}:')
        token = re.sub(r"'s$", "", token)
        if token:
            tokens.append(token)
    return tokens


def check_length(text: str) -> None:
    """A UsageError (exit 2, HTTP 400) for a query longer than any search people type."""
    if len(text) > MAX_QUERY_CHARS:
        raise UsageError(
            f"the query is {len(text):,} characters long; a search takes at most {MAX_QUERY_CHARS} "
            f'characters and {MAX_QUERY_WORDS} words: name what the photos show ("dog on the beach")'
        )
    words = [w for w in words_of(text) if w not in AND_WORDS and w not in OR_WORDS]
    if len(words) > MAX_QUERY_WORDS:
        raise UsageError(
            f"the query has {len(words)} words; a search takes at most {MAX_QUERY_WORDS}: name what the "
            'photos show ("dog on the beach")'
        )


def _without_close_up(tokens: list[str]) -> tuple[list[str], bool]:
    """The words without "close-up" (in any of its spellings), and whether it was there."""
    kept: list[str] = []
    found = False
    i = 0
    while i < len(tokens):
        if tokens[i] in CLOSE_UP:
            found, i = True, i + 1
        elif i + 1 < len(tokens) and (tokens[i], tokens[i + 1]) in CLOSE_UP_PAIRS:
            found, i = True, i + 2
        else:
            kept.append(tokens[i])
            i += 1
    return kept, found


def parse(
    text: str,
    resolve: Callable[[str], Term | None],
    holds: Callable[[Term], bool] | None = None,
    correct: Callable[[str], str | None] | None = None,
    is_name: Callable[[str], bool] | None = None,
) -> Query:
    """The query as concepts. `resolve(phrase)` gives the Term a phrase means, or None; `holds(term)`
    says whether a concept is a container ("cup"), so that "a cup of coffee" means coffee: a photo of
    coffee shows its cup, and the classifier calls it espresso, not cup. `correct(word)` gives the one
    known word a word that means nothing is clearly a misspelling of ("piza" -> "pizza"), or None.
    `is_name(phrase)` says whether several words are one name of the language ("spring rolls", "french
    fries"): such a name is one concept, reported unknown when nothing in photos is indexed by it, and
    never split into words that mean something else (spring AND roll)."""
    check_length(text)
    query = Query(text)
    tokens, query.close_up = _without_close_up(words_of(text))
    group: list[Term] = []
    before_of: Term | None = None  # the concept just before an "of" ("cup" in "a cup of coffee")
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token == "of" and group and i > 0 and tokens[i - 1] not in FILLER | AND_WORDS:
            before_of = group[-1]
        if token in OR_WORDS:
            if group:
                query.groups.append(group)
            group = []
            i += 1
            continue
        if token in AND_WORDS:
            i += 1
            continue
        # the run of words up to the next separator: a concept never spans one
        end = i
        while end < len(tokens) and end - i < MAX_PHRASE_WORDS and tokens[end] not in OR_WORDS:
            if end > i and tokens[end] in (",", "+", "&", ";", "/"):
                break
            end += 1
        for n in range(end - i, 0, -1):
            phrase = " ".join(tokens[i : i + n])
            if n == 1 and token in FILLER:
                query.ignored.append(token)
                i += 1
                break
            if n > 1 and (tokens[i] in FILLER or tokens[i + n - 1] in FILLER | AND_WORDS):
                continue  # "the dog" is "dog"; a name never starts or ends with filler
            term = resolve(phrase)
            if term is None and n > 1 and is_name is not None and is_name(phrase):
                query.unknown.append(phrase)
                i += n
                break
            if term is not None:
                if before_of in group and holds is not None and holds(before_of):
                    group.remove(before_of)  # "a cup of coffee": coffee
                    query.ignored.append(before_of.text)
                before_of = None
                if all(t.text != term.text for t in group):
                    group.append(term)
                i += n
                break
        else:
            # nothing known starts here: the longest run that is clearly a misspelling of something known
            # ("moter scooter" is motor scooter, not mote and scooter)
            fix = correct or (lambda phrase: None)
            for n in range(end - i, 0, -1):
                if tokens[i] in FILLER or tokens[i + n - 1] in FILLER | AND_WORDS:
                    continue
                phrase = " ".join(tokens[i : i + n])
                fixed = fix(phrase)
                term = resolve(fixed) if fixed is not None else None
                if term is not None and fixed is not None:
                    query.corrected.append((phrase, fixed))
                    if all(t.text != term.text for t in group):
                        group.append(term)
                    i += n
                    break
            else:
                query.unknown.append(token)
                i += 1
    if group:
        query.groups.append(group)
    query.unknown = list(dict.fromkeys(query.unknown))
    return query

"""What a search word means: WordNet 3.0's noun hierarchy over ImageNet's and COCO's classes.

ImageNet-1k's classes are WordNet noun synsets, so a word names a set of classes: "cat" is the synset
`cat, true cat`, whose descendants are tabby, tiger cat, Persian, Siamese, Egyptian cat, cougar and
lynx; "dog" reaches all 118 breeds; "vehicle" every car, boat and plane. COCO's detection classes are
mapped to synsets the same way, so "animal" also finds photos where a detector saw a dog.

The table (`data/imagenet_wordnet.json`) is built by `tools/build_wordnet_table.py`; nothing here needs
WordNet installed.

    >>> vocab = Vocabulary.load()
    >>> meaning = vocab.lookup("cats")
    >>> sorted(vocab.imagenet_weights(meaning))[:5]          # class indices, best sense weighted 1.0
    [281, 282, 283, 284, 285]
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

TABLE = "imagenet_wordnet.json"

# WordNet's "morphy" detachment rules for nouns, tried in order after its exception list.
_NOUN_SUFFIXES: tuple[tuple[str, str], ...] = (
    ("ses", "s"),
    ("xes", "x"),
    ("zes", "z"),
    ("ches", "ch"),
    ("shes", "sh"),
    ("men", "man"),
    ("ies", "y"),
    ("s", ""),
)


def normalise(text: str) -> str:
    """Lower case, '_' as space, single spaces: the form words are looked up in."""
    return re.sub(r"\s+", " ", text.replace("_", " ")).strip().lower()


def base_forms(word: str) -> list[str]:
    """`word` and the singular forms WordNet's noun rules allow, most literal first ("boxes" -> "boxe",
    "box"...). For a phrase only the last word is inflected ("stop signs" -> "stop sign")."""
    word = normalise(word)
    head, _, last = word.rpartition(" ")
    prefix = head + " " if head else ""
    forms = [word]
    for suffix, replacement in _NOUN_SUFFIXES:
        if last.endswith(suffix) and len(last) > len(suffix):
            forms.append(prefix + last[: -len(suffix)] + replacement)
    return list(dict.fromkeys(forms))


@dataclass(frozen=True)
class Meaning:
    """A word resolved to WordNet synsets with weights (1.0 for its first sense, less for later ones)."""

    word: str  # the form found in the vocabulary ("cat" for "cats")
    synsets: tuple[tuple[str, float], ...]


class Vocabulary:
    """The word -> synset -> class lookups of the derived WordNet table."""

    def __init__(self, table: dict):
        self.imagenet: list[str] = table["imagenet"]
        self.coco: dict[str, str] = table["coco"]
        self.synsets: dict[str, dict] = table["synsets"]
        self.words: dict[str, list[list]] = table["words"]
        self.irregular: dict[str, str] = table["irregular_plurals"]
        self.ancestors: dict[str, list[str]] = {}
        for concept in {*self.imagenet, *self.coco.values()}:
            self.ancestors[concept] = self._ancestors(concept)
        # synset -> the concepts at or below it
        self.covers: dict[str, set[str]] = {}
        for concept, ancestors in self.ancestors.items():
            for synset in (concept, *ancestors):
                self.covers.setdefault(synset, set()).add(concept)

    @classmethod
    def load(cls) -> Vocabulary:
        return _load()

    def _ancestors(self, synset: str) -> list[str]:
        found: list[str] = []
        frontier = list(self.synsets[synset]["parents"])
        while frontier:
            nxt: list[str] = []
            for s in frontier:
                if s not in found:
                    found.append(s)
                    nxt.extend(self.synsets[s]["parents"])
            frontier = nxt
        return found

    def names(self, synset: str) -> list[str]:
        return list(self.synsets[synset]["names"])

    def lookup(self, text: str) -> Meaning | None:
        """The meaning of a word or phrase ("cats", "Golden Retrievers", "stop sign"), or None."""
        word = normalise(text)
        candidates = [self.irregular.get(word, word), *base_forms(word)]
        for form in dict.fromkeys(candidates):
            for variant in (form, form.replace("-", " "), form.replace(" ", "-")):
                entry = self.words.get(variant)
                if entry:
                    return Meaning(variant, tuple((s, float(w)) for s, w, *_ in entry))
        return None

    def concept_weights(self, meaning: Meaning) -> dict[str, float]:
        """Every concept synset (ImageNet class or COCO class) the meaning covers, with its weight."""
        weights: dict[str, float] = {}
        for synset, weight in meaning.synsets:
            for concept in self.covers.get(synset, ()):
                weights[concept] = max(weights.get(concept, 0.0), weight)
        return weights

    def imagenet_weights(self, meaning: Meaning) -> dict[int, float]:
        """ImageNet class index -> weight, for the classes the meaning covers."""
        weights = self.concept_weights(meaning)
        return {i: weights[w] for i, w in enumerate(self.imagenet) if w in weights}

    def coco_weights(self, meaning: Meaning) -> dict[str, float]:
        """COCO class name -> weight, for the detection classes the meaning covers."""
        weights = self.concept_weights(meaning)
        return {name: weights[s] for name, s in self.coco.items() if s in weights}

    def imagenet_wnid(self, index: int) -> str:
        return self.imagenet[index]


@cache
def _load() -> Vocabulary:
    text = resources.files("pixelsift").joinpath("data", TABLE).read_text(encoding="utf-8")
    return Vocabulary(json.loads(text))

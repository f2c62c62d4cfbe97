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

import gzip
import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

TABLE = "imagenet_wordnet.json"
ANCHORS = "wordnet_anchors.json.gz"

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


WORD, RELATED = "word", "related"  # how a meaning was found (see `Meaning.how`)
# A word reaches the detector class above it ("motorbike", WordNet's minibike, is a motorcycle to a
# COCO detector; "dalmatian" a dog) at most this many hypernym steps up, and only as far as the
# classifier confirms the word's own classes in the photo (`library.fusion`): a "dog" box is a
# dalmatian when the classifier sees a dalmatian, not when it sees a beagle.
MAX_DETECTOR_STEPS = 4  # "golden retriever" -> retriever -> sporting dog -> hunting dog -> dog


@dataclass(frozen=True)
class Meaning:
    """A word resolved to WordNet synsets with weights (1.0 for its first sense, less for later ones).

    `how`: "word" (the word names these synsets or their ancestors: "cat", "dogs", "animal") or
    "related" (it names no class, but WordNet puts these beside it: "beach" -> shore, "football" ->
    ball). A kind of thing the table has no class for ("helicopter", "astronaut") means nothing: its
    hypernym covers other things (every airplane, every person), and searching it would list them."""

    word: str  # the form found in the vocabulary ("cat" for "cats")
    synsets: tuple[tuple[str, float], ...]
    how: str = WORD


class Vocabulary:
    """The word -> synset -> class lookups of the derived WordNet table."""

    def __init__(self, table: dict):
        self.imagenet: list[str] = table["imagenet"]
        self.coco: dict[str, str] = table["coco"]
        self.synsets: dict[str, dict] = table["synsets"]
        self.words: dict[str, list[list]] = table["words"]
        self.irregular: dict[str, str] = table["irregular_plurals"]
        self.related: dict[str, list[list]] = table.get("related", {})
        self.coco_coverage: dict[str, list[int]] = table.get("coco_coverage", {})
        self.scene: dict[str, list[list]] = table.get("scene", {})
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

    def forms(self, text: str) -> list[str]:
        """The forms a word or phrase is looked up in: as typed, singular, with and without hyphens."""
        word = normalise(text)
        forms = dict.fromkeys([self.irregular.get(word, word), *base_forms(word)])
        return list(dict.fromkeys(v for f in forms for v in (f, f.replace("-", " "), f.replace(" ", "-"))))

    def lookup(self, text: str, related: bool = False) -> Meaning | None:
        """The meaning of a word or phrase ("cats", "Golden Retrievers", "stop sign"), or None.

        `related`: also words that name no class but sit beside some ("beach", "snow", "kitchen") or
        are done with some ("football", "skiing")."""
        forms = self.forms(text)
        for form in forms:
            entry = self.words.get(form)
            if entry:
                return Meaning(form, tuple((s, float(w)) for s, w, *_ in entry))
        if not related:
            return None
        for form in forms:
            entry = self.related.get(form)
            if entry:
                return Meaning(form, tuple((s, float(w)) for s, w in entry), RELATED)
        return None

    def scene_regions(self, text: str) -> dict[str, float]:
        """The scene regions (`imaging.scene`: sky, grass, tree, road) a word that names no class reaches,
        with weights: 1 for the region or a kind of it ("street": road), less for a place WordNet
        defines by it ("lawn": grass 0.8); {} for any other word."""
        for form in self.forms(text):
            entry = self.scene.get(form)
            if entry:
                return {str(region): float(weight) for region, weight in entry}
        return {}

    def label_synsets(self, name: str) -> set[str]:
        """The synsets a custom class name ("chocolate_cake", "Golden retrievers") stands for and all
        their ancestors in the table: what a broader word must cover to find that label."""
        meaning = self.lookup(name)
        if meaning is not None:
            direct = [s for s, w in meaning.synsets if w >= 1.0]
        else:
            direct = next((list(anchors()[f][1:]) for f in self.forms(name) if f in anchors()), [])
        found = set(direct)
        for synset in direct:
            found.update(self.ancestors.get(synset) or self._ancestors(synset))
        return found

    def known_to_classifier(self, coco_name: str) -> bool:
        """Whether ImageNet has classes for a good share of what this COCO class covers (dogs, cats,
        birds, cars, zebras: yes; people, horses, cows: no), so that the classifier can confirm or
        contradict a detection of it. Rule: ImageNet has classes for at least 5% of its kinds in WordNet."""
        classes, kinds = self.coco_coverage.get(coco_name, (0, 1))
        return classes >= 1 and classes >= 0.05 * kinds

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

    def coco_above(self, meaning: Meaning) -> dict[str, float]:
        """COCO class name -> weight, for the detection class just above each sense of a word that no
        detection class covers ("motorbike": motorcycle; "dalmatian": dog), at most
        `MAX_DETECTOR_STEPS` up. Such a detection stands for the word only where the classifier
        confirms the word's own classes (`library.fusion.Fusion.score`); a related word reaches none."""
        if meaning.how != WORD:
            return {}
        by_synset = {s: name for name, s in self.coco.items()}
        found: dict[str, float] = {}
        for synset, weight in meaning.synsets:
            if any(c in by_synset for c in self.covers.get(synset, ())):
                continue  # a detection class at or below the sense: `coco_weights` has it
            frontier = list(self.synsets.get(synset, {}).get("parents", []))
            for _ in range(MAX_DETECTOR_STEPS):
                names = [by_synset[s] for s in frontier if s in by_synset]
                if names:
                    for name in names:
                        found[name] = max(found.get(name, 0.0), weight)
                    break
                frontier = [p for s in frontier for p in self.synsets.get(s, {}).get("parents", [])]
        return found

    def imagenet_wnid(self, index: int) -> str:
        return self.imagenet[index]


@cache
def _load() -> Vocabulary:
    text = resources.files("pixelsift").joinpath("data", TABLE).read_text(encoding="utf-8")
    return Vocabulary(json.loads(text))


@cache
def anchors() -> dict[str, list]:
    """noun -> [hypernym steps, the nearest synsets of the table above it] (read on first use: 50,000
    nouns)."""
    data = resources.files("pixelsift").joinpath("data", ANCHORS).read_bytes()
    return dict(json.loads(gzip.decompress(data)))


ENGLISH_MIN_COUNT = 20  # pyspellchecker's word counts: real words have hundreds and more, typos none


@cache
def _english() -> object:
    # pyspellchecker: an English word-frequency list (MIT, 160,000 words) in the wheel, offline; read on
    # the first query word that names nothing (0.3 s)
    from spellchecker import SpellChecker

    return SpellChecker(language="en", distance=1)


def is_english_word(word: str) -> bool:
    """True for a word of English ("fluffy", "smiling", "beech"), whether or not photos are indexed by
    it: such a word is never taken for a misspelling of another."""
    frequency = _english().word_frequency  # type: ignore[attr-defined]
    return all(frequency[part] >= ENGLISH_MIN_COUNT for part in normalise(word).split())

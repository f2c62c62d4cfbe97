"""Build `src/pixelsift/data/imagenet_wordnet.json`: the slice of WordNet 3.0 that photo search needs.

    apt-get install wordnet-base              # WordNet 3.0 database files in /usr/share/wordnet
    python tools/build_wordnet_table.py [--wordnet /usr/share/wordnet] [--out src/pixelsift/data/...]

ImageNet-1k's classes are WordNet 3.0 noun synsets (timm ships their ids in class order), and each COCO
detection class is mapped here by hand to the synset it names. The table holds, for those "concepts":
  - `imagenet`: the synset id of each of the 1000 classes, in class order;
  - `coco`: COCO class name -> synset id;
  - `synsets`: every concept synset and all its hypernym ancestors, with their lemma names and their
    direct hypernyms (`parents`), so that "dog" reaches every breed;
  - `words`: every WordNet noun that names a concept or an ancestor (synonyms included), with the
    synsets it means and a weight: 1 for its most frequent sense, 0.5 for later ones ("cat" is first a
    house cat or a wildcat, then a big cat); a few everyday words that WordNet files away from their kind
    are added by hand (`ALIASES`: "kitten" is a "young mammal" in WordNet; a kitten is a cat);
  - `irregular_plurals`: WordNet's noun exception list for those words ("geese" -> "goose");
  - `coco_coverage`: per COCO class, [ImageNet classes among its kinds, its kinds in WordNet]: how much
    of what a detector calls "bird" or "person" the classifier has classes for;
  - `related`: words that name no concept, with the concepts WordNet puts beside them ("beach" ->
    shore: seashore, lakeside; "snow" -> ski, snowmobile, snowplow), weighted below 1;
  - `scene`: words that name no concept but one of the scene regions pixelsift finds in photos
    (`pixelsift.imaging.scene`: sky, grass, tree, road), with the regions they reach: the region's own
    synset or a kind of it ("street", "highway": road; "pine": tree) at 1, a word whose definition
    names the region ("lawn", "meadow": grass; "forest": tree) at `SCENE_GLOSS_WEIGHT`.
`wordnet_anchors.json.gz` (beside it) links every other noun for a physical thing to the nearest
synsets of the table above it ("chocolate cake" -> cake), for the class names of the user's labelers.
At run time pixelsift reads only these files; no WordNet installation is needed.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "src" / "pixelsift" / "data" / "imagenet_wordnet.json"
ANCHORS = "wordnet_anchors.json.gz"  # written beside OUT

# COCO class name (as detectors report it) -> (WordNet lemma, sense number) of the thing it names
# (COCO "cow" is any cattle: ImageNet calls the same animal "ox"; COCO "cat" is a house cat).
COCO = {
    "person": ("person", 1), "bicycle": ("bicycle", 1), "car": ("car", 1), "motorcycle": ("motorcycle", 1),
    "airplane": ("airplane", 1), "bus": ("bus", 1), "train": ("train", 1), "truck": ("truck", 1),
    "boat": ("boat", 1), "traffic light": ("traffic light", 1), "fire hydrant": ("fire hydrant", 1),
    "stop sign": ("street sign", 1), "parking meter": ("parking meter", 1), "bench": ("bench", 1),
    "bird": ("bird", 1), "cat": ("domestic cat", 1), "dog": ("dog", 1), "horse": ("horse", 1),
    "sheep": ("sheep", 1),
    "cow": ("cattle", 1), "elephant": ("elephant", 1), "bear": ("bear", 1), "zebra": ("zebra", 1),
    "giraffe": ("giraffe", 1), "backpack": ("backpack", 1), "umbrella": ("umbrella", 1),
    "handbag": ("handbag", 1), "tie": ("tie", 1), "suitcase": ("suitcase", 1), "frisbee": ("frisbee", 1),
    "skis": ("ski", 1), "snowboard": ("snowboard", 1), "sports ball": ("ball", 1), "kite": ("kite", 3),
    "baseball bat": ("baseball bat", 1), "baseball glove": ("baseball glove", 1),
    "skateboard": ("skateboard", 1), "surfboard": ("surfboard", 1), "tennis racket": ("tennis racket", 1),
    "bottle": ("bottle", 1), "wine glass": ("wineglass", 1), "cup": ("cup", 1), "fork": ("fork", 1),
    "knife": ("knife", 1), "spoon": ("spoon", 1), "bowl": ("bowl", 1), "banana": ("banana", 2),
    "apple": ("apple", 1), "sandwich": ("sandwich", 1), "orange": ("orange", 1), "broccoli": ("broccoli", 2),
    "carrot": ("carrot", 1), "hot dog": ("hot dog", 2), "pizza": ("pizza", 1), "donut": ("donut", 1),
    "cake": ("cake", 3), "chair": ("chair", 1), "couch": ("couch", 1), "potted plant": ("pot plant", 1),
    "bed": ("bed", 1), "dining table": ("dining table", 1), "toilet": ("toilet", 2), "tv": ("television", 2),
    "laptop": ("laptop", 1), "mouse": ("mouse", 4), "remote": ("remote", 1), "keyboard": ("keyboard", 1),
    "cell phone": ("cellular telephone", 1), "microwave": ("microwave", 2), "oven": ("oven", 1),
    "toaster": ("toaster", 2), "sink": ("sink", 1), "refrigerator": ("refrigerator", 1), "book": ("book", 2),
    "clock": ("clock", 1), "vase": ("vase", 1), "scissors": ("scissors", 1), "teddy bear": ("teddy bear", 1),
    "hair drier": ("hair drier", 1), "toothbrush": ("toothbrush", 1),
}  # fmt: skip

# The scene regions `pixelsift.imaging.scene` finds (its `REGIONS` names) -> the synset each one is.
SCENE = {"sky": ("sky", 1), "grass": ("grass", 1), "tree": ("tree", 1), "road": ("road", 1)}
SCENE_GLOSS_WEIGHT = 0.8  # "lawn: a field of cultivated and mowed grass" is nearly grass
SCENE_MAX_STEPS = 3  # kinds of a region at most this many steps below it ("street": thoroughfare, road)
# a word reaches a region through its definition only when it is a place or a growth of plants ("lawn",
# "meadow", "forest"): not a tool ("scythe"), an animal ("herbivore") or a star ("skyrocket")
SCENE_PLACES = frozenset({"n00027167", "n08436759"})  # location; vegetation, flora

# Everyday words whose own WordNet synset holds no concept: word -> (lemma, sense) to search instead.
# WordNet files the young of animals under "young mammal" / "young bird" rather than under their kind,
# and "man", "woman", "child" under kinds of person that ImageNet has no class for; a photo of a kitten
# is a photo of a cat, and the classifier labels it as one (tabby, Persian ...).
ALIASES = {
    "kitten": ("domestic cat", 1), "kitty": ("domestic cat", 1), "puppy": ("dog", 1), "pup": ("dog", 1),
    "doggy": ("dog", 1), "doggie": ("dog", 1), "calf": ("cattle", 1), "lamb": ("sheep", 1),
    "foal": ("horse", 1), "pony": ("horse", 1), "chick": ("bird", 1), "duckling": ("duck", 1),
    "gosling": ("goose", 1), "cub": ("bear", 1),
    "people": ("person", 1), "human": ("person", 1), "man": ("person", 1), "woman": ("person", 1),
    "child": ("person", 1), "kid": ("person", 1), "boy": ("person", 1), "girl": ("person", 1),
    "baby": ("person", 1), "toddler": ("person", 1),
}  # fmt: skip

# WordNet files buses and trains under "public transport", beside "vehicle" rather than under it; a
# photo search for "vehicle" should find them, so they get vehicles as a second parent.
EXTRA_PARENTS = {("bus", 1): ("motor vehicle", 1), ("train", 1): ("wheeled vehicle", 1)}

SECONDARY_WEIGHT = 0.5  # later senses of a word ("cat" = big cat) count half as much as its first sense

# Words that name no concept ("beach", "snow", "kitchen") are related to the concepts WordNet puts
# beside them: `related` holds, per such word, concept-hierarchy synsets with a weight below 1.
# - neighbours: its holonyms and meronyms that cover at most MAX_NEIGHBOUR_COVER concepts (a beach is
#   part of a shore: seashore, lakeside). Never its hypernyms: those cover other things ("helicopter"
#   is a heavier-than-air craft, and so is every airplane);
# Only nouns whose first sense is a physical thing or place relate this way (not colours or times).
# - mentions: concepts whose definition uses the word ("snow": ski, snowmobile, snowplow; names are
#   left out: a beach wagon is a car); a word in more than MAX_MENTIONS definitions is too generic.
# - uses: a word whose first sense is an activity or a sport ("football", "tennis", "skiing") relates
#   to the concepts its definition names, the things it is played or done with ("...kick or carry or
#   propel the ball": ball), artifacts each covering at most MAX_USE_COVER concepts, weighted below a
#   mention.
NEIGHBOUR_WEIGHT = 0.6
MENTION_WEIGHT = 0.5
USE_WEIGHT = 0.4
MAX_USE_COVER = 16
MAX_USE_SENSE = 3  # a gloss word counts by one of its first four senses ("racket" the bat is its 4th)
# gloss words that name a concept in the table but, in a definition, mostly mean something else or
# nothing a photo shows ("a light racket", "the act of building", "a system of ...")
GLOSS_STOP = frozenset(
    {"work", "system", "creation", "light", "building", "landing", "structure", "device", "instrument",
     "equipment", "object", "article", "product", "line", "unit", "means"}
)  # fmt: skip
ACT = "n00030358"  # act, deed, human action: activities, sports, games
# what an activity is done with: artifacts (a ball, a racket, a surfboard, a bicycle, a tent); not the
# people, the places, the rules or the score
USE_ROOTS = frozenset({"n00021939"})
NEIGHBOUR_POINTERS = frozenset({"#m", "#s", "#p", "%m", "%s", "%p"})
MAX_NEIGHBOUR_COVER = 6
MAX_MENTIONS = 25
MAX_RELATED = 12
# Words that never relate (query filler, or too vague to mean a thing in a photo).
UNRELATED = frozenset(
    {
        "photo",
        "photograph",
        "picture",
        "image",
        "pic",
        "shot",
        "snapshot",
        "thing",
        "things",
        "stuff",
        "something",
        "kind",
        "sort",
        "type",
        "lot",
        "part",
        "use",
        "form",
        "way",
        "time",
        "group",
        "set",
        "piece",
        "side",
        "top",
        "bottom",
        "one",
    }
)

# Custom class names ("chocolate_cake") are linked into the hierarchy through `anchors`: per noun that
# names no concept, [hypernym steps, the nearest concept-hierarchy synsets above its first sense]
# (chocolate cake -> [1, cake]), so that a broader word ("cake", "food") finds what a labeler labelled.


def parse_data_noun(path: Path) -> dict[str, dict]:
    """synset id ("n" + offset) -> {"names": [lemma, ...], "parents": [synset id, ...]}, per wndb(5WN)."""
    synsets: dict[str, dict] = {}
    with path.open(encoding="latin-1") as fh:
        for line in fh:
            if line.startswith("  "):  # the licence header
                continue
            fields = line.partition(" | ")[0].split()
            word_count = int(fields[3], 16)
            names = [re.sub(r"\(.*\)$", "", fields[4 + 2 * i]).replace("_", " ") for i in range(word_count)]
            i = 4 + 2 * word_count
            pointer_count = int(fields[i])
            i += 1
            parents, pointers = [], []
            for _ in range(pointer_count):
                symbol, offset, pos = fields[i], fields[i + 1], fields[i + 2]
                if pos == "n":
                    pointers.append((symbol, "n" + offset))
                    if symbol in ("@", "@i"):  # hypernym, instance hypernym
                        parents.append("n" + offset)
                i += 4
            gloss = line.partition(" | ")[2].split(";")[0].strip().lower()  # the definition, no examples
            record = {"names": names, "parents": parents, "pointers": pointers, "gloss": gloss}
            synsets["n" + fields[0]] = record
    return synsets


def parse_index_noun(path: Path) -> dict[str, list[str]]:
    """lemma (lower case, spaces) -> its synset ids, most frequent sense first."""
    senses: dict[str, list[str]] = {}
    with path.open(encoding="latin-1") as fh:
        for line in fh:
            if line.startswith("  "):
                continue
            fields = line.split()
            sense_count, pointer_count = int(fields[2]), int(fields[3])
            offsets = fields[4 + pointer_count + 2 :]
            assert len(offsets) == sense_count, line
            senses[fields[0].replace("_", " ")] = ["n" + o for o in offsets]
    return senses


def parse_exceptions(path: Path) -> dict[str, str]:
    pairs = {}
    with path.open(encoding="latin-1") as fh:
        for line in fh:
            inflected, base, *_ = line.split()
            pairs[inflected.replace("_", " ")] = base.replace("_", " ")
    return pairs


def ancestors_of(synset: str, synsets: dict[str, dict]) -> list[str]:
    """All hypernym ancestors, nearest first (breadth-first), each once."""
    found: list[str] = []
    frontier = list(synsets[synset]["parents"])
    while frontier:
        nxt = []
        for s in frontier:
            if s not in found:
                found.append(s)
                nxt.extend(synsets[s]["parents"])
        frontier = nxt
    return found


def imagenet_wnids() -> list[str]:
    from timm.data import ImageNetInfo

    wnids = list(ImageNetInfo().label_names())
    assert len(wnids) == 1000 and all(re.fullmatch(r"n\d{8}", w) for w in wnids)
    return wnids


def build(wordnet: Path) -> tuple[dict, dict]:
    synsets = parse_data_noun(wordnet / "data.noun")
    senses = parse_index_noun(wordnet / "index.noun")
    exceptions = parse_exceptions(wordnet / "noun.exc")

    def sense(lemma: str, number: int) -> str:
        return senses[lemma][number - 1]

    for (lemma, number), (parent, parent_number) in EXTRA_PARENTS.items():
        synsets[sense(lemma, number)]["parents"].append(sense(parent, parent_number))

    imagenet = imagenet_wnids()
    coco = {name: sense(lemma, number) for name, (lemma, number) in COCO.items()}
    concepts = sorted(set(imagenet) | set(coco.values()))
    ancestors = {c: ancestors_of(c, synsets) for c in concepts}
    closure = sorted(set(concepts).union(*ancestors.values()))
    reach: dict[str, set[str]] = {s: set() for s in closure}
    for c in concepts:
        for s in (c, *ancestors[c]):
            reach[s].add(c)

    words: dict[str, list[list]] = {}
    for lemma, synset_ids in senses.items():
        direct = [s for s in synset_ids if s in reach]
        if direct:
            words[lemma] = [[s, 1.0 if i == 0 else SECONDARY_WEIGHT] for i, s in enumerate(direct)]
    for word, (lemma, number) in ALIASES.items():
        target = sense(lemma, number)
        assert target in reach, (word, lemma)
        words[word] = [[target, 1.0]]
    for name, synset_id in coco.items():  # a detector's own class name always finds that class
        words.setdefault(name, [[synset_id, 1.0]])

    imagenet_set = set(imagenet)
    coverage = {}
    for name, synset_id in coco.items():
        kinds = hyponym_closure(synset_id, synsets)
        coverage[name] = [len(kinds & imagenet_set), len(kinds)]
    related = related_words(senses, synsets, reach, concepts, words)
    anchors = anchor_words(senses, synsets, reach, words)
    scene = scene_words(senses, synsets, {name: sense(lemma, n) for name, (lemma, n) in SCENE.items()}, words)

    return {
        "about": (
            "Derived from WordNet 3.0 (Princeton University; licence in WORDNET-LICENSE.txt) by "
            "tools/build_wordnet_table.py: ImageNet-1k classes and COCO classes as WordNet noun synsets, "
            "their hypernym ancestors, and the nouns that name them."
        ),
        "imagenet": imagenet,
        "coco": coco,
        "synsets": {s: {"names": synsets[s]["names"], "parents": synsets[s]["parents"]} for s in closure},
        "words": dict(sorted(words.items())),
        "irregular_plurals": {
            k: v
            for k, v in sorted(exceptions.items())
            if (v in words or v in related or v in anchors) and k not in words
        },
        "coco_coverage": coverage,
        "related": dict(sorted(related.items())),
        "scene": scene,
    }, dict(sorted(anchors.items()))


def hyponym_closure(synset_id: str, synsets: dict[str, dict], steps: int | None = None) -> set[str]:
    """The synset and every kind of it in WordNet (hyponyms, all the way down or at most `steps` levels;
    instances left out)."""
    found, frontier, depth = {synset_id}, [synset_id], 0
    while frontier and (steps is None or depth < steps):
        nxt = [t for s in frontier for sym, t in synsets[s]["pointers"] if sym == "~" and t not in found]
        found.update(nxt)
        frontier, depth = nxt, depth + 1
    return found


def scene_words(
    senses: dict[str, list[str]],
    synsets: dict[str, dict],
    scene: dict[str, str],
    words: dict[str, list[list]],
) -> dict[str, list[list]]:
    """word -> [[scene region, weight], ...] for the words that name no concept (see `SCENE`): 1 when its
    first sense is the region's synset or a kind of it, `SCENE_GLOSS_WEIGHT` when its first sense's
    definition names the region. A word that names a concept ("corn" is a cereal grass) keeps to it."""
    kinds = {region: hyponym_closure(synset, synsets, SCENE_MAX_STEPS) for region, synset in scene.items()}
    found: dict[str, list[list]] = {}
    for lemma, synset_ids in sorted(senses.items()):
        if lemma in words or not synset_ids or _is_instance(synsets[synset_ids[0]]):
            continue
        first = synset_ids[0]
        regions = {region: 1.0 for region, closure in kinds.items() if first in closure}
        if not regions and SCENE_PLACES & set(ancestors_of(first, synsets)):
            gloss = synsets[first]["gloss"]
            # "a piece of land cleared of trees" does not define a field by its trees
            tokens = _tokens(re.sub(r"\b(?:cleared|free|devoid|clear) of \w+", "", gloss))
            regions = {region: SCENE_GLOSS_WEIGHT for region in scene if region in tokens}
        if regions:
            found[lemma] = [[region, weight] for region, weight in sorted(regions.items())]
    return found


def _tokens(text: str) -> set[str]:
    """The words of a name or definition, with their plain singular ("dogs" -> "dog")."""
    found = set()
    for token in re.findall(r"[a-z][a-z'-]+", text.lower()):
        found.add(token)
        if token.endswith("s") and len(token) > 3:
            found.add(token[:-1])
    return found


def related_words(
    senses: dict[str, list[str]],
    synsets: dict[str, dict],
    reach: dict[str, set[str]],
    concepts: list[str],
    words: dict[str, list[list]],
) -> dict[str, list[list]]:
    """word -> [[synset, weight], ...] for the words that name no concept but sit beside some."""
    mentions: dict[str, set[str]] = {}
    for concept in concepts:
        for token in _tokens(synsets[concept]["gloss"]):
            mentions.setdefault(token, set()).add(concept)
    related: dict[str, list[list]] = {}
    for lemma, synset_ids in senses.items():
        if lemma in words or lemma in UNRELATED or len(lemma) < 3:
            continue
        if ACT in ancestors_of(synset_ids[0], synsets):
            uses = activity_uses(synsets[synset_ids[0]]["gloss"], lemma, reach, words, synsets, senses)
            if uses:
                related[lemma] = [[s, USE_WEIGHT] for s in sorted(uses)[:MAX_RELATED]]
            continue
        # only things and places a photo can show: "red" (a colour) or "night" (a time) relate to
        # nothing, or "red car" would need a photo of red wine too
        physical = [s for s in synset_ids[:2] if PHYSICAL in ancestors_of(s, synsets)]
        if not physical or physical[0] != synset_ids[0]:
            continue
        weights: dict[str, float] = {}
        for rank, synset_id in enumerate(physical):
            factor = 1.0 if rank == 0 else SECONDARY_WEIGHT
            for symbol, target in synsets[synset_id]["pointers"]:
                if target not in reach or len(reach[target]) > MAX_NEIGHBOUR_COVER:
                    continue
                if symbol in NEIGHBOUR_POINTERS:
                    weights[target] = max(weights.get(target, 0.0), NEIGHBOUR_WEIGHT * factor)
        if " " not in lemma:
            hits = mentions.get(lemma, set())
            if len(hits) <= MAX_MENTIONS:
                for concept in hits:
                    weights.setdefault(concept, MENTION_WEIGHT)
        # never what is above the word itself, however reached ("jet": the airplane whose definition
        # mentions jets covers every airplane)
        above = set(ancestors_of(synset_ids[0], synsets))
        weights = {s: w for s, w in weights.items() if s not in above}
        if weights:
            best = sorted(weights.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_RELATED]
            related[lemma] = [[s, round(w, 3)] for s, w in best]
    return related


PHYSICAL = "n00001930"  # physical entity


def activity_uses(
    gloss: str,
    lemma: str,
    reach: dict[str, set[str]],
    words: dict[str, list[list]],
    synsets: dict[str, dict],
    senses: dict[str, list[str]],
) -> set[str]:
    """The concept-hierarchy synsets an activity's definition names by their first sense, each covering
    at most MAX_USE_COVER concepts and under USE_ROOTS: what it is played or done with ("football":
    ball; "skiing": ski; "surfing": surfboard)."""
    found = set()
    for token in re.findall(r"[a-z][a-z'-]+", gloss):
        singular = token[:-1] if token.endswith("s") and len(token) > 3 else token
        form = singular if singular in senses else token  # "rackets" is racket; "works" is work, no plant
        entry = words.get(form)
        if form == lemma or form in UNRELATED or form in GLOSS_STOP or not entry:
            continue
        synset = entry[0][0]  # its most frequent sense in the table, if it is one of its usual ones
        own = senses.get(form, [])
        rank = own.index(synset) if synset in own else 0  # an alias ("kid": person) is its first sense
        if rank > MAX_USE_SENSE or not 0 < len(reach.get(synset, ())) <= MAX_USE_COVER:
            continue
        if USE_ROOTS & {synset, *ancestors_of(synset, synsets)}:
            found.add(synset)
    return found


def _is_instance(synset: dict) -> bool:
    """A named individual (a city, a person, a ship): instances do not label photo classes."""
    return any(symbol == "@i" for symbol, _ in synset["pointers"])


def anchor_words(
    senses: dict[str, list[str]],
    synsets: dict[str, dict],
    reach: dict[str, set[str]],
    words: dict[str, list[list]],
) -> dict[str, list[str]]:
    """word -> the nearest concept-hierarchy synsets above its first sense (for custom class names)."""
    anchors: dict[str, list[str]] = {}
    for lemma, synset_ids in senses.items():
        if lemma in words or not synset_ids or _is_instance(synsets[synset_ids[0]]):
            continue
        if PHYSICAL not in ancestors_of(synset_ids[0], synsets):  # a thing a photo could show
            continue
        frontier, seen, found, steps = list(synsets[synset_ids[0]]["parents"]), set(), [], 0
        while frontier and not found:
            steps += 1
            found = [s for s in frontier if s in reach]
            seen.update(frontier)
            frontier = [p for s in frontier for p in synsets[s]["parents"] if p not in seen]
        # "entity" / "object" say nothing a photo search could use
        found = [s for s in found if len(reach[s]) < 900]
        if found:
            anchors[lemma] = [steps, *sorted(set(found))]
    return anchors


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--wordnet", type=Path, default=Path("/usr/share/wordnet"))
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    table, anchors = build(args.wordnet)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(table, separators=(",", ":"), ensure_ascii=False, sort_keys=False)
    args.out.write_text(text + "\n", encoding="utf-8")
    anchors_out = args.out.with_name(ANCHORS)
    # gzip's mtime=0: the same table gives the same bytes
    packed = gzip.compress(json.dumps(anchors, separators=(",", ":")).encode(), mtime=0)
    anchors_out.write_bytes(packed)
    print(
        f"{args.out}: {len(table['imagenet'])} ImageNet classes, {len(table['coco'])} COCO classes, "
        f"{len(table['synsets'])} synsets, {len(table['words'])} words, {len(table['related'])} related "
        f"words, {len(text) / 1e3:.0f} kB; {anchors_out.name}: {len(anchors)} nouns, "
        f"{len(packed) / 1e3:.0f} kB"
    )


if __name__ == "__main__":
    main()

"""COCO class names, in the two numberings detectors use, and English plurals for summaries.

COCO's 80 object classes carry ids 1-90 in the original annotations (ten ids are unused). torchvision's
detectors and TensorFlow's detection-zoo models number them that way (index 0 = background);
ultralytics' YOLO models number the 80 names 0-79. Both lists come from torchvision's own record
(packaged as `data/coco_categories.txt`, so no backend needs torchvision imported to name a class), so
every backend spells a class the same way.
"""

from __future__ import annotations

from functools import lru_cache

UNUSED = "N/A"
BACKGROUND = "__background__"


@lru_cache(maxsize=1)
def coco91() -> tuple[str, ...]:
    """Names indexed by original COCO category id (0 = background, "N/A" for the ten unused ids)."""
    from importlib.resources import files

    text = files("pixelsift").joinpath("data/coco_categories.txt").read_text(encoding="utf-8")
    return tuple(text.splitlines())


@lru_cache(maxsize=1)
def coco80() -> tuple[str, ...]:
    """The 80 COCO class names in YOLO's 0-79 order.

    >>> coco80()[:3], len(coco80())
    (('person', 'bicycle', 'car'), 80)
    """
    return tuple(name for name in coco91() if name not in (UNUSED, BACKGROUND))


# Nouns whose plural is not "+s" / "+es" / "y -> ies"; the keys are last words of class names.
# "person" stays "persons", as ultralytics prints it.
_IRREGULAR = {
    "person": "persons",
    "mouse": "mice",
    "knife": "knives",
    "wife": "wives",
    "leaf": "leaves",
    "shelf": "shelves",
    "wolf": "wolves",
    "loaf": "loaves",
    "half": "halves",
    "calf": "calves",
    "scarf": "scarves",
    "thief": "thieves",
    "child": "children",
    "man": "men",
    "woman": "women",
    "foot": "feet",
    "tooth": "teeth",
    "goose": "geese",
    "ox": "oxen",
    "cactus": "cacti",
    "fungus": "fungi",
    "bacterium": "bacteria",
    "potato": "potatoes",
    "tomato": "tomatoes",
    "hero": "heroes",
    "echo": "echoes",
    "mango": "mangoes",
}
# Words that are the same in the plural, or already plural (a pair of skis, scissors, glasses).
_INVARIANT = frozenset(
    {
        "sheep",
        "deer",
        "fish",
        "moose",
        "bison",
        "aircraft",
        "spacecraft",
        "series",
        "species",
        "broccoli",
        "skis",
        "scissors",
        "glasses",
        "sunglasses",
        "pants",
        "trousers",
        "jeans",
        "shorts",
        "binoculars",
        "headphones",
        "tongs",
        "pliers",
    }
)
_VOWELS = frozenset("aeiou")


def plural(name: str) -> str:
    """The English plural of a class name; multi-word names inflect their last word.

    >>> [plural(n) for n in ("person", "bus", "knife", "sheep", "skis", "wine glass", "teddy bear")]
    ['persons', 'buses', 'knives', 'sheep', 'skis', 'wine glasses', 'teddy bears']
    """
    head, sep, word = name.rpartition(" ")
    lower = word.lower()
    if not lower or lower in _INVARIANT:
        return name
    if lower in _IRREGULAR:
        new = _IRREGULAR[lower]
        new = new.capitalize() if word[:1].isupper() else new
    elif lower.endswith(("s", "x", "z", "ch", "sh")):
        new = word + "es"
    elif lower.endswith("y") and len(lower) > 1 and lower[-2] not in _VOWELS:
        new = word[:-1] + "ies"
    else:
        new = word + "s"
    return head + sep + new


def count_phrase(count: int, name: str) -> str:
    """ "1 dog", "3 dogs"."""
    return f"{count} {name if count == 1 else plural(name)}"

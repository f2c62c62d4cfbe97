"""English plurals for detection summaries ("2 persons, 1 dog"), as ultralytics prints them."""

from __future__ import annotations

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

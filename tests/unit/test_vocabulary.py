"""The derived WordNet table: words reach the right ImageNet and COCO classes through the hierarchy."""

from __future__ import annotations

import pytest

from pixelsift.models.registry import get_model_spec
from pixelsift.models.vocabulary import Vocabulary, anchors, base_forms

HOUSE_CATS = {"tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat"}


@pytest.fixture(scope="module")
def vocab() -> Vocabulary:
    return Vocabulary.load()


@pytest.fixture(scope="module")
def categories() -> tuple[str, ...]:
    return get_model_spec("efficientnet_lite0").categories


def classes(vocab: Vocabulary, categories: tuple[str, ...], word: str, weight: float = 1.0) -> set[str]:
    meaning = vocab.lookup(word)
    assert meaning is not None, f"{word!r} is not in the vocabulary"
    return {categories[i] for i, w in vocab.imagenet_weights(meaning).items() if w >= weight}


def test_table_is_imagenet_in_class_order(vocab: Vocabulary, categories: tuple[str, ...]) -> None:
    assert len(vocab.imagenet) == 1000 == len(set(vocab.imagenet))
    for index, name in [(0, "tench"), (281, "tabby"), (207, "golden retriever"), (999, "toilet tissue")]:
        assert categories[index] == name
        assert name.lower() in [n.lower() for n in vocab.names(vocab.imagenet_wnid(index))]


def test_cat_finds_the_house_cats_first_and_big_cats_as_a_later_sense(
    vocab: Vocabulary, categories: tuple[str, ...]
) -> None:
    first_sense = classes(vocab, categories, "cat")
    assert first_sense >= HOUSE_CATS
    assert "lion" not in first_sense and "tiger" not in first_sense
    assert {"lion", "tiger", "cheetah"} <= classes(vocab, categories, "cat", weight=0.5)


def test_dog_reaches_every_breed_through_the_hierarchy(
    vocab: Vocabulary, categories: tuple[str, ...]
) -> None:
    dogs = classes(vocab, categories, "dog")
    assert len(dogs) == 118
    assert {"Chihuahua", "golden retriever", "pug", "Siberian husky", "toy poodle", "beagle"} <= dogs
    assert not dogs & {"tabby", "timber wolf", "red fox", "hotdog"}, "wolves, foxes and sausages are not dogs"


@pytest.mark.parametrize(
    ("word", "inside", "outside"),
    [
        ("bird", {"goldfinch", "bald eagle", "ostrich", "hen"}, {"airliner", "tabby"}),
        ("fruit", {"Granny Smith", "strawberry", "banana", "pineapple"}, {"broccoli", "espresso"}),
        (
            "vehicle",
            {"convertible", "airliner", "canoe", "mountain bike", "school bus"},
            {"tabby", "espresso"},
        ),
    ],
)
def test_a_word_reaches_its_whole_subtree(
    vocab: Vocabulary, categories: tuple[str, ...], word: str, inside: set[str], outside: set[str]
) -> None:
    found = classes(vocab, categories, word)
    assert inside <= found
    assert not found & outside


def test_plurals_and_synonyms(vocab: Vocabulary, categories: tuple[str, ...]) -> None:
    assert classes(vocab, categories, "cats") == classes(vocab, categories, "cat")
    assert classes(vocab, categories, "Dogs") == classes(vocab, categories, "dog")
    assert classes(vocab, categories, "puppies") == classes(vocab, categories, "dog"), "a puppy is a dog"
    assert classes(vocab, categories, "kitten") == HOUSE_CATS, "a kitten is a house cat, not a lion"
    assert classes(vocab, categories, "geese") == {"goose"}, "WordNet's irregular plurals"
    assert classes(vocab, categories, "automobile") == classes(vocab, categories, "car", weight=1.0)
    assert "golden retriever" in classes(vocab, categories, "Golden Retrievers")
    assert vocab.lookup("qwertyuiop") is None


def test_base_forms_follow_wordnet_noun_rules() -> None:
    assert "box" in base_forms("boxes")
    assert "puppy" in base_forms("puppies")
    assert "stop sign" in base_forms("stop signs")
    assert base_forms("cat") == ["cat"]


def test_detection_classes_sit_in_the_same_hierarchy(vocab: Vocabulary) -> None:
    def coco(word: str) -> set[str]:
        meaning = vocab.lookup(word)
        assert meaning is not None
        return set(vocab.coco_weights(meaning))

    assert {"dog", "cat", "horse", "bird", "zebra"} <= coco("animal")
    assert "car" not in coco("animal")
    assert {"car", "bus", "truck", "bicycle", "motorcycle", "airplane", "boat", "train"} <= coco("vehicle")
    assert coco("person") == {"person"} == coco("people")
    assert "cat" in coco("kitten") and "dog" in coco("puppy")
    assert coco("stop sign") == {"stop sign"}


def related(vocab: Vocabulary, categories: tuple[str, ...], word: str) -> set[str]:
    meaning = vocab.lookup(word, related=True)
    assert meaning is not None and meaning.how != "word", word
    return {categories[i] for i in vocab.imagenet_weights(meaning)}


def test_words_that_name_no_class_reach_the_classes_wordnet_puts_beside_them(
    vocab: Vocabulary, categories: tuple[str, ...]
) -> None:
    assert vocab.lookup("beach") is None, "only when asked: `detect --classes beach` stays an error"
    assert {"seashore", "lakeside"} <= related(vocab, categories, "beach"), "a beach is part of a shore"
    assert "beach wagon" not in related(vocab, categories, "beach"), "names are not relations"
    assert {"ski", "snowmobile", "snowplow"} <= related(vocab, categories, "snow"), "defined by snow"
    assert {"microwave", "toaster"} <= related(vocab, categories, "kitchen")
    beach = vocab.lookup("beach", related=True)
    assert beach is not None and all(w < 1.0 for _, w in beach.synsets), "related counts less than named"


@pytest.mark.parametrize("word", ["red", "night", "sport", "happiness"])
def test_colours_times_and_activities_relate_to_nothing(vocab: Vocabulary, word: str) -> None:
    assert vocab.lookup(word, related=True) is None, "a 'red car' must not need red wine in the photo"


def test_no_word_climbs_to_a_hypernym_that_covers_other_things(vocab: Vocabulary) -> None:
    # a helicopter is a heavier-than-air craft, and so is every airplane; an astronaut a person
    for word in ("helicopter", "astronaut", "crossbill", "hawksbill"):
        assert vocab.lookup(word, related=True) is None, word
    above = anchors()  # word -> [steps, the nearest synsets of the table above it]
    climbs = [w for w, entry in vocab.related.items() if set(above.get(w, [0])[1:]) & {s for s, _ in entry}]
    assert not climbs, f"related words that reach their own hypernym: {climbs[:5]}"
    assert vocab.lookup("city", related=True) is None


def test_a_word_reaches_its_classes_and_the_detector_class_above_it(
    vocab: Vocabulary, categories: tuple[str, ...]
) -> None:
    motorbike = vocab.lookup("motorbike")  # WordNet: minibike, a small motorcycle
    assert motorbike is not None and "moped" in classes(vocab, categories, "motorbike")
    assert vocab.coco_above(motorbike) == {"motorcycle": 1.0}, "a COCO detector calls it a motorcycle"
    retriever = vocab.lookup("golden retriever")
    assert retriever is not None and vocab.coco_above(retriever) == {"dog": 1.0}
    cat = vocab.lookup("cat")
    assert cat is not None and vocab.coco_above(cat) == {}, "its own detection class covers it"


def test_an_activity_reaches_what_it_is_played_with(vocab: Vocabulary, categories: tuple[str, ...]) -> None:
    football = vocab.lookup("football", related=True)
    assert football is not None and football.how == "related"
    assert "sports ball" in vocab.coco_weights(football)
    assert "soccer ball" in related(vocab, categories, "football")
    assert all(w < 0.5 for _, w in football.synsets), "below a direct match and below a neighbour"
    assert "ski" in related(vocab, categories, "skiing")
    assert "tennis racket" in vocab.coco_weights(vocab.lookup("tennis", related=True))  # type: ignore[arg-type]


def test_custom_class_names_are_linked_into_the_hierarchy(vocab: Vocabulary) -> None:
    cake = vocab.lookup("cake")
    food = vocab.lookup("food")
    assert cake is not None and food is not None
    chocolate = vocab.label_synsets("chocolate_cake")
    assert {s for s, _ in cake.synsets} & chocolate, "a chocolate cake is a cake"
    assert {s for s, _ in food.synsets} & chocolate, "and food"
    assert {s for s, _ in food.synsets} & vocab.label_synsets("Spring rolls"), "a spring roll is food"
    assert not {s for s, _ in cake.synsets} & vocab.label_synsets("spring_rolls")
    assert vocab.label_synsets("xyzzy") == set()


def test_the_classifier_can_judge_detections_of_classes_imagenet_covers(vocab: Vocabulary) -> None:
    assert all(vocab.known_to_classifier(c) for c in ("dog", "cat", "bird", "car", "zebra"))
    assert not any(vocab.known_to_classifier(c) for c in ("person", "horse", "cow", "kite"))

"""The order of the lines read in a photo: rows top to bottom, left to right within a row."""

from __future__ import annotations

from pixelsift.ocr.results import TextLine, reading_order


def line(text: str, x: float, y: float, width: float, height: float) -> TextLine:
    return TextLine(text, 0.9, ((x, y), (x + width, y), (x + width, y + height), (x, y + height)))


def test_a_line_below_comes_after_whatever_the_letter_sizes() -> None:
    # a big title over a small line: their tops divided by their heights would order them the
    # other way round (580 / 60 rounds to 10, 670 / 75 to 9)
    title = line("RE16 TGK", 100, 580, 600, 60)
    below = line("Happy Birthday", 100, 670, 700, 75)
    assert [x.text for x in reading_order([below, title])] == ["RE16 TGK", "Happy Birthday"]


def test_lines_side_by_side_read_left_to_right_even_when_slightly_offset() -> None:
    left = line("Milk", 10, 104, 80, 30)
    right = line("1.29", 300, 96, 60, 30)
    total = line("TOTAL", 10, 200, 100, 30)
    assert [x.text for x in reading_order([total, right, left])] == ["Milk", "1.29", "TOTAL"]


def test_a_small_caption_beside_a_big_word_is_in_the_big_words_row() -> None:
    big = line("SALE", 0, 0, 300, 100)
    caption = line("today only", 320, 40, 120, 20)  # its middle (50) is the big word's middle
    after = line("next row", 0, 120, 200, 30)
    assert [x.text for x in reading_order([after, caption, big])] == ["SALE", "today only", "next row"]

"""Reading the text in photos (OCR): `TextReader`, `read_text` and the result types.

The models are PP-OCR's text detector, line-angle classifier and recogniser, run on ONNX Runtime by
`rapidocr` (Apache-2.0), which ships them inside its wheel: reading works offline with nothing to
download. Install with `pip install 'pixelsift[ocr]'`.
"""

from pixelsift.ocr.reader import TextReader, read_text
from pixelsift.ocr.results import TextLine, TextReading, TextReadings, TextWord

__all__ = ["TextLine", "TextReader", "TextReading", "TextReadings", "TextWord", "read_text"]

# %% [markdown]
# # 4. Search your photos
#
# The lesson's first question: "show me my photos of a cat". An index runs the classifier once per
# photo, stores its probabilities for all 1000 classes and its 1280 features, and answers queries
# through WordNet ("cat" covers tabby, tiger cat, Persian ...) and "more like this one" queries
# through the features. Each result says what made it match.

# %%
%matplotlib inline
import shutil
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from PIL import Image

import pixelsift

SAMPLES = Path("../samples") if Path("../samples").is_dir() else Path("samples")
WORK = Path(tempfile.mkdtemp(prefix="pixelsift-notebook-"))
library = WORK / "photos"
library.mkdir()
for photo in SAMPLES.iterdir():
    if photo.suffix in (".png", ".jpg"):
        shutil.copy(photo, library / photo.name)
shapes = pixelsift.make_shapes_dataset(WORK / "shapes", train_per_class=3, valid_per_class=0)
for photo in sorted(shapes.glob("train/*/*.jpg")):
    shutil.copy(photo, library / photo.name)

index = pixelsift.PhotoIndex(WORK / "index.db")
report = index.update(library, detector="none")
print(report.summary())
assert report.added == len(list(library.iterdir()))

# %% [markdown]
# ## "my photos of cat"

# %%
def show(results, title):
    fig, axes = plt.subplots(1, max(1, len(results)), figsize=(3 * max(1, len(results)), 3.3), squeeze=False)
    for ax, r in zip(axes[0], results):
        ax.imshow(Image.open(r.path).convert("RGB"))
        ax.set_title(f"{r.score:.2f} {', '.join(r.labels[:2])}", fontsize=8)
        ax.axis("off")
    fig.suptitle(title)
    plt.tight_layout()


cats = index.search("my photos of cat", n=3)
print(cats.how)
assert cats and Path(cats[0].path).name == "chelsea.png"
assert cats[0].matched[0].concept == "cat"
show(cats, "my photos of cat")
cats.to_pandas()

# %% [markdown]
# Filler ("my photos of", "show me", "a", "the") is dropped. Several concepts rank rather than filter:
# photos that show them all come first, then photos that show the *main* concept (the first that names
# a class), each naming what it does not clearly show (`weak`). `match_all=True` (the CLI's `--all`)
# keeps only photos that show everything: "cat and coffee" finds nothing then. "or" takes either, and
# "a cup of coffee" is read as coffee: the photo shows the cup, and the classifier calls it espresso.

# %%
coffee = index.search("a cup of coffee", n=3)
assert coffee and Path(coffee[0].path).name == "coffee.png"
print(coffee[0].matched_text())
ranked = index.search("cat and coffee")
assert Path(ranked[0].path).name == "chelsea.png" and ranked[0].weak == ["coffee"]
print(ranked[0].matched_text())
assert not index.search("cat and coffee", match_all=True)
either = index.search("cat or coffee")
assert {Path(r.path).name for r in either} >= {"chelsea.png", "coffee.png"}
show(either, "cat or coffee")

# %% [markdown]
# ## Similar photos
#
# Nearest neighbours in feature space: a shape photo's neighbours are the other shapes.

# %%
probe = sorted(library.glob("red_circle*.jpg"))[0]
similar = index.similar(probe, n=4)
assert all("_" in Path(r.path).stem for r in similar[:2])  # other generated shapes, not the samples
show(similar, f"like {probe.name}")

# %% [markdown]
# ## Words in the photos
#
# Photos of signs, receipts and screenshots are found by their text. `update(ocr=True)` reads the text of
# every photo (PP-OCR's networks, shipped in the `rapidocr` wheel: `pip install 'pixelsift[ocr]'`) and
# remembers to read new ones; `search_text` finds parts of words, phrases and misspellings, and a plain
# `search` finds the text too. Here a birthday card is made and added to the library.

# %%
import importlib.util

from PIL import ImageDraw, ImageFont

if importlib.util.find_spec("rapidocr") is None:
    print("pip install 'pixelsift[ocr]' to read the text in photos")
else:
    from pixelsift.ocr import read_text
    from pixelsift.ocr.draw import draw_text_lines

    card = Image.new("RGB", (800, 500), (250, 240, 225))
    draw = ImageDraw.Draw(card)
    draw.text((80, 160), "Happy Birthday", fill=(180, 30, 60), font=ImageFont.load_default(80))
    draw.text((80, 290), "love, Anna", fill=(40, 40, 40), font=ImageFont.load_default(50))
    card.save(library / "card.png")
    report = index.update(library, ocr=True)
    print(report.summary())
    found = index.search_text("birthdy")  # misspelt on purpose
    assert found and Path(found[0].path).name == "card.png"
    print(found[0].matched_text())
    assert Path(index.search("happy birthday")[0].path).name == "card.png"
    (reading,) = read_text(library / "card.png")
    print([line.text for line in reading.lines])
    plt.figure(figsize=(6, 4))
    plt.imshow(draw_text_lines(Image.open(library / "card.png"), reading.lines))
    plt.axis("off")

# %% [markdown]
# ## A map of the library
#
# The same features, projected to two dimensions: photos that look alike sit together.

# %%
vectors = pixelsift.embed(sorted(library.iterdir()))
X = vectors.vectors - vectors.vectors.mean(axis=0)
_, _, components = np.linalg.svd(X, full_matrices=False)
points = X @ components[:2].T
plt.figure(figsize=(6, 5))
plt.scatter(points[:, 0], points[:, 1], s=12)
for (x, y), path in zip(points, vectors.paths):
    plt.annotate(Path(path).stem.split("_")[0], (x, y), fontsize=7)
plt.title("the library's features, first two principal components")
index.close()

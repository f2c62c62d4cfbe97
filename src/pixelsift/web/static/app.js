// pixelsift page: plain JavaScript over the REST API, no build step, no assets from the internet.
"use strict";

const $ = (selector) => document.querySelector(selector);
const PALETTE = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#008080", "#f032e6",
  "#9a6324", "#800000", "#000075", "#808000", "#46f0f0"];

function colourFor(label) {
  let hash = 0;
  for (const ch of label) hash = (hash * 31 + ch.charCodeAt(0)) >>> 0;
  return PALETTE[hash % PALETTE.length];
}

async function api(url, options, withHeaders = false) {
  const response = await fetch(url, options);
  const type = response.headers.get("content-type") || "";
  const body = type.includes("application/json") ? await response.json() : null;
  if (!response.ok) throw new Error((body && body.error) || `${response.status} ${response.statusText}`);
  return withHeaders ? { body, headers: response.headers } : body;
}

function setStatus(element, text, isError = false) {
  element.textContent = text;
  element.classList.toggle("error", isError);
}

function loadImage(src) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error("the browser could not display this image"));
    img.src = src;
  });
}

// Draw the photo and its boxes; boxes are in the photo's pixel coordinates. Boxes first, then labels,
// best score first, each moved down until it covers no label already placed and stays in the image.
// An object with a shape (from /api/segment: "polygons") gets a translucent fill and its outline
// instead of a box.
function drawDetections(canvas, img, detections) {
  canvas.width = img.naturalWidth;
  canvas.height = img.naturalHeight;
  const ctx = canvas.getContext("2d");
  ctx.drawImage(img, 0, 0);
  const line = Math.max(2, Math.round(Math.min(canvas.width, canvas.height) / 200));
  ctx.font = `${Math.max(12, line * 6)}px system-ui, sans-serif`;
  const ordered = [...(detections || [])].sort((a, b) => b.score - a.score);
  ctx.lineWidth = line;
  let shapes = 0;
  for (const det of [...ordered].reverse()) { // the best object is drawn last, on top
    const [x1, y1, x2, y2] = det.box;
    ctx.strokeStyle = colourFor(det.label);
    if (!det.polygons) {
      ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
      continue;
    }
    for (const polygon of det.polygons) {
      ctx.beginPath();
      for (let i = 0; i < polygon.length; i += 2) ctx[i ? "lineTo" : "moveTo"](polygon[i], polygon[i + 1]);
      ctx.closePath();
      ctx.fillStyle = colourFor(det.label);
      ctx.globalAlpha = 0.4;
      ctx.fill();
      ctx.globalAlpha = 1;
      ctx.stroke();
      shapes += 1;
    }
  }
  canvas.dataset.shapes = String(shapes); // how many outlines were drawn (the browser test reads it)
  const height = parseInt(ctx.font, 10) + 4;
  const placed = [];
  const overlaps = (r) => placed.some((p) => r.x < p.x + p.w && p.x < r.x + r.w && r.y < p.y + p.h && p.y < r.y + r.h);
  for (const det of ordered) {
    const [x1, y1] = det.box;
    const text = `${det.label} ${det.score.toFixed(2)}`;
    const w = ctx.measureText(text).width + 8;
    const rect = { x: Math.max(0, Math.min(x1, canvas.width - w)), y: y1 - height >= 0 ? y1 - height : y1, w, h: height };
    for (let tries = 0; overlaps(rect) && tries < 50; tries++) rect.y += height;
    rect.y = Math.min(rect.y, canvas.height - height);
    placed.push(rect);
    ctx.fillStyle = colourFor(det.label);
    ctx.fillRect(rect.x, rect.y, rect.w, rect.h);
    ctx.fillStyle = "#fff";
    ctx.fillText(text, rect.x + 4, rect.y + height - 5);
  }
  canvas.dataset.labels = JSON.stringify(placed); // where the labels went (the browser test reads it)
}

// Text as search compares it: lower case, accents dropped ("Café" -> "cafe").
function fold(text) {
  return text.normalize("NFD").replace(/[\u0300-\u036f]/g, "").toLowerCase();
}

function editDistance(a, b, limit) {
  if (Math.abs(a.length - b.length) > limit) return limit + 1;
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = row;
  }
  return previous[b.length];
}

// Whether a word read in a photo is one the query looked for: the word, part of it, or a misspelling
// of it (an edit for 4-7 letters, two from 8), as `search --text` matches.
function wordMatcher(query) {
  const wanted = fold(query || "").match(/[\p{L}\p{N}]+/gu) || [];
  return (word) => {
    const w = fold(word);
    return wanted.some((q) => w === q || (q.length >= 2 && w.includes(q))
      || (q.length >= 4 && editDistance(w, q, q.length >= 8 ? 2 : 1) <= (q.length >= 8 ? 2 : 1)));
  };
}

// The lines of text read in a photo, drawn over it: each line's box, and the words `highlight` picks
// filled in yellow. Coordinates are the photo's pixels.
function drawTextLines(canvas, lines, highlight) {
  const ctx = canvas.getContext("2d");
  const line = Math.max(2, Math.round(Math.min(canvas.width, canvas.height) / 250));
  ctx.lineWidth = line;
  let marked = 0;
  for (const l of lines || []) {
    const [x1, y1, x2, y2] = l.box;
    ctx.strokeStyle = "#ffc400";
    ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
    for (const w of l.words || []) {
      if (!highlight || !highlight(w.text)) continue;
      const [a, b, c, d] = w.box;
      ctx.fillStyle = "rgba(255, 230, 0, 0.45)";
      ctx.fillRect(a, b, c - a, d - b);
      marked += 1;
    }
  }
  canvas.dataset.textLines = String((lines || []).length); // the browser test reads these
  canvas.dataset.highlighted = String(marked);
}

// "cat, bed ×2": the server words uploads' summaries with English plurals; stored photos use this.
function summary(detections) {
  const counts = new Map();
  for (const det of detections) counts.set(det.label, (counts.get(det.label) || 0) + 1);
  return [...counts.entries()]
    .sort((a, b) => b[1] - a[1])
    .map(([label, n]) => (n > 1 ? `${label} ×${n}` : label))
    .join(", ");
}

async function loadModels() {
  const select = $("#model-select");
  try {
    const models = await api("/api/models");
    for (const m of models.filter((m) => m.task === "classify" && m.weights !== "missing")) {
      const option = new Option(m.name, m.name, m.default, m.default);
      select.add(option);
    }
    // a server without a detector (serve --detector none, or none usable here): no box to tick
    if (!models.some((m) => m.task === "detect" && m.default && m.usable)) {
      const toggle = $("#detect-toggle");
      toggle.checked = false;
      toggle.disabled = true;
      toggle.parentElement.title = "this server runs without object detection";
    }
    // no instance segmenter's weights on the server: say how to get one
    if (!models.some((m) => m.task === "segment" && m.default && m.usable)) {
      const toggle = $("#shapes-toggle");
      toggle.checked = false;
      toggle.disabled = true;
      toggle.parentElement.title =
        "no instance segmenter's weights on this server: `pixelsift models fetch maskrcnn_resnet50_fpn_v2`, then restart it";
    }
  } catch (err) {
    setStatus($("#upload-status"), `Could not list models: ${err.message}`, true);
  }
}

let currentFile = null; // the photo on show, for the "What did it look at?" toggle
// Similar photos below this are not shown: on the searchlib photos, 992 of 995 top-10 neighbours scored
// 0.3 or more and 92% of them shared a thing; unrelated sample photos score 0.19-0.24 (README).
const SIMILAR_MIN = 0.3;

// Show the classifier's heatmap for its top class instead of the boxes, or back again.
async function toggleExplanation() {
  const button = $("#explain-toggle");
  const img = $("#explain-image");
  const canvas = $("#preview-canvas");
  if (button.getAttribute("aria-pressed") === "true") {
    button.setAttribute("aria-pressed", "false");
    button.textContent = "What did it look at?";
    img.hidden = true;
    canvas.hidden = false;
    return;
  }
  if (!currentFile) return;
  const status = $("#upload-status");
  setStatus(status, `Working out where the classifier looked in ${currentFile.name} ...`);
  const data = new FormData();
  data.append("file", currentFile);
  const params = new URLSearchParams({ annotated: "1" });
  if ($("#model-select").value) params.set("model", $("#model-select").value);
  try {
    const response = await fetch(`/api/explain?${params}`, { method: "POST", body: data });
    if (!response.ok) {
      const body = await response.json().catch(() => ({ error: response.statusText }));
      throw new Error(body.error || response.statusText);
    }
    if (img.src) URL.revokeObjectURL(img.src);
    img.src = URL.createObjectURL(await response.blob());
    await img.decode();
    img.hidden = false;
    canvas.hidden = true;
    button.setAttribute("aria-pressed", "true");
    button.textContent = "Show the objects again";
    setStatus(status, `${currentFile.name}: warm colours are where the top class was seen.`);
  } catch (err) {
    setStatus(status, `Explanation unavailable: ${err.message}`, true);
  }
}

async function analyse(file) {
  currentFile = file;
  $("#explain-toggle").setAttribute("aria-pressed", "false");
  $("#explain-image").hidden = true;
  $("#preview-canvas").hidden = false;
  const status = $("#upload-status");
  setStatus(status, `Looking at ${file.name} ...`);
  const form = () => { const data = new FormData(); data.append("file", file); return data; };
  const params = new URLSearchParams({ k: $("#k-input").value || "5" });
  if ($("#model-select").value) params.set("model", $("#model-select").value);
  try {
    const classes = await api(`/api/classify?${params}`, { method: "POST", body: form() });
    let detections = [];
    let objects = "";
    let detectNote = "";
    const shapes = $("#shapes-toggle").checked;
    if (shapes || $("#detect-toggle").checked) {
      try {
        const found = await api(shapes ? "/api/segment" : "/api/detect", { method: "POST", body: form() });
        detections = found.detections;
        objects = found.summary;
      } catch (err) {
        detectNote = ` ${shapes ? "Shapes" : "Detection"} unavailable: ${err.message}`;
      }
    }
    let lines = [];
    let textNote = "";
    if ($("#text-toggle").checked) {
      try {
        lines = (await api("/api/ocr", { method: "POST", body: form() })).lines;
      } catch (err) {
        textNote = ` Text unavailable: ${err.message}`;
      }
    }
    const url = URL.createObjectURL(file);
    const img = await loadImage(url);
    drawDetections($("#preview-canvas"), img, detections);
    drawTextLines($("#preview-canvas"), lines, null);
    URL.revokeObjectURL(url);
    $("#text-list").replaceChildren(...lines.map((l) => {
      const item = document.createElement("li");
      item.textContent = `“${l.text}” ${l.score.toFixed(2)}`;
      return item;
    }));
    $("#preview-caption").textContent = detections.length ? objects : file.name;
    const tbody = $("#classes-table tbody");
    tbody.replaceChildren(...classes.predictions.map((p) => {
      const row = document.createElement("tr");
      const label = document.createElement("td");
      label.textContent = p.label;
      const score = document.createElement("td");
      score.className = "num";
      const bar = document.createElement("span");
      bar.className = "bar";
      bar.style.width = `${Math.round(p.score * 100)}%`;
      bar.setAttribute("aria-hidden", "true");
      score.append(bar, document.createTextNode(p.score.toFixed(3)));
      row.append(label, score);
      return row;
    }));
    $("#objects-list").replaceChildren(...detections.map((d) => {
      const item = document.createElement("li");
      const area = d.area === undefined ? "" : `, ${(d.area * 100).toFixed(1)}% of the photo`;
      item.textContent = `${d.label} ${d.score.toFixed(2)}${area}`;
      return item;
    }));
    $("#upload-result").hidden = false;
    $("#like-this").hidden = false;
    const top = `${classes.predictions[0].label} (${classes.predictions[0].score.toFixed(3)})`;
    setStatus(status, `${file.name}: ${top}.${detectNote}${textNote}`);
    return { ok: true, text: top };
  } catch (err) {
    setStatus(status, `${file.name}: ${err.message}`, true);
    return { ok: false, text: err.message };
  }
}

// Several photos at once: one row per file with its own progress bar, looked at one after another;
// a finished row shows that photo again when clicked.
async function analyseMany(files) {
  const queue = $("#upload-queue");
  const rows = [...files].map((file) => {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "link";
    button.textContent = file.name;
    button.addEventListener("click", () => analyse(file));
    const bar = document.createElement("progress");
    bar.max = 2;
    bar.value = 0;
    bar.setAttribute("aria-label", `progress of ${file.name}`);
    const state = document.createElement("span");
    state.className = "state";
    state.textContent = "waiting";
    item.append(button, bar, state);
    return { file, item, bar, state };
  });
  queue.replaceChildren(...rows.map((r) => r.item));
  queue.hidden = rows.length < 2;
  for (const row of rows) {
    row.bar.value = 1;
    row.state.textContent = "looking ...";
    const result = await analyse(row.file);
    row.bar.value = 2;
    row.state.textContent = result.text;
    row.item.classList.toggle("error", !result.ok);
  }
}

// "dog: German shepherd · bicycle: detected bicycle": the strongest evidence for each concept of the query
function matchedText(result) {
  const seen = new Set();
  const parts = [];
  for (const m of result.matched || []) {
    if (seen.has(m.concept)) continue;
    seen.add(m.concept);
    if (m.source === "text") {
      parts.push(`text: “${m.label}”`);
      continue;
    }
    const how = { detector: "detected ", labeler: "labelled ", scene: "scene: " }[m.source] || "";
    parts.push(`${m.concept}: ${how}${m.label}`);
  }
  return parts.join(" · ");
}

function photoCard(result, onOpen, showScore = true) {
  const item = document.createElement("li");
  const button = document.createElement("button");
  button.type = "button";
  const img = document.createElement("img");
  img.src = `/api/photos/${result.id}/thumbnail`;
  img.loading = "lazy"; // a library of thousands loads what is on screen
  img.alt = result.labels.slice(0, 3).join(", ") || result.path;
  const caption = document.createElement("span");
  caption.className = "caption";
  caption.textContent = matchedText(result) || result.labels.slice(0, 2).join(", ") || result.path;
  const score = document.createElement("span");
  score.className = "score";
  if (showScore) score.textContent = ` ${result.score.toFixed(2)}`;
  caption.append(score);
  if (result.weak && result.weak.length) {
    // listed for the query's main concept; the rest of the query is not clear in this photo
    const weak = document.createElement("span");
    weak.className = "weak";
    weak.textContent = `not clearly ${result.weak.join(", ")}`;
    caption.append(weak);
    item.classList.add("partial");
  }
  button.append(img, caption);
  button.setAttribute("aria-label", `${result.path}: ${result.labels.slice(0, 3).join(", ")}`);
  button.addEventListener("click", () => onOpen(result));
  item.append(button);
  return item;
}

async function openPhoto(result) {
  const dialog = $("#photo-dialog");
  $("#dialog-title").textContent = result.path;
  $("#dialog-labels").textContent = result.labels.join(", ");
  $("#similar-grid").replaceChildren();
  if (!dialog.open) dialog.showModal();
  try {
    const [img, info] = await Promise.all([loadImage(`/api/photos/${result.id}`), api(`/api/photos/${result.id}/info`)]);
    drawDetections($("#dialog-canvas"), img, info.detections);
    // the words the query found in its text, highlighted (a search that matched the photo's text)
    const byText = (result.matched || []).some((m) => m.source === "text");
    drawTextLines($("#dialog-canvas"), info.text, byText ? wordMatcher($("#search-input").value) : null);
    $("#dialog-text").textContent = info.text && info.text.length
      ? `Text: ${info.text.map((l) => `“${l.text}”`).join(" ")}` : "";
    const facts = [info.taken_at, info.camera].filter(Boolean).join(" · ");
    // the classifier's classes, then the detector's objects: each said once
    const classes = info.labels.filter((l) => l.kind === "class").map((l) => l.label);
    const said = classes.length ? `Classes: ${classes.join(", ")}.` : "";
    const objects = info.detections.length ? ` Objects: ${summary(info.detections)}.` : "";
    // the scene regions it clearly shows (imaging.scene.SHOWN: 0.5), most probable first
    const regions = info.labels.filter((l) => l.kind === "scene" && l.score >= 0.5).map((l) => l.label);
    const scene = regions.length ? ` Scene: ${regions.join(", ")}.` : "";
    $("#dialog-labels").textContent = `${said}${objects}${scene}${facts ? ` ${facts}` : ""}`.trim() || result.labels.join(", ");
    const similar = (await api(`/api/similar/${result.id}?n=8&min_score=${SIMILAR_MIN}`)).filter((s) => s.id !== result.id);
    $("#similar-grid").replaceChildren(...similar.map((s) => photoCard(s, openPhoto)));
    $("#similar-status").textContent = similar.length ? "" : `No similar photos (similarity ${SIMILAR_MIN.toFixed(2)} or more).`;
  } catch (err) {
    $("#dialog-labels").textContent = `${result.labels.join(", ")} (${err.message})`;
  }
}

const FILTERS = ["after", "before", "camera", "folder", "label"];
const PAGE = 60; // photos per page of the library view
let browsed = 0; // photos of the library view shown so far
let lastMonth = null; // the month heading the library view showed last

// "July 2021" from a photo's EXIF date; photos without one are "Undated" (the view puts them by file time)
function monthOf(result) {
  if (!result.taken_at) return "Undated";
  const [year, month] = result.taken_at.split("-");
  const name = new Date(Number(year), Number(month) - 1, 1).toLocaleString(undefined, { month: "long" });
  return `${name} ${year}`;
}

// The form as query parameters (the query, --all, the minimum score and the filters): the page's URL
// keeps them, so a view can be bookmarked, shared and reloaded.
function formParams() {
  const params = new URLSearchParams();
  const query = $("#search-input").value.trim();
  if (query) params.set("q", query);
  if ($("#search-all").checked) params.set("all", "true");
  if ($("#search-text").checked) params.set("text", "true");
  const min = $("#search-min").value.trim();
  if (min !== "") params.set("min_score", min);
  for (const name of FILTERS) {
    const value = $(`#filter-${name}`).value.trim();
    if (value) params.set(name, value);
  }
  return params;
}

function fillForm(params) {
  $("#search-input").value = params.get("q") || "";
  $("#search-all").checked = params.get("all") === "true";
  $("#search-text").checked = params.get("text") === "true";
  $("#search-min").value = params.get("min_score") || "";
  for (const name of FILTERS) $(`#filter-${name}`).value = params.get(name) || "";
  if (FILTERS.some((name) => params.get(name))) $("#filters").open = true;
}

function show() {
  const params = formParams();
  history.replaceState(null, "", params.toString() ? `?${params}` : location.pathname);
  if (params.get("q")) search(params.get("q"));
  else browse(false);
}

// Every photo, newest first, a page at a time (no query needed).
async function browse(more) {
  const status = $("#search-status");
  const grid = $("#search-grid");
  const params = formParams();
  params.delete("q");
  params.delete("all");
  params.delete("text");
  params.delete("min_score");
  if (!more) {
    browsed = 0;
    lastMonth = null;
    grid.replaceChildren();
  }
  params.set("offset", String(browsed));
  params.set("limit", String(PAGE));
  setStatus(status, "Loading the library ...");
  try {
    const page = await api(`/api/photos?${params}`);
    // a timeline: a heading for each month, the photos of that month under it
    for (const r of page.photos) {
      const month = monthOf(r);
      if (month !== lastMonth) {
        const heading = document.createElement("li");
        heading.className = "month";
        heading.setAttribute("role", "heading");
        heading.setAttribute("aria-level", "3");
        heading.textContent = month;
        grid.append(heading);
        lastMonth = month;
      }
      grid.append(photoCard(r, openPhoto, false));
    }
    browsed += page.photos.length;
    $("#more-button").hidden = browsed >= page.total;
    const filtered = FILTERS.some((name) => params.get(name));
    const noun = page.total === 1 ? "photo" : "photos";
    const which = filtered ? ` that pass${page.total === 1 ? "es" : ""} the filters` : "";
    setStatus(status, page.total
      ? `${browsed} of ${page.total} ${noun}${which}, newest first.`
      : `No photo${filtered ? " passes the filters" : " in the library yet"}.`);
  } catch (err) {
    setStatus(status, err.message, true);
  }
}

async function search(query) {
  const status = $("#search-status");
  const grid = $("#search-grid");
  $("#more-button").hidden = true;
  setStatus(status, `Searching for “${query}” ...`);
  try {
    const params = formParams();
    params.delete("q");
    params.set("q", query);
    params.set("n", "60");
    const { body: results, headers } = await api(`/api/search?${params}`, undefined, true);
    grid.replaceChildren(...results.map((r) => photoCard(r, openPhoto)));
    const why = headers.get("x-pixelsift-message");
    const note = headers.get("x-pixelsift-note");
    const partial = results.filter((r) => r.weak && r.weak.length).length;
    const all = results.length - partial;
    const some = (n, one, many) => `${n} ${n === 1 ? one : many}`;
    const found = !partial
      ? (results.length === 1 ? "1 photo matches" : `${results.length} photos match`)
      : all
        ? `${some(all, "photo shows", "photos show")} all of it, then ${some(partial, "shows", "show")} part of`
        : `No photo shows all of it; ${some(partial, "photo shows", "photos show")} part of`;
    const text = results.length ? `${found} “${query}”.` : (why || `No photo matches “${query}”.`);
    setStatus(status, note ? `${text} (${note})` : text);
  } catch (err) {
    grid.replaceChildren();
    setStatus(status, err.message, true);
  }
}

// The library's photos that look like the photo on show (uploaded, in the library or not).
async function photosLikeThis() {
  if (!currentFile) return;
  const status = $("#search-status");
  const grid = $("#search-grid");
  $("#more-button").hidden = true;
  setStatus(status, `Looking for photos like ${currentFile.name} ...`);
  try {
    const data = new FormData();
    data.append("file", currentFile);
    const results = await api(`/api/similar?n=40&min_score=${SIMILAR_MIN}`, { method: "POST", body: data });
    grid.replaceChildren(...results.map((r) => photoCard(r, openPhoto)));
    setStatus(status, results.length
      ? `${results.length} photo${results.length === 1 ? "" : "s"} of the library like ${currentFile.name} (similarity ${SIMILAR_MIN.toFixed(2)} or more).`
      : `No photo of the library looks like ${currentFile.name} (similarity ${SIMILAR_MIN.toFixed(2)} or more).`);
    $("#search-heading").scrollIntoView({ behavior: "smooth" });
  } catch (err) {
    setStatus(status, err.message, true);
  }
}

// Groups of copies: one row of thumbnails per group, its kind and weakest similarity above it.
async function findDuplicates() {
  const status = $("#duplicates-status");
  const list = $("#duplicates-list");
  setStatus(status, "Comparing every photo with every other ...");
  try {
    const groups = await api("/api/duplicates");
    list.replaceChildren(...groups.map((group) => {
      const item = document.createElement("li");
      const title = document.createElement("p");
      title.className = "group-title";
      title.textContent = group.kind === "exact"
        ? `${group.paths.length} exact copies (the same bytes)`
        : `${group.paths.length} near duplicates (similarity ${group.similarity.toFixed(2)} or more)`;
      const grid = document.createElement("ul");
      grid.className = "grid";
      grid.append(...group.ids.map((id, k) => photoCard(
        { id, path: group.paths[k], score: group.similarity, labels: [], matched: [] },
        openPhoto,
      )));
      item.append(title, grid);
      return item;
    }));
    const photos = groups.reduce((n, g) => n + g.ids.length, 0);
    setStatus(status, groups.length
      ? `${groups.length} group${groups.length === 1 ? "" : "s"}, ${photos} photos. Nothing was deleted.`
      : "No duplicates in this library.");
  } catch (err) {
    list.replaceChildren();
    setStatus(status, err.message, true);
  }
}

// An index some photos of which no object detector has seen: say so once, above the results.
async function libraryStatus() {
  try {
    const stats = await api("/api/library");
    const when = stats.last_indexed ? new Date(stats.last_indexed * 1000).toLocaleString() : "never";
    $("#library-header").textContent = `${stats.folder || "Library"} · ${stats.photos} photo${stats.photos === 1 ? "" : "s"} · last indexed ${when}`;
    const missing = stats.without_detection;
    if (missing > 0 && stats.detector !== "none") {
      const photos = `${missing} of ${stats.photos} photo${stats.photos === 1 ? "" : "s"} ${missing === 1 ? "has" : "have"}`;
      setStatus($("#library-status"), `${photos} not been seen by an object detector: searches for objects and people rest on the classifier alone there (run \`pixelsift doctor\`, then \`pixelsift index\` again).`, true);
      $("#library-status").hidden = false;
    }
    return true;
  } catch {
    return false; // no index is served: the search says so when it is used
  }
}

// `pixelsift serve --index FOLDER`: how far the server's background indexing has got (n of N, rate,
// time left), then what its last update found; the library view is shown again after each update.
let indexUpdates = 0;

function duration(seconds) {
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  return minutes < 60 ? `${minutes} min ${seconds % 60} s` : `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

async function indexStatus() {
  let s;
  try {
    s = await api("/api/index/status");
  } catch {
    setTimeout(indexStatus, 5000);
    return;
  }
  if (s.state === "off") return; // this server does not index
  const line = $("#index-status");
  line.hidden = false;
  if (s.state === "indexing" && s.total) {
    const rate = s.rate ? `, ${s.rate.toFixed(1)} per second` : "";
    const left = s.seconds_left !== null && s.seconds_left !== undefined ? `, about ${duration(s.seconds_left)} left` : "";
    setStatus(line, `${s.folder}: ${s.step}, ${s.done} of ${s.total}${rate}${left}`);
  } else if (s.state === "watching") {
    const when = s.last_at ? new Date(s.last_at * 1000).toLocaleTimeString() : "";
    setStatus(line, `Watching ${s.folder} for new photos · last update ${when}: ${s.last}`);
  } else if (s.state === "failed") {
    setStatus(line, `Indexing ${s.folder} stopped: ${s.error}`, true);
  } else {
    setStatus(line, `Indexing ${s.folder} ...`);
  }
  if (s.updates > indexUpdates) {
    indexUpdates = s.updates;
    libraryStatus().then((served) => { if (served) show(); });
  }
  if (s.state !== "failed") setTimeout(indexStatus, s.state === "watching" ? 3000 : 1000);
}

function setUp() {
  const zone = $("#drop-zone");
  const input = $("#file-input");
  input.addEventListener("change", () => input.files.length && analyseMany(input.files));
  $("#shapes-toggle").addEventListener("change", () => currentFile && analyse(currentFile));
  $("#text-toggle").addEventListener("change", () => currentFile && analyse(currentFile));
  $("#explain-toggle").addEventListener("click", toggleExplanation);
  zone.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") { event.preventDefault(); input.click(); }
  });
  for (const name of ["dragenter", "dragover"]) {
    zone.addEventListener(name, (event) => { event.preventDefault(); zone.classList.add("dragging"); });
  }
  for (const name of ["dragleave", "drop"]) {
    zone.addEventListener(name, () => zone.classList.remove("dragging"));
  }
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    if (event.dataTransfer.files.length) analyseMany(event.dataTransfer.files);
  });
  $("#search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    show();
  });
  $("#more-button").addEventListener("click", () => browse(true));
  // arrow keys move between the photos of a grid, Home and End to its first and last
  document.addEventListener("keydown", (event) => {
    const card = event.target.closest && event.target.closest(".grid li button");
    if (!card) return;
    const cards = [...card.closest(".grid").querySelectorAll("li button")];
    const at = cards.indexOf(card);
    const perRow = Math.max(1, Math.round(card.closest(".grid").clientWidth / card.closest("li").offsetWidth));
    const to = { ArrowRight: at + 1, ArrowLeft: at - 1, ArrowDown: at + perRow, ArrowUp: at - perRow,
      Home: 0, End: cards.length - 1 }[event.key];
    if (to === undefined) return;
    event.preventDefault();
    cards[Math.max(0, Math.min(cards.length - 1, to))].focus();
  });
  fillForm(new URLSearchParams(location.search));
  $("#duplicates-button").addEventListener("click", findDuplicates);
  $("#like-this").addEventListener("click", photosLikeThis);
  loadModels();
  libraryStatus().then((served) => { if (served) show(); });
  indexStatus();
}

document.addEventListener("DOMContentLoaded", setUp);

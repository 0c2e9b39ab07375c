// Tessera: the mosaic form. Drop or pick a target and tiles, preview them, estimate the output, then
// upload with a progress read-out and go to the job page. Everything is checked again by the API.
"use strict";

(() => {
  const form = document.getElementById("mosaic-form");
  if (!form) return;
  form.noValidate = true; // this script checks the form and keeps the files itself

  const $ = (id) => document.getElementById(id);
  const button = $("submit");
  const errorBox = $("form-error");
  const statusEl = $("submit-status");
  const targetInput = $("target");
  const targetPreview = $("target-preview");
  const targetThumb = $("target-thumb");
  const tilesInput = $("tiles");
  const tileList = $("tile-list");
  const tilesCount = $("tiles-count");
  const tilesClear = $("tiles-clear");
  const urlsBox = $("tile_urls");
  const gridInput = $("grid");
  const tilePxInput = $("tile_px");
  const blendInput = $("blend");
  const blendValue = $("blend-value");
  const seedInput = $("seed");
  const estimateEl = $("estimate");
  const buttonLabel = button ? button.textContent : "";

  const data = form.dataset;
  const limits = {
    maxTiles: Number(data.maxTiles) || Infinity,
    maxCells: Number(data.maxCells) || Infinity,
    maxSide: Number(data.maxCellsPerSide) || Infinity,
    maxPixels: Number(data.maxOutputPixels) || Infinity,
    maxUploadBytes: (Number(data.maxUploadMb) || Infinity) * 1048576,
  };
  // Typical size of a JPEG mosaic at quality 90: detailed tiles compress less than a photo.
  const JPEG_BYTES_PER_PIXEL = 0.35;
  const GRID = /^\s*(\d{1,5})\s*(?:[xX×]\s*(\d{1,5}))?\s*$/;

  let target = null; // {file, url, width, height}
  const tiles = []; // {kind: "file", file, url} | {kind: "url", url}

  // ---- messages -------------------------------------------------------------------------------

  function showError(message, code) {
    if (!errorBox) return;
    errorBox.replaceChildren();
    const title = document.createElement("strong");
    title.textContent = "The mosaic was not started";
    const text = document.createElement("p");
    text.textContent = message;
    errorBox.append(title, text);
    if (code) {
      const small = document.createElement("p");
      small.className = "error-code";
      small.textContent = `Error code: ${code}`;
      errorBox.append(small);
    }
    errorBox.hidden = false;
    errorBox.scrollIntoView({ block: "nearest", behavior: "smooth" });
  }

  function clearError() {
    if (!errorBox) return;
    errorBox.replaceChildren();
    errorBox.hidden = true;
  }

  function setStatus(text) {
    if (statusEl) statusEl.textContent = text;
  }

  function setBusy(busy) {
    if (button) {
      button.disabled = busy;
      button.textContent = busy ? "Uploading…" : buttonLabel;
    }
    form.setAttribute("aria-busy", busy ? "true" : "false");
    if (!busy) setStatus("");
  }

  function formatBytes(n) {
    if (n >= 1048576) return `${(n / 1048576).toFixed(1)} MB`;
    return `${Math.max(1, Math.round(n / 1024))} kB`;
  }

  // ---- target photo ---------------------------------------------------------------------------

  function setTarget(file) {
    if (target) URL.revokeObjectURL(target.url);
    target = null;
    if (targetPreview) targetPreview.hidden = true;
    if (file) {
      if (file.size > limits.maxUploadBytes) {
        showError(`${file.name} is ${formatBytes(file.size)}, over the limit of ${formatBytes(limits.maxUploadBytes)}.`);
        if (targetInput) targetInput.value = "";
      } else {
        target = { file, url: URL.createObjectURL(file), width: 0, height: 0 };
        const shown = target;
        if (targetThumb) {
          targetThumb.onload = () => {
            shown.width = targetThumb.naturalWidth;
            shown.height = targetThumb.naturalHeight;
            const size = $("target-size");
            if (size) size.textContent = `${shown.width} × ${shown.height} px, ${formatBytes(file.size)}`;
            updateEstimate();
          };
          targetThumb.src = target.url;
        }
        const name = $("target-name");
        if (name) name.textContent = file.name;
        if (targetPreview) targetPreview.hidden = false;
      }
    }
    updateEstimate();
  }

  function putInInput(input, file) {
    // A dropped file goes into the input too, so the form without this script would send it.
    try {
      const transfer = new DataTransfer();
      transfer.items.add(file);
      input.files = transfer.files;
    } catch (err) {
      /* older browsers: the script's own state is enough */
    }
  }

  if (targetInput) targetInput.addEventListener("change", () => setTarget(targetInput.files[0] || null));
  const targetRemove = $("target-remove");
  if (targetRemove) {
    targetRemove.addEventListener("click", () => {
      if (targetInput) targetInput.value = "";
      setTarget(null);
    });
  }

  // ---- tiles ----------------------------------------------------------------------------------

  function tileName(tile) {
    return tile.kind === "file" ? tile.file.name : tile.url;
  }

  function addTileFiles(files) {
    const skipped = [];
    for (const file of files) {
      if (file.size > limits.maxUploadBytes || (file.type && !file.type.startsWith("image/"))) {
        skipped.push(file.name);
        continue;
      }
      tiles.push({ kind: "file", file, url: URL.createObjectURL(file) });
    }
    if (skipped.length) {
      showError(`Skipped ${skipped.length} file(s) that are not images or are over ${formatBytes(limits.maxUploadBytes)}: `
        + skipped.slice(0, 5).join(", ") + (skipped.length > 5 ? ", …" : ""));
    }
    renderTiles();
  }

  function parseUrls(text) {
    const good = [];
    const bad = [];
    for (const raw of text.split(/\r?\n/)) {
      const line = raw.trim();
      if (!line) continue;
      let ok = false;
      try {
        const url = new URL(line);
        ok = url.protocol === "http:" || url.protocol === "https:";
      } catch (err) {
        ok = false;
      }
      (ok ? good : bad).push(line);
    }
    return { good, bad };
  }

  function addUrls() {
    if (!urlsBox) return true;
    const { good, bad } = parseUrls(urlsBox.value);
    for (const url of good) tiles.push({ kind: "url", url });
    urlsBox.value = bad.join("\n");
    renderTiles();
    if (bad.length) {
      showError(`These lines are not http(s) URLs: ${bad.slice(0, 3).join(", ")}${bad.length > 3 ? ", …" : ""}`);
      return false;
    }
    return true;
  }

  function removeTile(index) {
    const [tile] = tiles.splice(index, 1);
    if (tile && tile.kind === "file") URL.revokeObjectURL(tile.url);
    renderTiles();
  }

  function tileItem(tile, index) {
    const item = document.createElement("li");
    item.className = `tile-item tile-${tile.kind}`;
    if (tile.kind === "file") {
      const img = document.createElement("img");
      img.src = tile.url;
      img.alt = "";
      img.loading = "lazy";
      img.decoding = "async";
      item.append(img);
    } else {
      const chip = document.createElement("span");
      chip.className = "url-chip";
      chip.textContent = "URL";
      item.append(chip);
    }
    const name = document.createElement("span");
    name.className = "tile-name";
    name.textContent = tileName(tile);
    name.title = tileName(tile);
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "tile-remove";
    remove.dataset.index = String(index);
    remove.setAttribute("aria-label", `Remove ${tileName(tile)}`);
    remove.textContent = "×";
    item.append(name, remove);
    return item;
  }

  function renderTiles() {
    if (tileList) tileList.replaceChildren(...tiles.map(tileItem));
    const files = tiles.filter((t) => t.kind === "file").length;
    const urls = tiles.length - files;
    if (tilesCount) {
      const parts = [];
      if (files) parts.push(`${files} file${files === 1 ? "" : "s"}`);
      if (urls) parts.push(`${urls} URL${urls === 1 ? "" : "s"}`);
      tilesCount.textContent = tiles.length
        ? `${tiles.length} tile${tiles.length === 1 ? "" : "s"} (${parts.join(", ")})` : "";
      tilesCount.classList.toggle("over", tiles.length > limits.maxTiles);
      if (tiles.length > limits.maxTiles) tilesCount.textContent += ` — over the limit of ${limits.maxTiles}`;
    }
    if (tilesClear) tilesClear.hidden = tiles.length === 0;
  }

  if (tilesInput) {
    tilesInput.addEventListener("change", () => {
      addTileFiles(Array.from(tilesInput.files || []));
      tilesInput.value = ""; // the list above holds them; the same files may be added again
    });
  }
  if (tileList) {
    tileList.addEventListener("click", (event) => {
      const remove = event.target.closest(".tile-remove");
      if (remove) removeTile(Number(remove.dataset.index));
    });
  }
  if (tilesClear) {
    tilesClear.addEventListener("click", () => {
      while (tiles.length) removeTile(tiles.length - 1);
    });
  }
  const addUrlsButton = $("add-urls");
  if (addUrlsButton) addUrlsButton.addEventListener("click", () => { clearError(); addUrls(); });

  // ---- drag and drop --------------------------------------------------------------------------

  function dropZone(zone, onFiles) {
    if (!zone) return;
    const on = (event) => {
      event.preventDefault();
      zone.classList.add("dragover");
    };
    zone.addEventListener("dragenter", on);
    zone.addEventListener("dragover", on);
    zone.addEventListener("dragleave", () => zone.classList.remove("dragover"));
    zone.addEventListener("drop", (event) => {
      event.preventDefault();
      zone.classList.remove("dragover");
      const files = Array.from((event.dataTransfer && event.dataTransfer.files) || []);
      if (files.length) {
        clearError();
        onFiles(files);
      }
    });
  }

  dropZone($("target-drop"), (files) => {
    const file = files.find((f) => !f.type || f.type.startsWith("image/")) || files[0];
    if (targetInput) putInInput(targetInput, file);
    setTarget(file);
  });
  dropZone($("tiles-drop"), addTileFiles);
  // A file dropped beside a zone must not make the browser leave the page.
  window.addEventListener("dragover", (event) => event.preventDefault());
  window.addEventListener("drop", (event) => event.preventDefault());

  // ---- output estimate ------------------------------------------------------------------------

  function gridFor() {
    const match = GRID.exec(gridInput ? gridInput.value : "");
    if (!match) return null;
    const cols = Number(match[1]);
    let rows = Number(match[2] || 0);
    if (!rows && target && target.width) rows = Math.max(1, Math.round((cols * target.height) / target.width));
    return { cols, rows };
  }

  function updateEstimate() {
    if (blendValue && blendInput) blendValue.textContent = `${blendInput.value}%`;
    if (!estimateEl) return;
    estimateEl.classList.remove("over");
    const grid = gridFor();
    const px = Number(tilePxInput ? tilePxInput.value : 0);
    if (!grid) {
      estimateEl.textContent = "Grid: write COLSxROWS (e.g. 48x32) or one number of columns.";
      estimateEl.classList.add("over");
      return;
    }
    if (!Number.isInteger(px) || px <= 0) {
      estimateEl.textContent = "Tile size: a whole number of pixels.";
      estimateEl.classList.add("over");
      return;
    }
    if (!grid.rows) {
      estimateEl.textContent = `Output ${(grid.cols * px).toLocaleString()} px wide; add a target photo to see its height.`;
      return;
    }
    const width = grid.cols * px;
    const height = grid.rows * px;
    const pixels = width * height;
    const megabytes = (pixels * JPEG_BYTES_PER_PIXEL) / 1e6;
    let text = `Output ${width.toLocaleString()} × ${height.toLocaleString()} px `
      + `(${(pixels / 1e6).toFixed(1)} megapixels), about ${megabytes < 0.1 ? "0.1" : megabytes.toFixed(1)} MB as JPEG; `
      + `${grid.cols} × ${grid.rows} = ${(grid.cols * grid.rows).toLocaleString()} tiles placed.`;
    const problems = [];
    if (Math.max(grid.cols, grid.rows) > limits.maxSide) problems.push(`at most ${limits.maxSide} cells per side`);
    if (grid.cols * grid.rows > limits.maxCells) problems.push(`at most ${limits.maxCells.toLocaleString()} cells`);
    if (pixels > limits.maxPixels) problems.push(`at most ${Math.floor(limits.maxPixels / 1e6)} megapixels`);
    if (problems.length) {
      text += ` Too large: ${problems.join(", ")}.`;
      estimateEl.classList.add("over");
    }
    estimateEl.textContent = text;
  }

  for (const input of [gridInput, tilePxInput, blendInput]) {
    if (input) input.addEventListener("input", updateEstimate);
  }

  // ---- submit ---------------------------------------------------------------------------------

  function upload(body) {
    // XHR rather than fetch: it reports upload progress, which matters for a few hundred tiles.
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", form.action);
      xhr.setRequestHeader("Accept", "application/json");
      xhr.upload.addEventListener("progress", (event) => {
        if (event.lengthComputable) setStatus(`Uploading… ${Math.floor((100 * event.loaded) / event.total)}%`);
      });
      xhr.addEventListener("load", () => {
        let payload = null;
        try {
          payload = JSON.parse(xhr.responseText);
        } catch (err) {
          payload = null;
        }
        resolve({ status: xhr.status, statusText: xhr.statusText, data: payload });
      });
      xhr.addEventListener("error", () => reject(new Error("network")));
      xhr.send(body);
    });
  }

  function problem() {
    if (!target) return "Add a target photo: the picture the mosaic will look like.";
    if (!tiles.length && !friendsHandle()) return "Add at least one tile picture (files or URLs) or a friends' handle.";
    if (tiles.length > limits.maxTiles) return `${tiles.length} tiles is over the limit of ${limits.maxTiles}.`;
    return null;
  }

  // The friends fields go as they are: the server checks the handle's form per network.
  function friendsHandle() {
    const input = $("friends_handle");
    return input ? input.value.trim() : "";
  }

  const handleExamples = { bluesky: "alice.bsky.social", mastodon: "alice@example.social", github: "alice" };
  const networkSelect = $("friends_network");
  if (networkSelect && $("friends_handle")) {
    networkSelect.addEventListener("change", () => {
      $("friends_handle").placeholder = handleExamples[networkSelect.value] || "";
    });
  }

  function appendFriends(body) {
    if (!friendsHandle()) return;
    body.append("friends_handle", friendsHandle());
    for (const name of ["friends_network", "friends_lists", "friends_max"]) {
      const input = $(name);
      if (input && input.value !== "") body.append(name, input.value);
    }
    const self = $("friends_include_self");
    if (self && self.checked) body.append("friends_include_self", "1");
  }

  function formBody() {
    const body = new FormData();
    body.append("target", target.file, target.file.name);
    for (const tile of tiles) {
      if (tile.kind === "file") body.append("tiles", tile.file, tile.file.name);
    }
    body.append("tile_urls", tiles.filter((t) => t.kind === "url").map((t) => t.url).join("\n"));
    body.append("grid", gridInput ? gridInput.value : "");
    body.append("tile_px", tilePxInput ? tilePxInput.value : "");
    if (blendInput) body.append("blend", blendInput.value);
    if (seedInput && seedInput.value !== "") body.append("seed", seedInput.value);
    appendFriends(body);
    return body;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (button && button.disabled) return;
    clearError();
    if (!addUrls()) return; // URLs left in the box count too
    const wrong = problem();
    if (wrong) {
      showError(wrong);
      return;
    }
    setBusy(true);
    setStatus("Uploading…");
    let reply;
    try {
      reply = await upload(formBody());
    } catch (err) {
      setBusy(false);
      showError("Could not reach the server. Please check your connection and try again.");
      return;
    }
    const payload = reply.data;
    if (reply.status === 202 && payload && typeof payload.page_url === "string" && payload.page_url) {
      setStatus("Uploaded, opening your mosaic…");
      if (button) button.textContent = "Opening…";
      location.assign(payload.page_url);
      return;
    }
    setBusy(false);
    const error = payload && payload.error;
    if (error && typeof error.message === "string" && error.message) {
      showError(error.message, typeof error.code === "string" ? error.code : "");
    } else {
      showError(`Something went wrong (HTTP ${reply.status}${reply.statusText ? " " + reply.statusText : ""}). `
        + "Please try again.");
    }
  });

  // Back from the job page, the page may come from the bfcache with the button still disabled.
  window.addEventListener("pageshow", () => setBusy(false));

  // The browser may have kept a chosen target across a reload.
  if (targetInput && targetInput.files && targetInput.files[0]) setTarget(targetInput.files[0]);
  renderTiles();
  updateEstimate();
})();

// Tessera: poll a mosaic job's status and show progress, then the finished mosaic in a zoomable viewer
// (OpenSeadragon, vendored) whose tiles name the picture they are made of.
"use strict";

(() => {
  const job = document.getElementById("job");
  if (!job) return;
  const statusUrl = job.dataset.statusUrl;
  if (!statusUrl) return;

  const $ = (id) => document.getElementById(id);
  const stateEl = $("state");
  const progressEl = $("progress");
  const percentEl = $("percent");
  const stageEl = $("stage");
  const errorEl = $("error");
  const resultEl = $("result");
  const viewerEl = $("viewer");
  const mosaicEl = $("mosaic");
  const downloadEl = $("download");
  const elapsedEl = $("elapsed");
  const colourEl = $("colour");
  const connectionEl = $("connection");
  const tipEl = $("tile-tip");
  const labelEl = $("tile-label");
  const whichEl = $("tile-which");
  const hintEl = $("tile-hint");
  const placeEl = $("queue-place");
  const profileEl = $("tile-profile");
  const friendsEl = $("friends-counts");

  const BASE_DELAY = 1000;
  const MAX_DELAY = 5000;
  const STATES = ["queued", "running", "done", "failed", "canceled", "missing"];

  let delay = BASE_DELAY;
  let stopped = false;
  let timer = null;

  function setText(el, text) {
    if (el) el.textContent = text;
  }

  function setStateClass(state) {
    for (const s of STATES) job.classList.remove(`state-${s}`);
    job.classList.add(`state-${state}`);
  }

  function clampFraction(x) {
    const n = Number(x);
    if (!Number.isFinite(n)) return 0;
    return Math.min(1, Math.max(0, n));
  }

  function setProgress(fraction) {
    const f = clampFraction(fraction);
    const pct = Math.floor(f * 100);
    if (progressEl) {
      progressEl.value = f;
      progressEl.textContent = `${pct}%`;
    }
    setText(percentEl, `${pct}%`);
    return pct;
  }

  function showConnectionProblem(show) {
    if (connectionEl) connectionEl.hidden = !show;
  }

  function stop() {
    stopped = true;
    if (timer !== null) clearTimeout(timer);
    timer = null;
    showConnectionProblem(false);
  }

  function schedule(ms) {
    if (stopped) return;
    timer = setTimeout(poll, ms);
  }

  // ---- cancel: only the browser that made the job may (its cookie); anyone else is told so --------

  const cancelEl = $("cancel");
  const cancelStatusEl = $("cancel-status");

  function showCancel(state) {
    if (cancelEl) cancelEl.hidden = !(state === "queued" || state === "running");
  }

  function setUpCancel() {
    if (!cancelEl) return;
    cancelEl.addEventListener("click", async () => {
      cancelEl.disabled = true;
      let response = null;
      try {
        response = await fetch(`${statusUrl}/cancel`, { method: "POST", credentials: "same-origin",
                                                        headers: { Accept: "application/json" } });
      } catch (err) {
        response = null;
      }
      if (response && response.status === 202) setText(cancelStatusEl, "Canceling…");
      else if (response && response.status === 404) setText(cancelStatusEl, "Only the browser that made this mosaic can cancel it.");
      else if (!response || response.status !== 409) setText(cancelStatusEl, "Could not cancel; try again.");
      cancelEl.disabled = false;
      if (!stopped) {
        if (timer !== null) clearTimeout(timer);
        poll();
      }
    });
  }

  // ---- share ----------------------------------------------------------------------------------

  function setUpShare() {
    const box = $("share");
    const field = $("share-url");
    const copy = $("copy-link");
    const note = $("copy-status");
    if (!box || !field) return;
    field.value = location.origin + location.pathname;
    box.hidden = false;
    field.addEventListener("focus", () => field.select());
    if (!copy) return;
    copy.addEventListener("click", async () => {
      try {
        await navigator.clipboard.writeText(field.value);
      } catch (err) {
        field.select(); // no clipboard permission (or no secure context): the old way
        document.execCommand("copy");
      }
      setText(note, "Link copied");
      setTimeout(() => setText(note, ""), 2500);
    });
  }

  // ---- which picture is this tile? -------------------------------------------------------------

  let tileMap = null; // map.json: {cols, rows, width, height, labels, cells}

  function validMap(data) {
    return data && Number.isInteger(data.cols) && Number.isInteger(data.rows) && data.cols > 0 && data.rows > 0
      && Array.isArray(data.labels) && Array.isArray(data.cells) && data.cells.length === data.cols * data.rows
      && Number(data.width) > 0 && Number(data.height) > 0;
  }

  async function loadTileMap(url) {
    try {
      const response = await fetch(url, { credentials: "same-origin" });
      const data = response.ok ? await response.json() : null;
      if (!validMap(data)) return;
      tileMap = data;
      if (resultEl) resultEl.dataset.tilemap = "ready";
    } catch (err) {
      /* the mosaic still shows; only the tile names are missing */
    }
  }

  // The cell under image pixel (x, y): {col, row, label}, or null outside the mosaic.
  function cellAt(x, y) {
    const map = tileMap;
    if (!map || !(x >= 0 && y >= 0 && x < map.width && y < map.height)) return null;
    const col = Math.min(map.cols - 1, Math.floor((x * map.cols) / map.width));
    const row = Math.min(map.rows - 1, Math.floor((y * map.rows) / map.height));
    const label = describe(map.labels[map.cells[row * map.cols + col]]);
    return label ? { col, row, label } : null;
  }

  // A map.json label as {text, profile}: a file name or URL (a string), or a friend's {name, handle,
  // profile_url}, shown as "Name (@handle)" and linked only when its profile is an http(s) URL.
  function describe(label) {
    if (typeof label === "string") return { text: label, profile: "" };
    if (!label || typeof label !== "object" || typeof label.handle !== "string" || !label.handle) return null;
    const name = typeof label.name === "string" ? label.name : "";
    const text = name && name !== label.handle ? `${name} (@${label.handle})` : `@${label.handle}`;
    return { text, profile: httpUrl(label.profile_url) };
  }

  function httpUrl(value) {
    if (typeof value !== "string") return "";
    try {
      const url = new URL(value);
      return url.protocol === "https:" || url.protocol === "http:" ? url.href : "";
    } catch (err) {
      return "";
    }
  }

  let named = null; // "col,row" of the tile named last: a click on it opens its profile

  // A click (or a second tap) on the tile already named opens the friend's profile, through the caption's
  // link (target _blank, rel="noopener noreferrer"); a first tap only names it.
  function openIfNamed(before, cell) {
    if (cell && cell.label.profile && profileEl && before === `${cell.col},${cell.row}`) profileEl.click();
  }

  // Show the label at (left, top) pixels inside the viewer frame, or hide it.
  function showLabel(cell, left, top) {
    if (cell === null) {
      if (tipEl) tipEl.hidden = true;
      return;
    }
    const label = cell.label;
    named = `${cell.col},${cell.row}`;
    setText(labelEl, label.text);
    if (profileEl) {
      profileEl.hidden = !label.profile;
      if (label.profile) profileEl.href = label.profile;
      else profileEl.removeAttribute("href");
    }
    if (whichEl) whichEl.hidden = false;
    if (hintEl) hintEl.hidden = true;
    if (!tipEl) return;
    tipEl.textContent = label.text;
    tipEl.hidden = false;
    const frame = tipEl.parentElement;
    const flip = frame && left > frame.clientWidth / 2;
    tipEl.style.left = `${left}px`;
    tipEl.style.top = `${top}px`;
    tipEl.classList.toggle("flip", Boolean(flip));
  }

  function hideTip() {
    if (tipEl) tipEl.hidden = true;
  }

  // ---- the finished mosaic ----------------------------------------------------------------------

  function openViewer(dziUrl, fallbackUrl) {
    viewerEl.hidden = false;
    // OpenSeadragon injects an inline <style> (one focus rule, kept in style.css) unless
    // `style[data-openseadragon-mobile-css]` matches. Any real <style> here is an inline style the CSP
    // refuses (and reports), so the marker is a "style" element of another namespace: matched, never applied.
    if (!document.querySelector("style[data-openseadragon-mobile-css]")) {
      const marker = document.createElementNS("urn:x-tessera:marker", "style");
      marker.setAttribute("data-openseadragon-mobile-css", "in style.css");
      document.head.append(marker);
    }
    const viewer = window.OpenSeadragon({
      element: viewerEl,
      prefixUrl: job.dataset.osdImages,
      tileSources: dziUrl,
      drawer: "canvas",
      showNavigator: true,
      navigatorPosition: "BOTTOM_RIGHT",
      showRotationControl: false,
      showFullPageControl: true,
      visibilityRatio: 1,
      constrainDuringPan: true,
      maxZoomPixelRatio: 4,
      gestureSettingsTouch: { clickToZoom: false }, // a tap names the tile instead
    });
    viewer.addHandler("open", () => {
      viewerEl.dataset.state = "open";
      const image = viewer.world.getItemAt(0);
      if (image) {
        image.addHandler("fully-loaded-change", (event) => {
          viewerEl.dataset.loaded = event.fullyLoaded ? "yes" : "no";
        });
      }
    });
    viewer.addHandler("open-failed", () => {
      viewer.destroy();
      viewerEl.hidden = true;
      showImage(fallbackUrl);
    });
    viewer.addHandler("zoom", (event) => {
      viewerEl.dataset.zoom = Number(event.zoom).toFixed(4);
    });
    const outline = document.createElement("div");
    outline.className = "cell-outline";
    let outlined = null;
    const outlineCell = (cell) => {
      const key = cell ? `${cell.col},${cell.row}` : null;
      if (key === outlined) return;
      if (!cell) {
        viewer.removeOverlay(outline);
      } else {
        const w = tileMap.width / tileMap.cols;
        const h = tileMap.height / tileMap.rows;
        const rect = viewer.viewport.imageToViewportRectangle(cell.col * w, cell.row * h, w, h);
        if (outlined === null) viewer.addOverlay({ element: outline, location: rect });
        else viewer.updateOverlay(outline, rect);
      }
      outlined = key;
    };
    const pointAt = (position) => {
      const point = viewer.viewport.viewerElementToImageCoordinates(position);
      const cell = cellAt(point.x, point.y);
      showLabel(cell, position.x, position.y);
      outlineCell(cell);
      return cell;
    };
    // A tracker of our own on the canvas: the viewer's own handlers (pan, zoom) keep working.
    new window.OpenSeadragon.MouseTracker({
      element: viewer.canvas,
      moveHandler: (event) => pointAt(event.position),
      leaveHandler: () => {
        hideTip();
        outlineCell(null);
      },
    });
    viewer.addHandler("canvas-click", (event) => {
      if (!event.quick) return;
      const before = named;
      openIfNamed(before, pointAt(event.position));
    });
  }

  function showImage(url) {
    if (!mosaicEl || !url) return;
    mosaicEl.src = url;
    mosaicEl.hidden = false;
    const pointAt = (event) => {
      const box = mosaicEl.getBoundingClientRect();
      if (!tileMap || box.width === 0) return;
      const x = ((event.clientX - box.left) * tileMap.width) / box.width;
      const y = ((event.clientY - box.top) * tileMap.height) / box.height;
      const cell = cellAt(x, y);
      showLabel(cell, event.clientX - box.left, event.clientY - box.top);
      return cell;
    };
    mosaicEl.addEventListener("pointermove", pointAt);
    mosaicEl.addEventListener("click", (event) => {
      const before = named;
      openIfNamed(before, pointAt(event));
    });
    mosaicEl.addEventListener("pointerleave", hideTip);
  }

  function showResult(data) {
    const resultUrl = typeof data.result_url === "string" ? data.result_url : "";
    const dziUrl = typeof data.dzi_url === "string" ? data.dzi_url : "";
    if (resultUrl && downloadEl) {
      downloadEl.href = resultUrl;
      downloadEl.setAttribute("download", `mosaic-${job.dataset.jobId || "tessera"}${resultUrl.slice(resultUrl.lastIndexOf("."))}`);
    } else if (downloadEl) {
      downloadEl.hidden = true;
    }
    if (typeof data.tilemap_url === "string" && data.tilemap_url) loadTileMap(data.tilemap_url);
    else if (hintEl) hintEl.hidden = true;
    // Shown before the viewer opens: a viewer made inside a hidden block measures itself 1 px square, and its
    // first view, kept through the resize that follows, then crops a square mosaic in the wide frame.
    if (resultEl) resultEl.hidden = false;
    if (dziUrl && viewerEl && typeof window.OpenSeadragon === "function") openViewer(dziUrl, resultUrl);
    else showImage(resultUrl);
    showColour(data.details);
  }

  // The colour correction used, and how far it moved the tiles from their own colours (the job's details).
  function showColour(details) {
    if (!colourEl || !details || !Number.isFinite(Number(details.blend))) return;
    const blend = Number(details.blend);
    const moved = Number(details.tile_fidelity_de);
    let text = `Colour blend ${blend}%`;
    if (blend === 0) text += ": the tiles keep their own colours.";
    else if (Number.isFinite(moved)) text += `: tiles moved ΔE ${moved.toFixed(1)} from their own colours on average.`;
    setText(colourEl, text);
    colourEl.hidden = false;
  }

  // ---- the poll ---------------------------------------------------------------------------------

  function errorMessage(data) {
    if (typeof data.error === "string" && data.error) return data.error;
    if (data.error && typeof data.error.message === "string" && data.error.message) return data.error.message;
    return "The mosaic could not be built.";
  }

  // A queued job's place: its position (1 = next to start) and, when the server can tell, the time to done.
  function showPlace(data) {
    if (!placeEl) return;
    const position = Number(data.position);
    if (data.state !== "queued" || !Number.isInteger(position) || position < 1) {
      placeEl.hidden = true;
      return;
    }
    let text = position === 1 ? "Next in line" : `Number ${position} in line`;
    const eta = data.eta === null || data.eta === undefined ? NaN : Number(data.eta);
    if (Number.isFinite(eta) && eta >= 0) text += `, done in about ${formatSeconds(eta)}`;
    placeEl.textContent = `${text}.`;
    placeEl.hidden = false;
  }

  function formatSeconds(seconds) {
    if (seconds < 60) return `${Math.max(1, Math.round(seconds))} s`;
    if (seconds < 3600) return `${Math.round(seconds / 60)} min`;
    return `${(seconds / 3600).toFixed(1)} h`;
  }

  // A friends job's gathering: accounts listed, pictures kept, skipped by reason (live, and kept once done).
  const NETWORKS = { bluesky: "Bluesky", mastodon: "Mastodon", github: "GitHub" };
  function showFriends(counts) {
    if (!friendsEl) return;
    if (!counts || typeof counts !== "object" || typeof counts.handle !== "string") {
      friendsEl.hidden = true;
      return;
    }
    const skipped = counts.skipped && typeof counts.skipped === "object" ? counts.skipped : {};
    const reasons = Object.keys(skipped).filter((k) => Number(skipped[k]) > 0)
      .map((k) => `${Number(skipped[k])} ${k.replace(/_/g, " ")}`);
    const total = reasons.length ? Object.values(skipped).reduce((a, b) => a + Number(b), 0) : 0;
    let text = `Friends of ${counts.handle} on ${NETWORKS[counts.network] || counts.network}: `
      + `${Number(counts.listed) || 0} listed, ${Number(counts.pictures) || 0} pictures, ${total} skipped`;
    if (reasons.length) text += ` (${reasons.join(", ")})`;
    if (Number(counts.rate_limit_waits) > 0) text += `; waited ${Number(counts.waited_s)} s for rate limits`;
    if (Array.isArray(counts.notes) && counts.notes.length) text += `; ${counts.notes.join("; ")}`;
    friendsEl.textContent = `${text}.`;
    friendsEl.hidden = false;
  }

  function render(data) {
    const state = typeof data.state === "string" ? data.state : "queued";
    setStateClass(state);
    showPlace(data);
    showFriends(data.friends);
    showCancel(state);
    const stage = typeof data.stage === "string" ? data.stage : "";

    switch (state) {
      case "queued": {
        setProgress(data.progress);
        setText(stateEl, "Waiting in the queue");
        setText(stageEl, stage);
        break;
      }
      case "running": {
        const pct = setProgress(data.progress);
        setText(stateEl, `Building… ${pct}%`);
        setText(stageEl, stage);
        break;
      }
      case "done": {
        setProgress(1);
        setText(stateEl, "Done");
        setText(stageEl, "");
        const created = Number(data.created_at);
        const finished = Number(data.finished_at);
        if (data.created_at != null && data.finished_at != null &&
            Number.isFinite(created) && Number.isFinite(finished)) {
          const secs = Math.max(0, finished - created);
          setText(elapsedEl, `Built in ${secs.toFixed(1)} s`);
        }
        if (errorEl) errorEl.hidden = true;
        showResult(data);
        stop();
        return;
      }
      case "canceled": {
        setText(stateEl, "Canceled");
        setText(stageEl, "");
        setText(cancelStatusEl, "");
        stop();
        return;
      }
      case "failed": {
        setText(stateEl, "Failed");
        setText(stageEl, stage);
        setText(errorEl, errorMessage(data));
        if (errorEl) errorEl.hidden = false;
        stop();
        return;
      }
      default: {
        setText(stateEl, state);
        setText(stageEl, stage);
        setProgress(data.progress);
      }
    }
  }

  function retryLater() {
    showConnectionProblem(true);
    const wait = delay;
    delay = Math.min(MAX_DELAY, delay * 2);
    schedule(wait);
  }

  async function poll() {
    timer = null;
    if (stopped) return;
    let response;
    try {
      response = await fetch(statusUrl, {
        cache: "no-store",
        headers: { Accept: "application/json" },
        credentials: "same-origin",
      });
    } catch (err) {
      retryLater();
      return;
    }

    if (response.status === 404) {
      setStateClass("missing");
      setText(stateEl, "No such mosaic (it may have expired)");
      setText(stageEl, "");
      if (progressEl) progressEl.hidden = true;
      if (percentEl) percentEl.hidden = true;
      const share = $("share");
      if (share) share.hidden = true;
      stop();
      return;
    }

    if (!response.ok) {
      retryLater();
      return;
    }

    let data;
    try {
      data = await response.json();
    } catch (err) {
      retryLater();
      return;
    }
    if (!data || typeof data !== "object") {
      retryLater();
      return;
    }

    showConnectionProblem(false);
    delay = BASE_DELAY;
    render(data);
    schedule(delay);
  }

  setUpShare();
  setUpCancel();
  poll();
})();

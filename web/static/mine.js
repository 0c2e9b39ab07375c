// Tessera: "My mosaics". Local times, a refresh while some of the mosaics are still being built, and delete.
"use strict";

(() => {
  const list = document.getElementById("mine-list");
  if (!list) return;
  const REFRESH_MS = 3000;
  const FINAL = ["done", "failed", "canceled"];
  const LABELS = { queued: "Waiting in the queue", running: "Building…", done: "Done", failed: "Failed",
                   canceled: "Canceled" };
  const statusEl = document.getElementById("mine-status");

  // Delete: the result, its zoomable view, the uploads and the entry here (a running job is canceled first).
  async function remove(button) {
    const id = button.dataset.id;
    if (!id || !window.confirm("Delete this mosaic and its pictures for good?")) return;
    button.disabled = true;
    let response = null;
    try {
      response = await fetch(`/api/mosaics/${encodeURIComponent(id)}`, { method: "DELETE",
                                                                     credentials: "same-origin" });
    } catch (err) {
      response = null;
    }
    if (response && (response.status === 204 || response.status === 404)) {  // 404: gone already
      const item = button.closest(".mine-item");
      if (item) item.remove();
      if (statusEl) statusEl.textContent = "Deleted.";
    } else {
      button.disabled = false;
      if (statusEl) statusEl.textContent = "Could not delete it; try again.";
    }
  }

  list.addEventListener("click", (event) => {
    const button = event.target instanceof Element ? event.target.closest(".mine-delete") : null;
    if (button) remove(button);
  });

  function showTimes() {
    for (const time of list.querySelectorAll("time[data-created]")) {
      const seconds = Number(time.dataset.created);
      if (!time.dataset.created || !Number.isFinite(seconds)) continue;
      const when = new Date(seconds * 1000);
      time.dateTime = when.toISOString();
      time.textContent = when.toLocaleString();
    }
  }

  function showStates() {
    for (const item of list.querySelectorAll(".mine-item")) {
      const state = item.querySelector(".mine-state");
      const key = Array.from(item.classList).find((c) => c.startsWith("state-"));
      if (state && key) state.textContent = LABELS[key.slice(6)] || key.slice(6);
    }
  }

  function update(item, mosaic) {
    for (const c of Array.from(item.classList)) if (c.startsWith("state-")) item.classList.remove(c);
    item.classList.add(`state-${mosaic.state}`);
    const placeholder = item.querySelector(".mine-placeholder");
    if (placeholder && typeof mosaic.thumb_url === "string" && mosaic.thumb_url) {
      const img = document.createElement("img");
      img.className = "mine-thumb";
      img.alt = "";
      img.src = mosaic.thumb_url;
      placeholder.replaceWith(img);
    }
  }

  function unfinished() {
    return Array.from(list.querySelectorAll(".mine-item"))
      .some((item) => !FINAL.some((state) => item.classList.contains(`state-${state}`)));
  }

  async function refresh() {
    try {
      const response = await fetch(list.dataset.api, { cache: "no-store", credentials: "same-origin" });
      if (response.ok) {
        const data = await response.json();
        for (const mosaic of (data && data.mosaics) || []) {
          const item = list.querySelector(`.mine-item[data-id="${CSS.escape(String(mosaic.id))}"]`);
          if (item) update(item, mosaic);
        }
        showStates();
      }
    } catch (err) {
      /* try again on the next round */
    }
    if (unfinished()) setTimeout(refresh, REFRESH_MS);
  }

  showTimes();
  showStates();
  if (unfinished()) setTimeout(refresh, REFRESH_MS);
})();

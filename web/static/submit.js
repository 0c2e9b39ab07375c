// Tessera: submit the mosaic form with fetch and go to the job page.
"use strict";

(() => {
  const form = document.getElementById("mosaic-form");
  if (!form) return;

  const button = document.getElementById("submit");
  const errorBox = document.getElementById("form-error");
  const statusEl = document.getElementById("submit-status");
  const tilesInput = document.getElementById("tiles");
  const tilesCount = document.getElementById("tiles-count");
  const buttonLabel = button ? button.textContent : "";

  function setStatus(text) {
    if (statusEl) statusEl.textContent = text;
  }

  function showError(message) {
    if (!errorBox) return;
    errorBox.textContent = message;
    errorBox.hidden = false;
    errorBox.scrollIntoView({ block: "nearest", behavior: "smooth" });
  }

  function clearError() {
    if (!errorBox) return;
    errorBox.textContent = "";
    errorBox.hidden = true;
  }

  function setBusy(busy) {
    if (button) {
      button.disabled = busy;
      button.textContent = busy ? "Uploading…" : buttonLabel;
    }
    form.setAttribute("aria-busy", busy ? "true" : "false");
    setStatus(busy ? "Uploading…" : "");
  }

  function updateTilesCount() {
    if (!tilesInput || !tilesCount) return;
    const n = tilesInput.files ? tilesInput.files.length : 0;
    tilesCount.textContent = n === 0 ? "" : n === 1 ? "1 file selected" : `${n} files selected`;
  }

  if (tilesInput) {
    tilesInput.addEventListener("change", updateTilesCount);
    updateTilesCount(); // browsers may keep selections after back/forward
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (button && button.disabled) return;
    clearError();
    setBusy(true);

    let response;
    try {
      response = await fetch("/api/mosaics", {
        method: "POST",
        body: new FormData(form),
        headers: { Accept: "application/json" },
        credentials: "same-origin",
      });
    } catch (err) {
      setBusy(false);
      showError("Could not reach the server. Please check your connection and try again.");
      return;
    }

    let data = null;
    try {
      data = await response.json();
    } catch (err) {
      data = null;
    }

    if (response.status === 202 && data && typeof data.page_url === "string" && data.page_url) {
      setStatus("Uploaded, opening your mosaic…");
      if (button) button.textContent = "Opening…";
      location.assign(data.page_url);
      return;
    }

    setBusy(false);
    const message =
      data && data.error && typeof data.error.message === "string" && data.error.message
        ? data.error.message
        : `Something went wrong (HTTP ${response.status}${response.statusText ? " " + response.statusText : ""}). Please try again.`;
    showError(message);
  });

  // If the user comes back with the back button, the page may be restored
  // from the bfcache with the button still disabled.
  window.addEventListener("pageshow", () => {
    setBusy(false);
    updateTilesCount();
  });
})();

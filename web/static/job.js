// Tessera: poll a mosaic job's status and show progress and the result.
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
  const mosaicEl = $("mosaic");
  const downloadEl = $("download");
  const elapsedEl = $("elapsed");
  const connectionEl = $("connection");

  const BASE_DELAY = 1000;
  const MAX_DELAY = 5000;
  const STATES = ["queued", "running", "done", "failed", "missing"];

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

  function render(data) {
    const state = typeof data.state === "string" ? data.state : "queued";
    setStateClass(state);
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
        setText(stageEl, stage);
        if (typeof data.result_url === "string" && data.result_url) {
          if (mosaicEl) mosaicEl.src = data.result_url;
          if (downloadEl) downloadEl.href = data.result_url;
        }
        const created = Number(data.created_at);
        const finished = Number(data.finished_at);
        if (data.created_at != null && data.finished_at != null &&
            Number.isFinite(created) && Number.isFinite(finished)) {
          const secs = Math.max(0, finished - created);
          setText(elapsedEl, `Built in ${secs.toFixed(1)} s`);
        }
        if (resultEl) resultEl.hidden = false;
        if (errorEl) errorEl.hidden = true;
        stop();
        return;
      }
      case "failed": {
        setText(stateEl, "Failed");
        setText(stageEl, stage);
        let message = "The mosaic could not be built.";
        if (typeof data.error === "string" && data.error) {
          message = data.error;
        } else if (data.error && typeof data.error.message === "string" && data.error.message) {
          message = data.error.message;
        }
        setText(errorEl, message);
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
      stop();
      return;
    }

    if (response.status >= 500 || !response.ok) {
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

  poll();
})();

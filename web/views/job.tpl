% rebase('layout.tpl', title='Mosaic ' + str(job_id), scripts=['vendor/openseadragon/openseadragon.min.js', 'job.js'])
<section id="job" class="card job state-queued" data-status-url="{{status_url}}" data-job-id="{{job_id}}"
         data-osd-images="/static/vendor/openseadragon/images/">
  <h1>Your mosaic</h1>
  <p class="job-id">Job <code>{{job_id}}</code></p>

  <noscript>
    <p class="alert">This page needs JavaScript to show live progress. The job status is available as JSON at <a href="{{status_url}}">{{status_url}}</a>.</p>
  </noscript>

  <div class="status-block" aria-live="polite">
    <p id="state" class="state">Checking…</p>
    <div class="progress-row">
      <progress id="progress" max="1" value="0" aria-labelledby="state">0%</progress>
      <span id="percent" class="percent">0%</span>
    </div>
    <p id="stage" class="stage"></p>
    <p id="queue-place" class="stage queue-place" hidden></p>
    <p id="friends-counts" class="stage friends-counts" hidden></p>
    <p id="connection" class="connection" hidden>Connection lost, retrying…</p>
    <p class="cancel-row">
      <button type="button" id="cancel" class="button secondary" hidden>Cancel</button>
      <span id="cancel-status" class="status" aria-live="polite"></span>
    </p>
  </div>

  <div id="error" class="alert" role="alert" hidden></div>

  <div id="result" class="result" hidden>
    <div class="viewer-frame">
      <div id="viewer" class="viewer" role="region" aria-label="The finished mosaic: drag to pan, scroll or pinch to zoom" hidden></div>
      <img id="mosaic" alt="The finished mosaic" hidden>
      <p id="tile-tip" class="tile-tip" aria-hidden="true" hidden></p>
    </div>
    <p id="tile-caption" class="tile-caption" aria-live="polite">
      <span id="tile-hint">Zoom in and point at (or tap) a tile to see which picture it is.</span>
      <span id="tile-which" hidden>Tile: <strong id="tile-label"></strong>
        <a id="tile-profile" target="_blank" rel="noopener noreferrer" hidden>open profile</a></span>
    </p>
    <div class="result-meta">
      <a id="download" class="button" download>Download the full image</a>
      <span id="elapsed" class="elapsed"></span>
    </div>
    <p id="colour" class="colour-note" hidden></p>
  </div>

  <div id="share" class="share" hidden>
    <label for="share-url">Share this mosaic</label>
    <div class="share-row">
      <input type="text" id="share-url" readonly>
      <button type="button" id="copy-link" class="button secondary">Copy link</button>
    </div>
    <span id="copy-status" class="status" aria-live="polite"></span>
  </div>

  <p class="again"><a href="/">Make another mosaic</a> · <a href="/mine">My mosaics</a></p>
</section>

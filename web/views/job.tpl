% rebase('layout.tpl', title='Mosaic ' + str(job_id), scripts=['job.js'])
<section id="job" class="card job state-queued" data-status-url="{{status_url}}" data-job-id="{{job_id}}">
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
    <p id="connection" class="connection" hidden>Connection lost, retrying…</p>
  </div>

  <div id="error" class="alert" role="alert" hidden></div>

  <div id="result" class="result" hidden>
    <img id="mosaic" alt="The finished mosaic">
    <p class="result-meta">
      <a id="download" class="button" download>Download the mosaic</a>
      <span id="elapsed" class="elapsed"></span>
    </p>
  </div>

  <p class="again"><a href="/">Make another mosaic</a></p>
</section>

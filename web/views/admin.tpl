% rebase('layout.tpl', title='Operations')
<link rel="stylesheet" href="/static/admin.css">
<section class="card admin">
  <h1>Operations</h1>
  <p class="lead">The whole cluster, read from Redis as the read-only <code>monitor</code> user. Reload to refresh.</p>

  <h2>Queue</h2>
  <dl class="admin-numbers">
    <div><dt>Waiting</dt><dd id="queue-depth">{{snap.queue.depth}}</dd></div>
    <div><dt>Running (pending)</dt><dd id="queue-pending">{{snap.queue.pending}}</dd></div>
    <div><dt>Stream length</dt><dd id="queue-length">{{snap.queue.length}}</dd></div>
    <div><dt>Dead letters</dt><dd id="dead-letters">{{snap.queue.dead}}</dd></div>
  </dl>

  <h2>Jobs</h2>
  <dl class="admin-numbers">
    <div><dt>Last minute</dt><dd id="jobs-per-minute">{{per_minute}}</dd></div>
    <div><dt>This minute so far</dt><dd id="jobs-this-minute">{{this_minute}}</dd></div>
    <div><dt>Last hour</dt><dd id="jobs-last-hour">{{hour}}</dd></div>
    <div><dt>Submitted</dt><dd id="jobs-submitted">{{snap.counters.submitted}}</dd></div>
    <div><dt>Done</dt><dd id="jobs-done">{{snap.counters.done}}</dd></div>
    <div><dt>Failed</dt><dd id="jobs-failed">{{snap.counters.failed}}</dd></div>
  </dl>
  <figure class="admin-chart">
{{!chart}}
    <figcaption>Jobs finished per minute, last hour (UTC): <span class="key-done">done</span>, <span class="key-failed">failed</span>.</figcaption>
  </figure>

  <h2>Workers</h2>
% if not snap.nodes:
  <p id="no-workers">No live workers.</p>
% end
% for node, beats in snap.nodes.items():
  <h3 class="admin-node">{{node}} <span class="count">{{len(beats)}} worker{{'' if len(beats) == 1 else 's'}}</span></h3>
  <table class="admin-table">
    <thead><tr><th>Worker</th><th>PID</th><th>State</th><th>Heartbeat</th><th>Job</th></tr></thead>
    <tbody>
%   for beat in beats:
      <tr><td>{{beat.get('consumer', '?')}}</td><td>{{beat.get('pid', '?')}}</td><td>{{beat.get('state', '?')}}</td>
        <td>{{'%.1f s ago' % beat['age']}}</td><td><code>{{beat.get('job') or '—'}}</code></td></tr>
%   end
    </tbody>
  </table>
% end

  <h2>Recent failures</h2>
% if not snap.failures:
  <p id="no-failures">None among the recent jobs.</p>
% else:
  <table class="admin-table" id="failures">
    <thead><tr><th>Job</th><th>When</th><th>Worker</th><th>Deliveries</th><th>Reason</th></tr></thead>
    <tbody>
%   for job in snap.failures:
      <tr><td><code>{{job['id']}}</code></td><td>{{job['ago']}} ago</td><td>{{job.get('worker', '')}}</td>
        <td>{{job.get('deliveries', '')}}</td><td class="reason">{{job.get('error', '')}}</td></tr>
%   end
    </tbody>
  </table>
% end
</section>

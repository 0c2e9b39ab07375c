% rebase('layout.tpl', title='My mosaics', scripts=['mine.js'], nav='mine')
<section class="card">
  <h1>My mosaics</h1>
  <p class="lead">The mosaics made in this browser. They are kept for a while, then expire; anyone you give a mosaic's link can see it.</p>

% if not reachable:
  <p class="alert" role="alert">The list is unavailable right now; try again shortly.</p>
% elif not mosaics:
  <p id="mine-empty" class="empty">No mosaics from this browser yet. <a href="/">Make one</a>.</p>
% end
  <ul id="mine-list" class="mine-list" data-api="/api/mine">
% for m in mosaics:
    <li class="mine-item state-{{m['state']}}" data-id="{{m['id']}}">
      <a href="{{m['page_url']}}" class="mine-link">
% if m.get('thumb_url'):
        <img class="mine-thumb" src="{{m['thumb_url']}}" alt="" loading="lazy">
% else:
        <span class="mine-thumb mine-placeholder" aria-hidden="true"></span>
% end
        <span class="mine-text">
          <span class="mine-state">{{m['state']}}</span>
          <time class="mine-time" data-created="{{m['created_at'] or ''}}"></time>
          <code class="mine-id">{{m['id']}}</code>
        </span>
      </a>
      <button type="button" class="button secondary mine-delete" data-id="{{m['id']}}"
              aria-label="Delete mosaic {{m['id']}}">Delete</button>
    </li>
% end
  </ul>
  <p id="mine-status" class="status" aria-live="polite"></p>
</section>

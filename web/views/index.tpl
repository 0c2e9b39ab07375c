% rebase('layout.tpl', title='Make a mosaic', scripts=['submit.js'], nav='new')
<section class="card">
  <h1>Make a mosaic</h1>
  <p class="lead">Pick one photo to rebuild, then give Tessera the small pictures to build it from.</p>

  <form id="mosaic-form" method="post" action="/api/mosaics" enctype="multipart/form-data"
        data-max-tiles="{{limits['max_tiles']}}" data-max-cells="{{limits['max_cells']}}"
        data-max-cells-per-side="{{limits['max_cells_per_side']}}"
        data-max-output-pixels="{{limits['max_output_pixels']}}" data-max-upload-mb="{{limits['max_upload_mb']}}">
    <div id="form-error" class="alert" role="alert" hidden></div>

    <div class="field">
      <span class="label" id="target-label">Target photo <span class="req">(required)</span></span>
      <label class="dropzone" id="target-drop" for="target">
        <input type="file" id="target" name="target" accept="image/*,.avif,.heic,.heif" required class="dropzone-input"
               aria-labelledby="target-label" aria-describedby="target-help">
        <span class="dropzone-text"><strong>Drop your photo here</strong> or <span class="fake-link">choose a file</span></span>
      </label>
      <div id="target-preview" class="target-preview" hidden>
        <img id="target-thumb" alt="Your target photo">
        <div class="target-info">
          <p id="target-name" class="target-name"></p>
          <p id="target-size" class="help"></p>
          <button type="button" id="target-remove" class="link-button">Remove</button>
        </div>
      </div>
      <p class="help" id="target-help">The picture the mosaic will look like. Up to {{limits['max_upload_mb']}} MB per upload.</p>
    </div>

    <fieldset class="field-group">
      <legend>Tile pictures</legend>

      <label class="dropzone dropzone-tiles" id="tiles-drop" for="tiles">
        <input type="file" id="tiles" name="tiles" accept="image/*,.avif,.heic,.heif" multiple class="dropzone-input"
               aria-describedby="tiles-help">
        <span class="dropzone-text"><strong>Drop tile pictures here</strong> or <span class="fake-link">choose files</span></span>
      </label>
      <p class="help" id="tiles-help">Add as many as you like, in one go or several, up to {{limits['max_tiles']}} tiles in all.</p>

      <div class="field">
        <label for="tile_urls">…or paste image URLs</label>
        <textarea id="tile_urls" name="tile_urls" rows="3" spellcheck="false" autocomplete="off" placeholder="https://example.com/friend1.jpg&#10;https://example.com/friend2.png" aria-describedby="tile_urls-help"></textarea>
        <div class="url-actions">
          <button type="button" id="add-urls" class="button secondary">Add URLs</button>
          <p class="help" id="tile_urls-help">One URL per line. Files and URLs together count towards the {{limits['max_tiles']}}-tile limit.</p>
        </div>
      </div>

      <fieldset class="friends" id="friends">
        <legend>…or your friends' profile pictures</legend>
        <div class="field-row">
          <div class="field">
            <label for="friends_network">Network</label>
            <select id="friends_network" name="friends_network">
              <option value="bluesky">Bluesky</option>
              <option value="mastodon">Mastodon</option>
              <option value="github">GitHub</option>
            </select>
          </div>
          <div class="field">
            <label for="friends_handle">Handle <span class="opt">(optional)</span></label>
            <input type="text" id="friends_handle" name="friends_handle" autocomplete="off" spellcheck="false"
                   placeholder="alice.bsky.social" aria-describedby="friends-help">
          </div>
          <div class="field">
            <label for="friends_lists">Whose pictures</label>
            <select id="friends_lists" name="friends_lists">
              <option value="follows">Accounts they follow</option>
              <option value="followers">Their followers</option>
              <option value="both" selected>Both</option>
            </select>
          </div>
          <div class="field">
            <label for="friends_max">At most</label>
            <input type="number" id="friends_max" name="friends_max" value="{{min(2000, limits['max_tiles'])}}" min="1"
                   max="{{min(5000, limits['max_tiles'])}}" step="1">
          </div>
        </div>
        <label class="check"><input type="checkbox" id="friends_include_self" name="friends_include_self" value="1">
          Add their own picture too</label>
        <p class="help" id="friends-help">Bluesky: alice.bsky.social · Mastodon: alice@example.social · GitHub: alice.
          The list is read when the job runs; the job page shows how many were found.</p>
      </fieldset>

      <div class="tiles-head">
        <span id="tiles-count" class="count" aria-live="polite"></span>
        <button type="button" id="tiles-clear" class="link-button" hidden>Remove all</button>
      </div>
      <ul id="tile-list" class="tile-list" aria-label="Tiles added"></ul>
    </fieldset>

    <div class="field-row">
      <div class="field">
        <label for="grid">Grid</label>
        <input type="text" id="grid" name="grid" value="{{defaults['grid']}}" inputmode="text" autocomplete="off" spellcheck="false" aria-describedby="grid-help">
        <p class="help" id="grid-help">COLSxROWS, e.g. 48x32, or one number of columns (rows follow the photo). At most {{limits['max_cells_per_side']}} per side.</p>
      </div>

      <div class="field">
        <label for="tile_px">Tile size (pixels)</label>
        <input type="number" id="tile_px" name="tile_px" value="{{defaults['tile_px']}}" min="{{limits['tile_px_min']}}" max="{{limits['tile_px_max']}}" step="1" aria-describedby="tile_px-help">
        <p class="help" id="tile_px-help">Side of each tile in the output, {{limits['tile_px_min']}}–{{limits['tile_px_max']}} px.</p>
      </div>

      <div class="field">
        <label for="blend">Colour blend <output id="blend-value" for="blend">{{int(defaults['blend'])}}%</output></label>
        <input type="range" id="blend" name="blend" min="0" max="100" step="5" value="{{int(defaults['blend'])}}" aria-describedby="blend-help">
        <p class="help" id="blend-help">How far each tile's colour moves toward the photo: 0% keeps the tiles as they are.</p>
      </div>
    </div>

    <details class="more">
      <summary>More options</summary>
      <div class="field">
        <label for="seed">Seed <span class="opt">(optional)</span></label>
        <input type="number" id="seed" name="seed" step="1" min="0" aria-describedby="seed-help">
        <p class="help" id="seed-help">Use the same seed to get the same mosaic again.</p>
      </div>
    </details>

    <p id="estimate" class="estimate" aria-live="polite">Add a target photo to see the size of the mosaic.</p>

    <div class="actions">
      <button type="submit" id="submit" class="button">Build my mosaic</button>
      <span id="submit-status" class="status" aria-live="polite"></span>
    </div>
  </form>
</section>

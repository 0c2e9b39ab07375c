% rebase('layout.tpl', title='Make a mosaic', scripts=['submit.js'])
<section class="card">
  <h1>Make a mosaic</h1>
  <p class="lead">Pick one photo to rebuild, then give Tessera the small pictures to build it from.</p>

  <form id="mosaic-form" method="post" action="/api/mosaics" enctype="multipart/form-data">
    <div id="form-error" class="alert" role="alert" hidden></div>

    <div class="field">
      <label for="target">Target photo <span class="req">(required)</span></label>
      <input type="file" id="target" name="target" accept="image/*" required aria-describedby="target-help">
      <p class="help" id="target-help">The picture the mosaic will look like. Up to {{limits['max_upload_mb']}} MB per upload.</p>
    </div>

    <fieldset class="field-group">
      <legend>Tile pictures</legend>

      <div class="field">
        <label for="tiles">Upload tile images</label>
        <div class="file-row">
          <input type="file" id="tiles" name="tiles" accept="image/*" multiple aria-describedby="tiles-help tiles-count">
          <span id="tiles-count" class="count" aria-live="polite"></span>
        </div>
        <p class="help" id="tiles-help">Choose as many as you like, up to {{limits['max_tiles']}} tiles in all.</p>
      </div>

      <div class="field">
        <label for="tile_urls">…or image URLs</label>
        <textarea id="tile_urls" name="tile_urls" rows="4" spellcheck="false" autocomplete="off" placeholder="https://example.com/friend1.jpg&#10;https://example.com/friend2.png" aria-describedby="tile_urls-help"></textarea>
        <p class="help" id="tile_urls-help">One image URL per line. Uploaded files and URLs together count towards the {{limits['max_tiles']}}-tile limit.</p>
      </div>
    </fieldset>

    <div class="field-row">
      <div class="field">
        <label for="grid">Grid</label>
        <input type="text" id="grid" name="grid" value="{{defaults['grid']}}" inputmode="text" autocomplete="off" spellcheck="false" aria-describedby="grid-help">
        <p class="help" id="grid-help">COLSxROWS, e.g. 48x32, or one number for the width in cells. At most {{limits['max_cells_per_side']}} cells per side.</p>
      </div>

      <div class="field">
        <label for="tile_px">Tile size (pixels)</label>
        <input type="number" id="tile_px" name="tile_px" value="{{defaults['tile_px']}}" min="{{limits['tile_px_min']}}" max="{{limits['tile_px_max']}}" step="1" aria-describedby="tile_px-help">
        <p class="help" id="tile_px-help">Side of each tile in the output, {{limits['tile_px_min']}}–{{limits['tile_px_max']}} px.</p>
      </div>

      <div class="field">
        <label for="seed">Seed <span class="opt">(optional)</span></label>
        <input type="number" id="seed" name="seed" step="1" min="0" aria-describedby="seed-help">
        <p class="help" id="seed-help">Use the same seed to get the same mosaic again.</p>
      </div>
    </div>

    <div class="actions">
      <button type="submit" id="submit" class="button">Build my mosaic</button>
      <span id="submit-status" class="status" aria-live="polite"></span>
    </div>
  </form>
</section>

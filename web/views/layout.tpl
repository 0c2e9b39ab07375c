% setdefault('title', 'Photo mosaics')
% setdefault('scripts', [])
% setdefault('nav', '')
<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <meta name="color-scheme" content="light dark">
  <title>Tessera — {{title}}</title>
  <link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
  <link rel="stylesheet" href="/static/style.css">
% for s in scripts:
  <script src="/static/{{s}}" defer></script>
% end
</head>
<body>
  <header class="site-header">
    <div class="wrap">
      <a class="brand" href="/">Tessera</a>
      <p class="tagline">Your photo, rebuilt from the faces of your friends</p>
      <nav class="site-nav" aria-label="Main">
        <a href="/"{{!' aria-current="page"' if nav == 'new' else ''}}>New mosaic</a>
        <a href="/mine" id="nav-mine"{{!' aria-current="page"' if nav == 'mine' else ''}}>My mosaics</a>
      </nav>
    </div>
  </header>
  <main class="wrap">
{{!base}}
  </main>
  <footer class="site-footer">
    <div class="wrap">
      <p>Tessera builds a picture out of many smaller pictures.</p>
    </div>
  </footer>
</body>
</html>

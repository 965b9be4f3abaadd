const cacheName = "app-" + "53b4a0bbddf31c60";
const resourcesToCache = ["/web/world.svg","/web/map.css","/web/icon.svg","/web/icon-512.png","/web/icon-192.png","/web/attackmap.css","/web/app.wasm","/wasm_exec.js","/manifest.webmanifest","/live","/app.js","/app.css","/"];

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches.open(cacheName)
      .then((cache) => cache.addAll(resourcesToCache))
      .then(() => self.skipWaiting())
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((k) => k !== cacheName).map((k) => caches.delete(k))))
      .then(() => self.clients.claim())
  );
});

self.addEventListener("fetch", (event) => {
  const req = event.request;
  if (req.method !== "GET") return;
  const url = new URL(req.url);
  if (url.origin !== self.location.origin) return;
  if (url.pathname.startsWith("/api/") || url.pathname === "/healthz" || url.pathname === "/metrics") return;
  event.respondWith(
    caches.match(req, { ignoreSearch: req.mode === "navigate" }).then((hit) => hit || fetch(req))
  );
});

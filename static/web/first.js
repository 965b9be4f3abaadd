// attackmap: the first markers before app.wasm is ready (loaded async from
// the page head). The Go app takes a few hundred milliseconds after its
// download to compile and start; meanwhile this draws the newest
// incidents of the page's own relay as plain circles over the map, in an
// overlay outside the app's DOM, and removes it once the app drew its own
// markers. Only numbers (coordinates, a severity from a fixed list) reach
// the page; nothing runs when another relay is configured or a zoomed
// view is asked for (the overlay knows only the whole-world view).
(function () {
  "use strict";
  var q = new URLSearchParams(location.search);
  var saved = null;
  try { saved = localStorage.getItem("attackmap.relay"); } catch (e) { return; }
  if (q.get("relay") || (saved !== null && saved !== '""') || q.get("view") || q.get("wasm") === "false") {
    return;
  }
  // 200 of the feed's 500: enough to show where attacks come from, at
  // less than half the bytes of the app's own request.
  var feed = fetch("/api/live-feed?limit=200", {credentials: "same-origin"})
    .then(function (r) { return r.ok ? r.json() : []; })
    .catch(function () { return []; });
  var colours = {critical: "#ef4444", high: "#f87171", medium: "#f59e0b", low: "#06b6d4", info: "#22d3ee"};
  var NS = "http://www.w3.org/2000/svg";
  // geo.Project: Web Mercator into 1,000 map units, latitude within ±85°.
  function project(lat, lon) {
    var phi = Math.max(-85, Math.min(85, lat)) * Math.PI / 180;
    return [(lon + 180) / 360 * 1000, (Math.PI - Math.log(Math.tan(Math.PI / 4 + phi / 2))) / (2 * Math.PI) * 1000];
  }
  function draw(items) {
    var wrap = document.querySelector(".map-wrap"), map = document.getElementById("map");
    if (!wrap || !map || !Array.isArray(items) || items.length === 0 || document.querySelector("#map .mk:not(.free)")) {
      return;
    }
    var r = wrap.getBoundingClientRect();
    var svg = document.createElementNS(NS, "svg");
    svg.setAttribute("id", "first-markers");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("viewBox", map.getAttribute("viewBox"));
    svg.setAttribute("preserveAspectRatio", "xMidYMid meet");
    svg.style.cssText = "position:absolute;pointer-events:none;left:" + (r.left + scrollX) + "px;top:" + (r.top + scrollY) +
      "px;width:" + r.width + "px;height:" + r.height + "px";
    for (var i = 0; i < items.length; i++) {
      var it = items[i];
      if (!it || typeof it.lat !== "number" || typeof it.lon !== "number" || !isFinite(it.lat) || !isFinite(it.lon)) {
        continue;
      }
      var p = project(it.lat, it.lon);
      var c = document.createElementNS(NS, "circle");
      c.setAttribute("cx", p[0].toFixed(1));
      c.setAttribute("cy", p[1].toFixed(1));
      c.setAttribute("r", "4");
      c.setAttribute("fill", colours[it.severity] || colours.info);
      var g = document.createElementNS(NS, "g");
      g.setAttribute("class", "mk still first");
      g.appendChild(c);
      svg.appendChild(g);
    }
    document.body.appendChild(svg);
    // Gone once the app shows its markers, or after 10 s whatever happens
    // (the app failed to start, or its filters hide these).
    var done = function () { obs.disconnect(); svg.remove(); };
    var obs = new MutationObserver(function () {
      if (document.querySelector("#map .mk:not(.free)")) { done(); }
    });
    obs.observe(document.body, {subtree: true, childList: true});
    setTimeout(done, 10000);
  }
  function ready() { feed.then(draw); }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", ready);
  } else {
    ready();
  }
})();

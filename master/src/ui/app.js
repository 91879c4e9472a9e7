// Live refresh: fetch this page again every few seconds and swap in its <main>.
(function () {
  "use strict";
  var EVERY = 5000;
  var live = document.getElementById("live");
  function refresh() {
    fetch(location.pathname, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) {
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.text();
      })
      .then(function (text) {
        var doc = new DOMParser().parseFromString(text, "text/html");
        var fresh = doc.getElementById("main");
        var main = document.getElementById("main");
        if (fresh && main) main.replaceWith(fresh);
        live.textContent = "live · " + new Date().toLocaleTimeString();
        live.className = "ok";
      })
      .catch(function (e) {
        live.textContent = "not updating (" + e.message + ")";
        live.className = "bad";
      });
  }
  live.textContent = "live · " + new Date().toLocaleTimeString();
  setInterval(refresh, EVERY);
})();

// tokenvault connect.js: open a connect session's link from your page.
//
//   <script src="https://VAULT/connect.js"></script>
//   TokenVault.connect(connectUrl, { onResult: (result) => { ... } });
//
// On a large screen the hosted Connect page opens in a popup; when the flow ends, the vault posts
// the result to this page (only if this page's origin is the session's return URL's origin, one
// the app registered) and the popup closes. `result` is the return URL's query as an object:
// {status: "succeeded", session_id, grant_id} or {status: "denied" | "failed", error, ...}; or
// {status: "closed"} when the user closed the popup. On a small screen, or when the popup is
// blocked, the page itself goes to the Connect page and comes back to the return URL (`popup:
// "never"` always does that, `popup: "always"` never falls back on screen size).
(function () {
  "use strict";
  function redirect(url) {
    window.location.assign(url);
    return null;
  }
  function connect(connectUrl, options) {
    options = options || {};
    var onResult = typeof options.onResult === "function" ? options.onResult : function () {};
    var mode = options.popup || "auto";
    var url = new URL(connectUrl, window.location.href);
    var small = window.matchMedia && window.matchMedia("(max-width: 640px)").matches;
    if (mode === "never" || (mode === "auto" && small)) return redirect(url.href);
    url.searchParams.set("mode", "popup");
    var width = 520, height = 720;
    var left = Math.max(0, (window.screenX || 0) + (window.outerWidth - width) / 2);
    var top = Math.max(0, (window.screenY || 0) + (window.outerHeight - height) / 2);
    var popup = window.open(url.href, "tokenvault-connect",
      "popup=yes,width=" + width + ",height=" + height + ",left=" + left + ",top=" + top);
    if (!popup) {
      url.searchParams.delete("mode");
      return redirect(url.href);
    }
    var done = false;
    function finish(result) {
      if (done) return;
      done = true;
      window.removeEventListener("message", onMessage);
      clearInterval(watch);
      onResult(result);
    }
    function onMessage(event) {
      if (event.origin !== url.origin || event.source !== popup) return;
      var data = event.data;
      if (!data || data.source !== "tokenvault") return;
      delete data.source;
      finish(data);
    }
    window.addEventListener("message", onMessage);
    var watch = setInterval(function () {
      if (popup.closed) setTimeout(function () { finish({ status: "closed" }); }, 300);
    }, 400);
    return popup;
  }
  window.TokenVault = { connect: connect };
})();

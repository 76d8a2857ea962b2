/* Voice widget loader: <script src="HOST/static/widget/embed.js" data-widget-id="ID" async></script>
 * Classic script (works async), no dependencies. It finds its own tag, fetches the widget's
 * public configuration and the UI module from HOST in parallel, and renders <voice-widget>:
 * floating at the end of the body, or inline right after the tag (or inside the element that
 * data-container="#id" names). The tag's data-audio, data-ice-timeout-ms, data-placement,
 * data-position, data-variables (JSON) and data-language go to the widget. The call machinery
 * is loaded only when a call starts. */
(function () {
  "use strict";
  var perf = window.performance;
  if (perf && perf.mark) perf.mark("voice-widget:script-start");
  var script = document.currentScript;
  if (!script || !script.getAttribute("data-widget-id")) {
    // async scripts may run with currentScript unset: take the first tag not yet handled.
    var tags = document.querySelectorAll('script[data-widget-id][src*="/static/widget/embed.js"]');
    for (var i = 0; i < tags.length; i++) {
      if (!tags[i].hasAttribute("data-voice-widget")) { script = tags[i]; break; }
    }
  }
  if (!script || script.hasAttribute("data-voice-widget")) return;
  script.setAttribute("data-voice-widget", "1");
  var widgetId = script.getAttribute("data-widget-id") || "";
  var base = new URL(script.src, document.baseURI);
  var host = base.origin;
  var moduleUrl = new URL("ui.js", base).href;
  var attrs = {};
  var names = ["audio", "ice-timeout-ms", "placement", "position", "variables", "language"];
  for (var n = 0; n < names.length; n++) {
    var v = script.getAttribute("data-" + names[n]);
    if (v != null) attrs[names[n].replace(/-(\w)/g, function (_, c) { return c.toUpperCase(); })] = v;
  }

  var config = /^[0-9a-f]{24}$/.test(widgetId)
    ? fetch(host + "/v1/widgets/" + widgetId + "/public", { credentials: "omit", mode: "cors" })
        .then(function (r) { return r.ok ? r.json() : { load_error: r.status }; })
        .catch(function () { return { load_error: "network" }; })
    : Promise.resolve({ load_error: "bad-id" });

  function place(el) {
    // Floating: at the end of the body. Inline: inside data-container when it names an
    // element, else right after the tag when it sits in the page body; at the end of the body
    // otherwise (a tag in <head> cannot show anything there).
    var sel = script.getAttribute("data-container");
    var box = null;
    try {
      box = sel && el.placement === "inline" ? document.querySelector(sel) : null;
    } catch (_) {
      box = null;
    }
    if (box) {
      box.appendChild(el);
    } else if (el.placement !== "floating" && document.body && document.body.contains(script)) {
      script.parentNode.insertBefore(el, script.nextSibling);
    } else if (document.body) {
      document.body.appendChild(el);
    } else {
      document.addEventListener("DOMContentLoaded", function () { place(el); });
    }
  }

  Promise.all([import(moduleUrl), config]).then(function (parts) {
    place(parts[0].mount({ host: host, widgetId: widgetId, config: parts[1], attrs: attrs }));
  }).catch(function (err) {
    if (window.console) console.error("voice widget: could not load", err);
  });
})();

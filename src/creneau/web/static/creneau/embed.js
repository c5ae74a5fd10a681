// Créneau's widget loader. A hospital page pastes:
//   <script src="https://HUB/embed.js" data-channel="KEY" async></script>
// and the booking widget appears where the script stands, in a frame served by the hub.
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || !script.getAttribute("data-channel")) {
    return;
  }
  var hub = new URL(script.src).origin;
  var language = script.getAttribute("data-lang") === "en" ? "en/" : "";
  var frame = document.createElement("iframe");
  frame.src = hub + "/" + language + "embed/" + encodeURIComponent(script.getAttribute("data-channel")) + "/";
  frame.title = script.getAttribute("data-title") || (language ? "Book an appointment" : "Prendre rendez-vous");
  frame.style.width = "100%";
  frame.style.border = "0";
  frame.style.display = "block";
  frame.style.height = (parseInt(script.getAttribute("data-height"), 10) || 640) + "px";
  frame.setAttribute("referrerpolicy", "strict-origin");
  // Only the hub's frame may resize itself, and only with a sane number.
  window.addEventListener("message", function (event) {
    if (event.origin !== hub || event.source !== frame.contentWindow) {
      return;
    }
    var data = event.data;
    if (!data || data.type !== "creneau:height" || typeof data.height !== "number") {
      return;
    }
    frame.style.height = Math.min(Math.max(Math.ceil(data.height), 200), 6000) + "px";
  });
  script.parentNode.insertBefore(frame, script.nextSibling);
})();

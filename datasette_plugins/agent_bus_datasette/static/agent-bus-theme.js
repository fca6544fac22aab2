/* Applies the dark or light theme before the page paints: the choice saved by the toggle,
   else the system's preference (and follows it while no choice is saved). */
(function () {
  "use strict";
  var root = document.documentElement;
  var query = window.matchMedia ? window.matchMedia("(prefers-color-scheme: dark)") : null;
  function saved() {
    try { return window.localStorage.getItem("agent-bus:theme"); } catch (e) { return null; }
  }
  function apply() {
    var choice = saved();
    var dark = choice ? choice === "dark" : !!(query && query.matches);
    root.classList.toggle("ab-dark", dark);
    root.setAttribute("data-theme", dark ? "dark" : "light");
  }
  apply();
  if (query && query.addEventListener) query.addEventListener("change", apply);
  window.agentBusTheme = { apply: apply };
})();

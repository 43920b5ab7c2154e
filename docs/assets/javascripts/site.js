// Small site behaviours that Material does not have built in.
(function () {
  // 1. The language selector keeps the #anchor: both languages share heading ids.
  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("a[data-language-link]");
    if (link && window.location.hash && link.href.indexOf("#") < 0) {
      link.href = link.href + window.location.hash;
    }
  }, true);

  // 2. A code block titled with a repository path (snippets/...) links to that file on GitHub.
  function linkTitles(root) {
    var meta = document.querySelector('meta[name="source-base"]');
    if (!meta) return;
    root.querySelectorAll(".highlight > .filename, .highlight span.filename").forEach(function (title) {
      var path = title.textContent.trim();
      if (!/^(snippets|tests|docs)\/[\w./-]+$/.test(path) || title.querySelector("a")) return;
      var a = document.createElement("a");
      a.href = meta.content + path;
      a.textContent = path;
      a.className = "source-link";
      title.textContent = "";
      title.appendChild(a);
    });
  }
  // 3. A region that scrolls sideways (a wide formula, a notebook output) must be reachable with the keyboard
  //    (WCAG 2.1.1; axe scrollable-region-focusable). The formulas are already HTML (rendered at build time).
  function focusableScrollers(root) {
    var candidates = Array.prototype.filter.call(root.querySelectorAll("article div, article pre"), function (el) {
      return !el.hasAttribute("tabindex") && !el.querySelector("a, button, input, [tabindex]");
    });
    // All reads first, then all writes: an attribute set between two reads of scrollWidth would force a new
    // layout of the whole page for every element (seconds of blocking time on a page with hundreds of formulas).
    var scrollers = candidates.filter(function (el) {
      return /(auto|scroll)/.test(getComputedStyle(el).overflowX) && el.scrollWidth > el.clientWidth + 1;
    });
    scrollers.forEach(function (el) { el.setAttribute("tabindex", "0"); });
  }

  // 4. A collapsed block that holds only code keeps it in a <template> until it is first opened
  //    (docs/hooks/lazy_code.py): then the code joins the page, with the copy button Material gives the others.
  var lazyCount = 0;
  function copyTitle() {
    var config = document.getElementById("__config");
    try { return JSON.parse(config.textContent).translations["clipboard.copy"]; } catch (e) { return "Copy"; }
  }
  function openLazyCode(details) {
    var template = details.querySelector(":scope > template.lazy-code");
    if (!template) return;
    var content = template.content.cloneNode(true);
    content.querySelectorAll(".highlight > pre").forEach(function (pre) {
      if (pre.querySelector(".md-code__nav")) return;
      if (!pre.id) pre.id = "__code_lazy_" + (lazyCount += 1);
      var nav = document.createElement("nav");
      nav.className = "md-code__nav";
      var button = document.createElement("button");
      button.className = "md-code__button";
      button.title = copyTitle();
      button.setAttribute("data-clipboard-target", "#" + pre.id + " > code");
      button.setAttribute("data-md-type", "copy");
      nav.appendChild(button);
      pre.insertBefore(nav, pre.firstChild);
    });
    template.replaceWith(content);
    linkTitles(details);
    focusableScrollers(details);
  }
  // A link to a line of such a block (#__codelineno-...) opens the block first.
  function revealHashTarget() {
    var id = decodeURIComponent(window.location.hash.slice(1));
    if (!id || document.getElementById(id)) return;
    var template = Array.prototype.find.call(document.querySelectorAll("details > template.lazy-code"), function (t) {
      return t.content.getElementById(id);
    });
    if (!template) return;
    var details = template.parentElement;
    openLazyCode(details);
    details.open = true;
    document.getElementById(id).scrollIntoView();
  }
  window.addEventListener("hashchange", revealHashTarget);
  // "toggle" does not bubble: listen in the capture phase, once for the whole document.
  document.addEventListener("toggle", function (event) {
    if (event.target.tagName === "DETAILS" && event.target.open) openLazyCode(event.target);
  }, true);

  function enhance(root) {
    revealHashTarget();
    linkTitles(root);
    focusableScrollers(root);
    // Widths change once the KaTeX fonts arrive, and with the window: check again then.
    if (document.fonts) document.fonts.ready.then(function () { focusableScrollers(root); });
  }
  var resizeTimer;
  window.addEventListener("resize", function () {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(function () { focusableScrollers(document.body); }, 200);
  });
  if (typeof document$ !== "undefined") {
    document$.subscribe(function (doc) { enhance(doc.body); });
  } else {
    document.addEventListener("DOMContentLoaded", function () { enhance(document.body); });
  }
})();
